//! `veil process`: one decode for both jobs — the redacted video with its audit record, and
//! the highlights (JSON, WebVTT, review page) whose thumbnails come from the redacted frames.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use crate::decode::is_image;
use crate::detect::Detectors;
use crate::error::{Result, VeilError};
use crate::fsutil::check_paths;
use crate::highlights::{self, HighlightOptions, OutputNames};
use crate::job::Job;
use crate::options::RedactOptions;
use crate::pipeline::{self, RedactSummary};
use crate::progress::ProgressFn;

#[derive(Debug, Serialize)]
pub struct ProcessSummary {
    pub redact: RedactSummary,
    pub highlights: usize,
    pub highlights_json: PathBuf,
    pub highlights_vtt: PathBuf,
    pub review_html: PathBuf,
    pub seconds: f64,
}

/// The redacted file `veil process` writes in `dir` for `input`: same container when it is
/// one veil writes, else Matroska.
pub fn redacted_name(dir: &Path, input: &Path) -> PathBuf {
    let stem = input
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "video".into());
    let ext = input
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase())
        .filter(|e| ["mp4", "mov", "mkv"].contains(&e.as_str()))
        .unwrap_or_else(|| "mkv".into());
    dir.join(format!("{stem}.redacted.{ext}"))
}

/// Redacts `input` into `output` and analyses it for highlights in the same decode, then
/// writes the highlight files named by `names`. The redacted output is committed before the
/// highlights are computed: a failure there leaves a complete, audited redaction.
#[allow(clippy::too_many_arguments)]
pub fn process_video(
    input: &Path,
    output: &Path,
    names: &OutputNames,
    opts: &RedactOptions,
    hopts: &HighlightOptions,
    job: &Job,
    dets: &mut Detectors,
    progress: Option<ProgressFn>,
) -> Result<ProcessSummary> {
    let started = Instant::now();
    let mut analyzer = None;
    let summary = pipeline::redact_video(
        input,
        output,
        opts,
        job,
        dets,
        progress,
        Some((hopts, &mut analyzer)),
    )?;
    let highlights = |e: VeilError| VeilError::Highlights {
        output: output.to_path_buf(),
        cause: Box::new(e),
    };
    let analyzer =
        analyzer.ok_or_else(|| highlights(VeilError::Internal("no analyser was made".into())))?;
    // Duration 0: the analyser takes the end of the video or the audio, whichever is later.
    let analysis = analyzer.finish(0.0, hopts, job).map_err(highlights)?;
    let sha = crate::audit::AuditRecord::read(&summary.audit)
        .ok()
        .map(|a| a.input.sha256);
    // The page plays the redacted video only: it sits in the output folder, which may be
    // disclosed (the original is on the redaction review page, in the review folder).
    highlights::output::write(&analysis, names, input, sha.as_deref(), Some(output), None)
        .map_err(highlights)?;
    Ok(ProcessSummary {
        highlights: analysis.highlights.len(),
        highlights_json: names.json.clone(),
        highlights_vtt: names.vtt.clone(),
        review_html: names.html.clone(),
        seconds: started.elapsed().as_secs_f64(),
        redact: summary,
    })
}

/// `veil process IN -o DIR`.
pub fn process_file(
    input: &Path,
    dir: &Path,
    opts: &RedactOptions,
    hopts: &HighlightOptions,
    job: &Job,
    progress: Option<ProgressFn>,
) -> Result<ProcessSummary> {
    opts.validate()?;
    hopts.validate()?;
    job.validate()?;
    if is_image(input) {
        return Err(VeilError::setting(
            "INPUT",
            format!(
                "{}: `process` takes video; redact images with `veil redact`",
                input.display()
            ),
        ));
    }
    opts.check_review_dir(dir)?;
    let output = redacted_name(dir, input);
    let names = OutputNames::new(dir, "");
    let mut outputs = opts.outputs(input, &output);
    outputs.extend(names.paths());
    let dirs = check_paths(
        input,
        &outputs.iter().map(PathBuf::as_path).collect::<Vec<_>>(),
    )?;
    if let Some(x) = &hopts.extra {
        // An unusable extra model is found now, not after the whole redaction.
        x.check(job.device)?;
    }
    let threads = opts.threads_for(job);
    let mut dets = Detectors::load(&opts.detector_spec(), threads.ort, job.device)?;
    let summary = process_video(
        input, &output, &names, opts, hopts, job, &mut dets, progress,
    )?;
    dirs.keep();
    Ok(summary)
}
