//! A re-render with a reviewer's corrections (`veil redact --edits`): which tracks to leave
//! out, which boxes to add, and whose detections to re-use.

use std::collections::HashSet;
use std::path::Path;

use crate::audit::AuditRecord;
use crate::detect::{BBox, Class};
use crate::edits::{Edits, EditsRecord, ManualBox, AUDIO_METHOD, MANUAL_ID_BASE};
use crate::error::{Result, VeilError};

/// Boxes per frame: (track id, class, box).
pub type FrameBoxes = std::collections::HashMap<u64, Vec<(u32, Class, BBox)>>;

/// Corrections ready to apply during a re-render.
#[derive(Debug, Default)]
pub struct EditPlan {
    pub suppressed: HashSet<u32>,
    pub manual: Vec<ManualBox>,
    /// Boxes per frame from the audit record of the first run (suppressed tracks included;
    /// they are filtered when redacting). `None`: detect again.
    pub replay: Option<FrameBoxes>,
    pub record: EditsRecord,
}

impl EditPlan {
    /// Manual boxes covering `frame`.
    pub fn manual_at(&self, frame: u64) -> Vec<(u32, Class, BBox)> {
        self.manual
            .iter()
            .enumerate()
            .filter_map(|(i, m)| {
                m.at(frame)
                    .map(|b| (MANUAL_ID_BASE + i as u32, Class::Manual, b))
            })
            .collect()
    }

    /// Builds the plan for re-rendering `input` with `edits` (read from `edits_path`), re-using
    /// the detections of `audit` only when it is a record this veil wrote for this input with
    /// the settings and models of `fresh`, and the output it describes is still as recorded
    /// (see [`reusable`]); otherwise the detectors run again.
    pub fn build(
        input: &Path,
        edits: &Edits,
        edits_path: &Path,
        audit: Option<&Path>,
        fresh: &FreshRun,
    ) -> Result<EditPlan> {
        let input_sha = crate::util::sha256_file(input)?;
        if !input_sha.eq_ignore_ascii_case(&edits.input_sha256) {
            return Err(VeilError::setting(
                "--edits",
                format!(
                    "{} was made for another file (input sha256 {}…, this input {}…)",
                    edits_path.display(),
                    &edits.input_sha256[..12],
                    &input_sha[..12]
                ),
            ));
        }
        let mut replay = None;
        let mut detections_from = None;
        if let Some(a) = audit.filter(|a| a.is_file()) {
            let rec = AuditRecord::read(a)?;
            let why_not = reusable(&rec, &input_sha, fresh);
            if let Some(why) = &why_not {
                tracing::warn!("{}: {why}; detecting again", a.display());
            }
            if why_not.is_none() {
                let mut map = FrameBoxes::default();
                for t in rec.tracks.iter().filter(|t| t.class != Class::Manual) {
                    for [f, x, y, w, h] in &t.boxes {
                        map.entry(*f as u64).or_default().push((
                            t.id,
                            t.class,
                            BBox::new(*x as f32, *y as f32, (*x + *w) as f32, (*y + *h) as f32),
                        ));
                    }
                }
                let known: HashSet<u32> = rec.tracks.iter().map(|t| t.id).collect();
                if let Some(t) = edits.tracks.iter().find(|t| !known.contains(&t.id)) {
                    return Err(VeilError::setting(
                        "--edits",
                        format!(
                            "{}: track {} is not in {}",
                            edits_path.display(),
                            t.id,
                            a.display()
                        ),
                    ));
                }
                replay = Some(map);
                detections_from = Some(crate::util::sha256_file(a)?);
            }
        }
        let edits_sha = crate::util::sha256_file(edits_path)?;
        Ok(EditPlan {
            suppressed: edits.suppressed(),
            manual: edits.boxes.clone(),
            replay,
            record: EditsRecord {
                sha256: Some(edits_sha),
                path: Some(edits_path.display().to_string()),
                detections_from,
                tracks: edits.tracks.clone(),
                boxes: edits.boxes.clone(),
                audio: edits.audio.clone(),
                audio_method: (!edits.audio.is_empty()).then(|| AUDIO_METHOD.to_string()),
            },
        })
    }
}

/// What a fresh run would use: an audit record's boxes are re-used only when its run used
/// the same.
pub struct FreshRun<'a> {
    /// The run's settings resolved for a video at `fps` and `(w, h)`, as the audit keeps them.
    pub settings: &'a dyn Fn(f64, (usize, usize)) -> Result<serde_json::Value>,
    /// (id, sha256) of the models it would load.
    pub models: Vec<(String, String)>,
}

/// The settings that decide which boxes a run finds: a record made with others is stale.
pub const DETECTION_SETTINGS: [&str; 20] = [
    "thresh",
    "plate_thresh",
    "detect_size",
    "hires_size",
    "hires_every",
    "key_every",
    "plates",
    "plate_every",
    "plate_turns_every",
    "plate_tiles",
    "plate_tile",
    "plate_rotate",
    "follow_s",
    "face_model",
    "plate_model",
    "track",
    "thorough",
    "follow_frames",
    "plate_track",
    "cadence",
];

/// Why the boxes of `rec` cannot stand in for a fresh run on the input whose sha256 is
/// `input_sha` (None: they can): another input or veil version, other detection settings or
/// models, or an output that is no longer the one it describes. A re-render must never redact
/// less than a fresh run would, except where a reviewer's edit says so.
pub fn reusable(rec: &AuditRecord, input_sha: &str, fresh: &FreshRun) -> Option<String> {
    if !rec.input.sha256.eq_ignore_ascii_case(input_sha) {
        return Some("it describes another input".into());
    }
    if rec.veil_version != env!("CARGO_PKG_VERSION") {
        return Some(format!(
            "it was written by veil {}, not {}",
            rec.veil_version,
            env!("CARGO_PKG_VERSION")
        ));
    }
    let Some(video) = rec.video.as_ref() else {
        return Some("it describes no video".into());
    };
    let fps = video["frame_rate"][0].as_f64().unwrap_or(0.0)
        / video["frame_rate"][1].as_f64().unwrap_or(1.0).max(1.0);
    let size = (
        video["width"].as_u64().unwrap_or(0) as usize,
        video["height"].as_u64().unwrap_or(0) as usize,
    );
    let now = match (fresh.settings)(fps, size) {
        Ok(v) => v,
        Err(e) => return Some(format!("its settings cannot be compared ({e})")),
    };
    if let Some(k) = DETECTION_SETTINGS
        .iter()
        .find(|k| rec.settings.get(**k) != now.get(**k))
    {
        return Some(format!("it was made with another {k} setting"));
    }
    let used: Vec<(String, String)> = rec
        .models
        .iter()
        .map(|m| (m.id.clone(), m.sha256.to_ascii_lowercase()))
        .collect();
    if used != fresh.models {
        return Some("it was made with other models".into());
    }
    let out = Path::new(&rec.output.path);
    match crate::util::sha256_file(out) {
        Ok(h) if h.eq_ignore_ascii_case(&rec.output.sha256) => None,
        Ok(_) => Some(format!(
            "the output it describes, {}, has changed since",
            out.display()
        )),
        Err(_) => Some(format!(
            "the output it describes, {}, cannot be read",
            out.display()
        )),
    }
}

/// Plans `veil redact INPUT --edits EDITS -o OUTPUT`: the reviewer's corrections, and the
/// detections of `detections` (default: OUTPUT's audit record) when they can be re-used (see
/// [`reusable`]). An audit given explicitly that cannot be is an error.
pub fn plan(
    input: &Path,
    output: &Path,
    edits_path: &Path,
    detections: Option<&Path>,
    fresh: &FreshRun,
) -> Result<EditPlan> {
    let edits = Edits::read(edits_path)?;
    let audit = detections
        .map(Path::to_path_buf)
        .unwrap_or_else(|| crate::audit::audit_path(output));
    let plan = EditPlan::build(input, &edits, edits_path, Some(&audit), fresh)?;
    if plan.replay.is_none() && detections.is_some() {
        let why = AuditRecord::read(&audit)
            .ok()
            .and_then(|rec| reusable(&rec, &crate::util::sha256_file(input).ok()?, fresh))
            .unwrap_or_else(|| "it cannot be read".into());
        return Err(VeilError::setting(
            "--detections",
            format!(
                "{} cannot be re-used for {}: {why}",
                audit.display(),
                input.display()
            ),
        ));
    }
    Ok(plan)
}
