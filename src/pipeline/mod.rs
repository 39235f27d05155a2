//! The redaction job: decode → detect → track → follow → redact → encode, on named threads
//! joined by bounded channels (`threads`, `stage`). A frame is only encoded once every
//! detection that could touch it is known. Stills take the image path (`image`).

mod edge_guard;
mod image;
mod passes;
mod record;
mod stage;
mod threads;

use std::path::{Path, PathBuf};
use std::time::Instant;

pub use image::redact_image;
pub use record::{PassCounts, RedactSummary, StageTiming};
pub use stage::{next_pts, BoxSource};
pub use threads::queue_len;

use crate::decode::{is_image, working_format, DamagePolicy, Decoder, Input};
use crate::detect::{views::upright_turns, Class, Detectors};
use crate::encode::{container_for, EncodeBudget, Output};
use crate::error::{Result, VeilError};
use crate::fsutil::{check_paths, temp_path_for, TempGuard};
use crate::highlights::{Analyzer, HighlightOptions};
use crate::job::{is_large_frame, Job, LowMemoryGuard};
use crate::options::RedactOptions;
use crate::progress::ProgressFn;

/// Plate tracks are numbered from here (face tracks from 0), so ids are unique in the audit.
pub const PLATE_FIRST_ID: u32 = 100_000;

/// Redacts a video or an image file into `output` and writes the audit record beside it.
pub fn redact_file(
    input: &Path,
    output: &Path,
    opts: &RedactOptions,
    job: &Job,
    progress: Option<ProgressFn>,
) -> Result<RedactSummary> {
    opts.validate()?;
    job.validate()?;
    opts.check_review_dir(output.parent().unwrap_or(Path::new(".")))?;
    let outputs = opts.outputs(input, output);
    let dirs = check_paths(
        input,
        &outputs.iter().map(PathBuf::as_path).collect::<Vec<_>>(),
    )?;
    let threads = opts.threads_for(job);
    let mut dets = Detectors::load(&opts.detector_spec(), threads.ort, job.device)?;
    let summary = if is_image(input) {
        redact_image(input, output, opts, job, &mut dets)
    } else {
        redact_video(input, output, opts, job, &mut dets, progress, None)
    }?;
    dirs.keep();
    Ok(summary)
}

/// Redacts a video file. Paths must have been checked with [`check_paths`]. With `highlights`
/// given, an analyser of the input is made in its slot and fed from the same decode (`veil
/// process`).
pub fn redact_video(
    input_path: &Path,
    output: &Path,
    opts: &RedactOptions,
    job: &Job,
    dets: &mut Detectors,
    progress: Option<ProgressFn>,
    highlights: Option<(&HighlightOptions, &mut Option<Analyzer>)>,
) -> Result<RedactSummary> {
    let started = Instant::now();
    let container = container_for(output)?;
    let threads = opts.threads_for(job);
    let input = Input::open_with(input_path, threads.decode, opts.encode.hwaccel)?;
    let info = input.info.clone();
    check_input(input_path, &input, opts)?;
    let (w, h) = (info.width as usize, info.height as usize);
    let low_memory = LowMemoryGuard::new(is_large_frame(w, h));
    dets.set_low_memory(low_memory.is_on())?;
    let ropts = opts.resolve(info.fps(), (w, h), job);
    let work_fmt = working_format(input.decoder.format(), info.width, info.height);
    let tb = f64::from(input.time_base());
    let default_dur = input.frame_ticks();
    let guard = TempGuard::new(temp_path_for(output));
    let budget = EncodeBudget {
        threads: threads.x264,
        low_memory: low_memory.is_on(),
    };
    let out = Output::create(
        guard.path(),
        container,
        &input,
        work_fmt,
        &opts.encode,
        budget,
    )?;
    let copied = out.copied_streams();
    let has_audio = !copied.is_empty();
    let tap = match highlights {
        Some((hopts, slot)) => {
            *slot = Some(Analyzer::new(&input, hopts, job)?);
            slot.as_mut()
        }
        None => None,
    };
    let tap_stream = tap.as_ref().and_then(|t| t.audio_stream());
    let policy = if opts.allow_damaged {
        DamagePolicy::Record
    } else {
        DamagePolicy::FailClosed
    };
    let mut streams = copied.clone();
    streams.extend(tap_stream);
    let cancel = job.cancel.clone();
    let decoder = move || {
        Decoder::new(input, policy, Some(work_fmt))
            .with_streams(streams)
            .with_cancel(cancel)
    };

    let source = match opts.edits.as_ref().and_then(|e| e.replay.as_ref()) {
        Some(replay) => BoxSource::Replay(replay),
        None => BoxSource::Detect(&mut *dets),
    };
    let geo = stage::Geometry {
        w,
        h,
        tb,
        turn: upright_turns(info.rotation),
        default_dur,
        fps: info.fps(),
    };
    let frames_hint = info.frames_hint;
    let make_stage = |enc| {
        let sinks = stage::Sinks {
            enc,
            tap,
            progress,
            total: frames_hint,
        };
        stage::DetectStage::new(&ropts, source, sinks, job, geo)
    };
    let ends = threads::Ends {
        decoder,
        output: out,
        copied,
        tap: tap_stream,
        queue: queue_len(w, h),
    };
    let result = threads::run(ends, &opts.redact, job, make_stage);
    let (mut frames, encoded) = result?;
    // Redaction ran on the encode thread (see `stage`).
    frames.timing.redact_s += encoded.redact_s;
    let packets = encoded.packets;
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

    let review_page = opts.review_page(output);
    let record = record::Record {
        review_page: &review_page,
        input: input_path,
        output,
        info: &info,
        settings: &ropts,
        models: &dets.models,
        has_audio,
    };
    let count = |c: Class| frames.tracks.iter().filter(|t| t.class == c).count();
    let (face_tracks, plate_tracks) = (count(Class::Face), count(Class::Plate));
    let (damaged, discontinuities) = (frames.damaged.len(), frames.discontinuities.len());
    let whole_frames = frames.whole_frames.len();
    let (audit_path, review) = record.write(&mut frames)?;
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
        damaged,
        discontinuities,
        whole_frames,
        seconds,
        fps: frames.frames_out as f64 / seconds.max(1e-9),
        timing: frames.timing,
        passes: frames.counts,
    })
}

/// Refuses, before the first frame is decoded, an input veil cannot redact as asked: frames
/// over `--max-pixels`, or audio edits that cannot apply to its audio.
fn check_input(input_path: &Path, input: &Input, opts: &RedactOptions) -> Result<()> {
    let info = &input.info;
    let pixels = info.width as u64 * info.height as u64;
    if pixels > opts.max_pixels {
        return Err(crate::error::InvalidSetting::Path {
            path: input_path.to_path_buf(),
            why: format!(
                "its frames are {}x{} ({pixels} pixels), over --max-pixels {}: a run holds dozens of frames in memory (about {} MiB at this size); raise --max-pixels to redact it anyway",
                info.width,
                info.height,
                opts.max_pixels,
                (pixels * 3 / 2 * 24) >> 20
            ),
        }
        .into());
    }
    crate::edits::check_spans(
        &opts.encode.audio_edits,
        opts.encode.keep_audio && input.has_audio(),
        input.duration_s(),
    )
}
