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
    /// the detections of `audit` when it describes this same input.
    pub fn build(
        input: &Path,
        edits: &Edits,
        edits_path: &Path,
        audit: Option<&Path>,
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
            if rec.input.sha256.eq_ignore_ascii_case(&input_sha) {
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
            } else {
                tracing::warn!(
                    "{} describes another input; detecting again (track ids are stable for the same settings)",
                    a.display()
                );
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

/// Plans `veil redact INPUT --edits EDITS -o OUTPUT`: the reviewer's corrections, and the
/// detections of `detections` (default: OUTPUT's audit record when it describes this input).
/// An audit given explicitly that does not describe the input is an error.
pub fn plan(
    input: &Path,
    output: &Path,
    edits_path: &Path,
    detections: Option<&Path>,
) -> Result<EditPlan> {
    let edits = Edits::read(edits_path)?;
    let audit = detections
        .map(Path::to_path_buf)
        .unwrap_or_else(|| crate::audit::audit_path(output));
    let plan = EditPlan::build(input, &edits, edits_path, Some(&audit))?;
    if plan.replay.is_none() && detections.is_some() {
        return Err(VeilError::setting(
            "--detections",
            format!("{} does not describe {}", audit.display(), input.display()),
        ));
    }
    Ok(plan)
}
