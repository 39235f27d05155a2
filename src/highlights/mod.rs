//! Escalation highlights: timestamped key moments (shouting, loud impulses, struggle, running,
//! rising tension) from audio and camera-motion signals, written as JSON, WebVTT chapters and
//! a self-contained review page.
//!
//! [`Analyzer`] is fed by whoever decodes: [`analyze_file`] on its own (`veil highlights`), or
//! the redaction pipeline (`veil process`), so a file is decoded once for both jobs.

pub mod audio;
pub mod cadence;
pub mod eval;
pub mod fusion;
pub mod kind;
pub mod kinds;
pub mod output;
pub mod second;
pub mod thresholds;
pub mod vad;
pub mod voice;

use std::path::{Path, PathBuf};
use std::time::Instant;

use ffmpeg::{codec, format, frame, software, Packet};
use ffmpeg_next as ffmpeg;
use serde::Serialize;

use crate::decode::{luma, working_format, DamagePolicy, DecodeStatus, Decoder, Input};
use crate::error::{InvalidSetting, Result, VeilError};
use crate::job::Job;
use crate::models::{Manifest, Task};
use crate::motion::{FrameMotion, MotionEstimator};
use crate::progress::ProgressFn;
pub use fusion::{Highlight, Kind};

/// Settings for highlight detection.
#[derive(Debug, Clone, Serialize)]
pub struct HighlightOptions {
    /// 0..1: higher finds more (and more false alarms). 0.5 is the documented default.
    pub sensitivity: f32,
    /// Intra-op threads for the VAD model.
    pub threads: usize,
    /// Run Silero VAD (needs the model installed); without it speech presence is estimated
    /// from pitch alone.
    pub vad: bool,
    /// Optional extra ONNX signal: (path, kind).
    #[serde(skip)]
    pub extra: Option<extra::ExtraSignal>,
}

impl HighlightOptions {
    /// Checks every setting; the error names the flag, the value and what is allowed.
    pub fn validate(&self) -> Result<()> {
        if !(0.0..=1.0).contains(&self.sensitivity) {
            return Err(InvalidSetting::out_of_range(
                "--sensitivity",
                self.sensitivity,
                "between 0 and 1",
            )
            .into());
        }
        if self.threads == 0 || self.threads > 256 {
            return Err(
                InvalidSetting::out_of_range("highlight threads", self.threads, "1..256").into(),
            );
        }
        Ok(())
    }
}

impl Default for HighlightOptions {
    fn default() -> Self {
        HighlightOptions {
            sensitivity: 0.5,
            threads: 1,
            vad: true,
            extra: None,
        }
    }
}

pub mod extra;

/// Thumbnail width in pixels.
const THUMB_W: u32 = 192;

/// Collects signals from decoded media.
pub struct Analyzer {
    frames: Vec<FrameMotion>,
    thumb_scaler: Option<(software::scaling::Context, format::Pixel, u32, u32)>,
    thumb_frame: frame::Video,
    /// One JPEG per second of video: (time, bytes).
    thumbs: Vec<(f64, Vec<u8>)>,
    next_thumb: f64,
    audio: Option<AudioTap>,
    origin: f64,
    video_tb: f64,
    pub last_t: f64,
}

struct AudioTap {
    index: usize,
    tb: f64,
    decoder: ffmpeg::decoder::Audio,
    resampler: Option<software::resampling::Context>,
    analyzer: audio::AudioAnalyzer,
    /// The models that listen as the audio arrives (nothing of the audio itself is kept).
    vad: Option<(vad::Vad, ModelUse)>,
    extra: Option<extra::ExtraStream>,
    started: bool,
    decoded: frame::Audio,
}

impl AudioTap {
    /// Feeds 16 kHz mono samples to the hop analysis and the listening models.
    fn feed(&mut self, samples: &[f32]) -> Result<()> {
        self.analyzer.push(samples);
        if let Some((v, _)) = self.vad.as_mut() {
            v.push(samples)?;
        }
        if let Some(x) = self.extra.as_mut() {
            x.push(samples)?;
        }
        Ok(())
    }
}

/// Silero VAD from the manifest, opened on `job`'s device.
fn open_vad(opts: &HighlightOptions, job: &Job) -> Result<(vad::Vad, ModelUse)> {
    let manifest = Manifest::builtin()?;
    let entry = manifest
        .default_for(Task::Vad)
        .ok_or_else(|| VeilError::Manifest("the manifest has no voice-activity model".into()))?;
    let model = entry.resolve()?;
    let session =
        crate::runtime::open_session(&model.id, &model.path, opts.threads.max(1), job.device)?;
    Ok((
        vad::Vad::new(session, &model.id, job.cancel.clone()),
        ModelUse {
            id: model.id.clone(),
            sha256: model.sha256.clone(),
            license: entry.license.clone(),
        },
    ))
}

impl Analyzer {
    /// Prepares for the opened `input`, with the models `opts` asks for loaded now (so a
    /// missing or unusable one is found before any work).
    pub fn new(input: &Input, opts: &HighlightOptions, job: &Job) -> Result<Analyzer> {
        let (ictx, video_index) = (&input.ictx, input.video_index);
        // SAFETY: reading a plain field of a live format context.
        let start = unsafe { (*ictx.as_ptr()).start_time };
        let origin = if start != ffmpeg::ffi::AV_NOPTS_VALUE {
            start as f64 / ffmpeg::ffi::AV_TIME_BASE as f64
        } else {
            0.0
        };
        let video_tb = ictx
            .stream(video_index)
            .map(|s| f64::from(s.time_base()))
            .unwrap_or(1.0 / 90000.0);
        let audio = match ictx.streams().best(ffmpeg::media::Type::Audio) {
            Some(st) => {
                let ctx = codec::context::Context::from_parameters(st.parameters())
                    .map_err(|e| VeilError::ffmpeg("audio decoder", e))?;
                match ctx.decoder().audio() {
                    Ok(decoder) => Some(AudioTap {
                        index: st.index(),
                        tb: f64::from(st.time_base()),
                        decoder,
                        resampler: None,
                        analyzer: audio::AudioAnalyzer::new(),
                        vad: opts.vad.then(|| open_vad(opts, job)).transpose()?,
                        extra: opts
                            .extra
                            .as_ref()
                            .map(|x| x.stream(opts.threads, job.device))
                            .transpose()?,
                        started: false,
                        decoded: frame::Audio::empty(),
                    }),
                    Err(e) => {
                        tracing::warn!("audio stream {} cannot be decoded ({e}); highlights use the picture only", st.index());
                        None
                    }
                }
            }
            None => None,
        };
        Ok(Analyzer {
            frames: Vec::new(),
            thumb_scaler: None,
            thumb_frame: frame::Video::empty(),
            thumbs: Vec::new(),
            next_thumb: 0.0,
            audio,
            origin,
            video_tb,
            last_t: 0.0,
        })
    }

    /// The stream whose packets [`Analyzer::push_audio_packet`] wants, if any.
    pub fn audio_stream(&self) -> Option<usize> {
        self.audio.as_ref().map(|a| a.index)
    }

    /// Seconds from the start of the file for a video pts.
    pub fn video_time(&self, pts: i64) -> f64 {
        (pts as f64 * self.video_tb - self.origin).max(0.0)
    }

    /// Adds the camera's motion onto a frame (`m.t`: the frame's time in seconds).
    pub fn push_motion(&mut self, m: FrameMotion) {
        self.last_t = self.last_t.max(m.t);
        self.frames.push(m);
    }

    /// True when the frame at `t` should give a thumbnail (one per second).
    pub fn wants_thumb(&self, t: f64) -> bool {
        t >= self.next_thumb
    }

    /// Keeps a small JPEG of the frame at `t` (call with the frame as it will be shown: the
    /// redacted one when redacting).
    pub fn push_thumb(&mut self, f: &frame::Video, t: f64) -> Result<()> {
        if !self.wants_thumb(t) {
            return Ok(());
        }
        self.next_thumb = t.floor() + 1.0;
        let (fmt, w, h) = (f.format(), f.width(), f.height());
        let tw = THUMB_W.min(w).max(2);
        let th = ((h as u64 * tw as u64 / w.max(1) as u64) as u32).max(2) & !1;
        if self.thumb_scaler.as_ref().map(|g| (g.1, g.2, g.3)) != Some((fmt, w, h)) {
            let ctx = software::scaling::Context::get(
                fmt,
                w,
                h,
                format::Pixel::RGB24,
                tw,
                th,
                software::scaling::Flags::AREA,
            )
            .map_err(|e| VeilError::ffmpeg("thumbnail scaler", e))?;
            self.thumb_scaler = Some((ctx, fmt, w, h));
        }
        let (ctx, ..) = self.thumb_scaler.as_mut().expect("set above");
        ctx.run(f, &mut self.thumb_frame)
            .map_err(|e| VeilError::ffmpeg("thumbnail scaler", e))?;
        let stride = self.thumb_frame.stride(0);
        let data = self.thumb_frame.data(0);
        let mut rgb = Vec::with_capacity((tw * th * 3) as usize);
        for y in 0..th as usize {
            rgb.extend_from_slice(&data[y * stride..y * stride + tw as usize * 3]);
        }
        let mut jpg = Vec::new();
        let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpg, 70);
        image::ImageEncoder::write_image(enc, &rgb, tw, th, image::ExtendedColorType::Rgb8)
            .map_err(|e| VeilError::ffmpeg("thumbnail", e))?;
        self.thumbs.push((t, jpg));
        Ok(())
    }

    /// Adds a packet of the analysed audio stream (others are ignored). Audio that cannot be
    /// decoded is skipped with a warning: highlights are advisory, redaction is not.
    pub fn push_audio_packet(&mut self, pkt: &Packet) -> Result<()> {
        let origin = self.origin;
        let Some(a) = self.audio.as_mut() else {
            return Ok(());
        };
        if pkt.stream() != a.index {
            return Ok(());
        }
        if let Err(e) = a.decoder.send_packet(pkt) {
            tracing::debug!("audio packet skipped: {e}");
            return Ok(());
        }
        a.drain(origin)
    }

    /// Flushes decoders and computes the highlights. `duration` in seconds (0: from the data).
    pub fn finish(mut self, duration: f64, opts: &HighlightOptions, job: &Job) -> Result<Analysis> {
        let origin = self.origin;
        let started = Instant::now();
        let mut models = Vec::new();
        let mut notes = Vec::new();
        let mut extra_stream = None;
        let hops = match self.audio.take() {
            Some(mut a) => {
                let _ = a.decoder.send_eof();
                a.drain(origin)?;
                let mut tail = Vec::new();
                if let Some(r) = a.resampler.as_mut() {
                    let mut out = frame::Audio::empty();
                    while let Ok(Some(_)) | Ok(None) = r.flush(&mut out) {
                        if out.samples() == 0 {
                            break;
                        }
                        tail.extend_from_slice(&out.plane::<f32>(0)[..out.samples()]);
                        out = frame::Audio::empty();
                    }
                }
                a.feed(&tail)?;
                extra_stream = a.extra.take();
                let mut hops = a.analyzer.finish();
                match a.vad.take() {
                    Some((v, model)) => {
                        let per_hop = vad::per_hop(&v.finish()?, hops.len());
                        for (h, p) in hops.iter_mut().zip(per_hop) {
                            h.speech = p;
                        }
                        models.push(model);
                    }
                    None => {
                        notes.push(
                            "voice activity model disabled: speech presence estimated from pitch"
                                .to_string(),
                        );
                        for h in hops.iter_mut() {
                            h.speech = if h.pitch_hz > 0.0 { 0.7 } else { 0.0 };
                        }
                    }
                }
                hops
            }
            None => Vec::new(),
        };
        if hops.is_empty() {
            notes.push("no decodable audio: audio signals are absent".to_string());
        }
        if self.frames.is_empty() {
            notes.push("no video frames: camera signals are absent".to_string());
        }
        let data_end = self
            .last_t
            .max(hops.last().map(|h| h.t + 0.1).unwrap_or(0.0));
        let duration = if duration > 0.0 { duration } else { data_end };
        let secs = fusion::seconds(&hops, &self.frames, duration);
        // For tuning: VEIL_DEBUG_SIGNALS=FILE dumps the raw signals.
        if let Some(p) = std::env::var_os("VEIL_DEBUG_SIGNALS") {
            let dump = serde_json::json!({"hops": hops, "seconds": secs, "frames": self.frames});
            let _ = std::fs::write(p, serde_json::to_vec(&dump).unwrap_or_default());
        }
        let mut extra_tracks = Vec::new();
        if let Some(x) = &opts.extra {
            // No audio: the model heard nothing, and scores nothing.
            let (track, m) = match extra_stream {
                Some(s) => s.finish(secs.len())?,
                None => x.stream(opts.threads, job.device)?.finish(secs.len())?,
            };
            extra_tracks.push((x.kind, x.name.clone(), track));
            models.push(m);
        }
        let fused = fusion::fuse(&secs, &extra_tracks, opts.sensitivity);
        let highlights = fusion::highlights(&fused.events, duration);
        let thumbs = std::mem::take(&mut self.thumbs);
        tracing::debug!(
            seconds = secs.len(),
            highlights = highlights.len(),
            finish_s = started.elapsed().as_secs_f64(),
            "highlights"
        );
        Ok(Analysis {
            duration,
            seconds: secs,
            scores: fused.scores,
            baseline: fused.baseline,
            highlights,
            thumbs,
            models,
            notes,
            sensitivity: opts.sensitivity,
        })
    }
}

impl AudioTap {
    fn drain(&mut self, origin: f64) -> Result<()> {
        while self.decoder.receive_frame(&mut self.decoded).is_ok() {
            if !self.started {
                self.started = true;
                let t = self
                    .decoded
                    .pts()
                    .map(|p| p as f64 * self.tb - origin)
                    .unwrap_or(0.0)
                    .max(0.0);
                self.analyzer.set_start(t);
            }
            let f = &self.decoded;
            if f.samples() == 0 {
                continue;
            }
            let layout = if f.channel_layout().bits() == 0 {
                ffmpeg::ChannelLayout::default(f.channels() as i32)
            } else {
                f.channel_layout()
            };
            if self.resampler.as_ref().map(|r| {
                let i = r.input();
                (i.format, i.channel_layout, i.rate)
            }) != Some((f.format(), layout, f.rate()))
            {
                self.resampler = Some(
                    software::resampling::Context::get(
                        f.format(),
                        layout,
                        f.rate(),
                        format::Sample::F32(format::sample::Type::Packed),
                        ffmpeg::ChannelLayout::MONO,
                        audio::RATE,
                    )
                    .map_err(|e| VeilError::ffmpeg("audio resampler", e))?,
                );
            }
            let r = self.resampler.as_mut().expect("set above");
            let cap = f.samples() * audio::RATE as usize / f.rate().max(1) as usize + 256;
            let mut out = frame::Audio::new(
                format::Sample::F32(format::sample::Type::Packed),
                cap,
                ffmpeg::ChannelLayout::MONO,
            );
            let mut src = self.decoded.clone();
            if src.channel_layout().bits() == 0 {
                src.set_channel_layout(layout);
            }
            r.run(&src, &mut out)
                .map_err(|e| VeilError::ffmpeg("audio resampler", e))?;
            let n = out.samples();
            if n > 0 {
                let buf = out.plane::<f32>(0)[..n].to_vec();
                self.feed(&buf)?;
            }
        }
        Ok(())
    }
}

/// A model that contributed to the highlights.
#[derive(Debug, Clone, Serialize)]
pub struct ModelUse {
    pub id: String,
    pub sha256: String,
    pub license: String,
}

/// The result of an analysis.
pub struct Analysis {
    pub duration: f64,
    pub seconds: Vec<fusion::Second>,
    pub scores: Vec<(Kind, Vec<f32>)>,
    pub baseline: fusion::Baseline,
    pub highlights: Vec<Highlight>,
    pub thumbs: Vec<(f64, Vec<u8>)>,
    pub models: Vec<ModelUse>,
    pub notes: Vec<String>,
    pub sensitivity: f32,
}

impl Analysis {
    /// The thumbnail nearest to `t`.
    pub fn thumb_at(&self, t: f64) -> Option<&[u8]> {
        self.thumbs
            .iter()
            .min_by(|a, b| (a.0 - t).abs().total_cmp(&(b.0 - t).abs()))
            .map(|(_, j)| j.as_slice())
    }
}

/// Decodes `input` (video and audio) and analyses it, with no redaction. Damaged video is
/// skipped with a warning: highlights are advisory.
pub fn analyze_file(
    input: &Path,
    opts: &HighlightOptions,
    job: &Job,
    progress: Option<ProgressFn>,
) -> Result<Analysis> {
    let inp = Input::open(input, job.threads.decode)?;
    let mut an = Analyzer::new(&inp, opts, job)?;
    let total = inp.info.frames_hint;
    let duration = inp.info.duration_s.unwrap_or(0.0);
    let fmt = working_format(inp.decoder.format(), inp.info.width, inp.info.height);
    let streams = an.audio_stream().into_iter().collect();
    let mut dec = Decoder::new(inp, DamagePolicy::WarnAndSkip, Some(fmt))
        .with_streams(streams)
        .with_cancel(job.cancel.clone());
    let mut motion = MotionEstimator::new();
    let mut n = 0u64;
    loop {
        match dec.receive()? {
            DecodeStatus::Frame { frame, pts, .. } => {
                let t = an.video_time(pts.unwrap_or(0));
                an.push_motion(motion.push_luma(&luma(&frame), t));
                an.push_thumb(&frame, t)?;
                n += 1;
                if let Some(cb) = progress {
                    cb(n, total);
                }
            }
            DecodeStatus::Packet(p) => an.push_audio_packet(&p)?,
            DecodeStatus::Damaged { .. } => {}
            DecodeStatus::End => break,
        }
    }
    an.finish(duration, opts, job)
}

/// `veil highlights INPUT -o DIR`: analyses `input` and writes `DIR/highlights.json`,
/// `highlights.vtt` and `review.html`.
pub fn highlights_file(
    input: &Path,
    dir: &Path,
    opts: &HighlightOptions,
    job: &Job,
    progress: Option<ProgressFn>,
) -> Result<(Analysis, OutputNames)> {
    opts.validate()?;
    job.validate()?;
    if crate::decode::is_image(input) && input.is_file() {
        return Err(VeilError::setting(
            "INPUT",
            format!("{}: highlights need a video", input.display()),
        ));
    }
    let names = OutputNames::new(dir, "");
    let outputs = names.paths();
    let dirs = crate::fsutil::check_paths(
        input,
        &outputs.iter().map(PathBuf::as_path).collect::<Vec<_>>(),
    )?;
    if let Some(x) = &opts.extra {
        x.check(job.device)?;
    }
    let analysis = analyze_file(input, opts, job, progress)?;
    let sha = crate::util::sha256_file(input).ok();
    output::write(&analysis, &names, input, sha.as_deref(), Some(input), None)?;
    dirs.keep();
    Ok((analysis, names))
}

/// Where `veil highlights` / `veil process` put their files.
pub struct OutputNames {
    pub json: PathBuf,
    pub vtt: PathBuf,
    pub html: PathBuf,
}

impl OutputNames {
    /// The three files.
    pub fn paths(&self) -> Vec<PathBuf> {
        vec![self.json.clone(), self.vtt.clone(), self.html.clone()]
    }

    /// `DIR/highlights.json` etc. when `prefix` is empty, `DIR/<prefix>highlights.json` else.
    pub fn new(dir: &Path, prefix: &str) -> OutputNames {
        OutputNames {
            json: dir.join(format!("{prefix}highlights.json")),
            vtt: dir.join(format!("{prefix}highlights.vtt")),
            html: dir.join(format!("{prefix}review.html")),
        }
    }
}
