//! What a finished job leaves: the audit record, the review page, and the summary it returns.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::stage::StageResult;
use crate::audit::{self, JobRecord};
use crate::decode::VideoInfo;
use crate::error::{Result, VeilError};
use crate::models::ResolvedModel;
use crate::options::ResolvedOptions;

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
    /// Stretches of damaged input recorded in the audit (only with --allow-damaged).
    pub damaged: usize,
    /// Timestamp jumps the output smoothed over (recorded in the audit).
    pub discontinuities: usize,
    /// Frames redacted whole (see `whole_frames` in the audit record).
    pub whole_frames: usize,
    pub seconds: f64,
    pub fps: f64,
    /// Seconds spent in each stage (redaction on the encode thread, the rest on the detect
    /// thread).
    pub timing: StageTiming,
    /// How often each detector pass ran.
    pub passes: PassCounts,
}

/// How often each detector pass ran (see `schedule`).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct PassCounts {
    /// Frames the scheduler planned (all frames, unless boxes were replayed).
    pub frames: u64,
    /// Full-frame face passes.
    pub keys: u64,
    /// Small-face passes.
    pub hires: u64,
    /// Face crops looked at between keyframes.
    pub crops: u64,
    pub plate_samples: u64,
    /// Plate samples whose turned looks covered the whole frame.
    pub all_turns: u64,
    /// Pieces, tiles and regions around candidates the plate model looked at.
    pub plate_tiles: u64,
    /// Plate samples whose looks ran side by side on two sessions (`Detectors::plate_pair`).
    pub side_by_side: u64,
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

/// What the audit record and the review page of a finished video say.
pub(super) struct Record<'a> {
    pub review_page: &'a Path,
    pub input: &'a Path,
    pub output: &'a Path,
    pub info: &'a VideoInfo,
    pub settings: &'a ResolvedOptions,
    pub models: &'a [ResolvedModel],
    pub has_audio: bool,
}

impl Record<'_> {
    /// Writes the audit record (the track log and damaged spans move into it), then the
    /// review page; returns their paths.
    pub fn write(&self, frames: &mut StageResult) -> Result<(PathBuf, PathBuf)> {
        let audit_path = audit::write_audit(JobRecord {
            input: self.input,
            output: self.output,
            frames_in: frames.frames_in,
            frames_out: frames.frames_out,
            video: Some(
                serde_json::to_value(self.info)
                    .map_err(|e| VeilError::serialize("video info", e))?,
            ),
            damaged: std::mem::take(&mut frames.damaged),
            fixups: frames.fixups,
            discontinuities: std::mem::take(&mut frames.discontinuities),
            whole_frames: std::mem::take(&mut frames.whole_frames),
            tracks: std::mem::take(&mut frames.tracks),
            settings: serde_json::to_value(self.settings)
                .map_err(|e| VeilError::serialize("settings", e))?,
            models: self.models,
            edits: self.settings.opts.edits_record(),
        })?;
        let audit = audit::AuditRecord::read(&audit_path)?;
        let review = crate::review::write_page(
            self.review_page,
            &audit,
            self.input,
            self.output,
            self.info.fps(),
            self.has_audio,
            &frames.thumbs,
        )?;
        Ok((audit_path, review))
    }
}
