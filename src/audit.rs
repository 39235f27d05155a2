//! The audit record written beside every output: what was redacted, with which models and
//! settings, and the hashes of input and output. Schema in README.md ("Audit record").

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::detect::Class;
use crate::edits::EditsRecord;
use crate::error::{Result, VeilError};
use crate::models::ResolvedModel;
use crate::util::sha256_file;

pub const AUDIT_SCHEMA: &str = "veil.audit/1";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AuditRecord {
    pub schema: String,
    pub veil_version: String,
    /// Seconds since the Unix epoch when the record was written.
    pub created_unix: u64,
    pub input: FileRecord,
    pub output: FileRecord,
    pub settings: serde_json::Value,
    pub models: Vec<ModelRecord>,
    pub onnxruntime: Option<String>,
    pub video: Option<serde_json::Value>,
    /// Frames skipped as undecodable (only with --allow-damaged); empty otherwise.
    pub damaged: Vec<DamagedSpan>,
    /// Frames whose timestamps were not increasing and were moved forward by one tick.
    pub timestamp_fixups: u64,
    /// Places where the video's timestamps jumped back (joined segments): the frames from there
    /// on were moved forward so every segment keeps its duration.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub discontinuities: Vec<Discontinuity>,
    /// Frames redacted whole: a video's first or last frame smeared by fast camera motion,
    /// with no sharp frame beyond it to tell where its objects are.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub whole_frames: Vec<WholeFrame>,
    pub tracks: Vec<TrackRecord>,
    /// The reviewer's corrections a re-render applied (`--edits`, `--mute`, `--bleep`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edits: Option<EditsRecord>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FileRecord {
    pub path: String,
    pub sha256: String,
    pub bytes: u64,
    pub frames: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelRecord {
    pub id: String,
    pub task: String,
    pub sha256: String,
    pub license: String,
    /// True when the file matched the hash pinned in the manifest.
    pub pinned: bool,
}

impl From<&ResolvedModel> for ModelRecord {
    fn from(m: &ResolvedModel) -> Self {
        ModelRecord {
            id: m.id.clone(),
            task: format!("{:?}", m.task).to_lowercase(),
            sha256: m.sha256.clone(),
            license: m.license.clone(),
            pinned: m.pinned,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DamagedSpan {
    /// Output frame index: the frame decoded with errors, or the next frame that did decode
    /// after a skipped span.
    pub before_frame: u64,
    pub time_s: f64,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Discontinuity {
    /// The first frame after the jump.
    pub before_frame: u64,
    /// Its time in the input, and how far it and the frames after it were moved, in seconds.
    pub time_s: f64,
    pub shift_s: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WholeFrame {
    pub frame: u64,
    pub time_s: f64,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TrackRecord {
    pub id: u32,
    pub class: Class,
    pub first_frame: u64,
    pub last_frame: u64,
    pub first_time_s: f64,
    pub last_time_s: f64,
    /// Frames on which this track was redacted.
    pub frames: u64,
    /// Frames on which a detector fired for it (the rest are gap-filled or extended).
    pub detected_frames: u64,
    pub max_score: f32,
    /// Redacted boxes before mask scaling: `[frame, x, y, w, h]`, frame pixels.
    pub boxes: Vec<[i64; 5]>,
}

/// Collects per-track boxes while frames are finalised.
#[derive(Debug, Default)]
pub struct TrackLog {
    tracks: BTreeMap<u32, TrackRecord>,
}

impl TrackLog {
    pub fn add(&mut self, id: u32, class: Class, frame: u64, time_s: f64, b: [i32; 4]) {
        let t = self.tracks.entry(id).or_insert_with(|| TrackRecord {
            id,
            class,
            first_frame: frame,
            last_frame: frame,
            first_time_s: time_s,
            last_time_s: time_s,
            frames: 0,
            detected_frames: 0,
            max_score: 0.0,
            boxes: Vec::new(),
        });
        // A track can redact two boxes on one frame (its gap-filled box and where following
        // found it): both are listed, the frame counts once.
        if t.boxes.last().map_or(true, |l| l[0] != frame as i64) {
            t.frames += 1;
        }
        t.last_frame = frame;
        t.last_time_s = time_s;
        t.boxes.push([
            frame as i64,
            b[0] as i64,
            b[1] as i64,
            b[2] as i64,
            b[3] as i64,
        ]);
    }

    pub fn set_detections(&mut self, id: u32, detected: u64, max_score: f32) {
        if let Some(t) = self.tracks.get_mut(&id) {
            t.detected_frames = detected;
            t.max_score = max_score;
        }
    }

    pub fn into_records(self) -> Vec<TrackRecord> {
        self.tracks.into_values().collect()
    }
}

/// Path of the audit record for an output file: `<output>.audit.json`.
pub fn audit_path(output: &Path) -> std::path::PathBuf {
    let mut name = output.file_name().unwrap_or_default().to_os_string();
    name.push(".audit.json");
    output.with_file_name(name)
}

impl AuditRecord {
    /// Writes the record atomically (temp file, then rename).
    pub fn write(&self, path: &Path) -> Result<()> {
        let json =
            serde_json::to_vec_pretty(self).map_err(|e| VeilError::serialize("audit record", e))?;
        crate::fsutil::write_atomic(path, &json)
    }

    /// Reads and checks a record; a truncated or foreign file is an error, never trusted.
    pub fn read(path: &Path) -> Result<AuditRecord> {
        let data =
            std::fs::read(path).map_err(|e| VeilError::io("cannot read audit record", path, e))?;
        Self::parse(&data).map_err(|msg| VeilError::Input {
            path: path.to_path_buf(),
            msg,
        })
    }

    /// Parses and checks a record from bytes.
    pub fn parse(data: &[u8]) -> std::result::Result<AuditRecord, String> {
        let rec: AuditRecord = serde_json::from_slice(data)
            .map_err(|e| format!("not a valid veil audit record ({e})"))?;
        if rec.schema != AUDIT_SCHEMA {
            return Err(format!(
                "audit schema '{}' is not {AUDIT_SCHEMA}",
                rec.schema
            ));
        }
        for (what, h) in [("input", &rec.input.sha256), ("output", &rec.output.sha256)] {
            if h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(format!("audit {what} sha256 is not 64 hex digits"));
            }
        }
        Ok(rec)
    }
}

/// What a finished job records beside its output.
pub struct JobRecord<'a> {
    pub input: &'a Path,
    pub output: &'a Path,
    pub frames_in: u64,
    pub frames_out: u64,
    pub video: Option<serde_json::Value>,
    pub damaged: Vec<DamagedSpan>,
    pub fixups: u64,
    pub discontinuities: Vec<Discontinuity>,
    pub whole_frames: Vec<WholeFrame>,
    pub tracks: Vec<TrackRecord>,
    /// The settings the run used (resolved).
    pub settings: serde_json::Value,
    pub models: &'a [ResolvedModel],
    pub edits: Option<EditsRecord>,
}

/// Writes the audit record of a finished output (hashing both files); if it cannot be written
/// the output is removed, as an output without its record is not a finished job.
pub fn write_audit(job: JobRecord) -> Result<PathBuf> {
    let file = |path: &Path, frames: u64| -> Result<FileRecord> {
        let meta = std::fs::metadata(path).map_err(|e| VeilError::io("cannot stat", path, e))?;
        Ok(FileRecord {
            path: path.display().to_string(),
            sha256: sha256_file(path)?,
            bytes: meta.len(),
            frames,
        })
    };
    let path = audit_path(job.output);
    let res = (|| -> Result<()> {
        AuditRecord {
            schema: AUDIT_SCHEMA.into(),
            veil_version: env!("CARGO_PKG_VERSION").into(),
            created_unix: crate::fsutil::now_unix(),
            input: file(job.input, job.frames_in)?,
            output: file(job.output, job.frames_out)?,
            settings: job.settings,
            models: job.models.iter().map(ModelRecord::from).collect(),
            onnxruntime: crate::runtime::loaded_library().map(|p| p.display().to_string()),
            video: job.video,
            damaged: job.damaged,
            timestamp_fixups: job.fixups,
            discontinuities: job.discontinuities,
            whole_frames: job.whole_frames,
            tracks: job.tracks,
            edits: job.edits,
        }
        .write(&path)
    })();
    if let Err(e) = res {
        let _ = std::fs::remove_file(job.output);
        return Err(e);
    }
    Ok(path)
}
