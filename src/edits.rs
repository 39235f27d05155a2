//! A reviewer's corrections (`edits.json`, schema `veil.edits/1`) and the command-line audio
//! spans (`--mute`, `--bleep`): tracks marked not sensitive, manual boxes with keyframes, and
//! audio spans to mute or bleep. Every correction carries its reason (the legal basis).

use std::collections::HashSet;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::detect::{BBox, Class};
use crate::error::{Result, VeilError};

pub const SCHEMA: &str = "veil.edits/1";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Edits {
    pub schema: String,
    /// sha256 of the input the edits were made on.
    pub input_sha256: String,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub tracks: Vec<TrackEdit>,
    #[serde(default)]
    pub boxes: Vec<ManualBox>,
    #[serde(default)]
    pub audio: Vec<AudioEdit>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrackAction {
    /// A false positive: the track is not redacted.
    NotSensitive,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TrackEdit {
    pub id: u32,
    pub action: TrackAction,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Keyframe {
    pub frame: u64,
    pub x: i64,
    pub y: i64,
    pub w: i64,
    pub h: i64,
}

/// A region redacted from its first to its last keyframe, linearly interpolated between them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ManualBox {
    pub reason: String,
    pub keyframes: Vec<Keyframe>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AudioAction {
    Mute,
    /// Replaced by a 1 kHz tone.
    Bleep,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AudioEdit {
    pub action: AudioAction,
    pub start: f64,
    pub end: f64,
    pub reason: String,
}

impl Edits {
    /// Reads and validates an edits file.
    pub fn read(path: &Path) -> Result<Edits> {
        let text = std::fs::read(path).map_err(|e| VeilError::io("cannot read edits", path, e))?;
        let e: Edits = serde_json::from_slice(&text).map_err(|e| {
            VeilError::Config(format!("{}: not a veil edits file: {e}", path.display()))
        })?;
        e.validate()
            .map_err(|m| VeilError::Config(format!("{}: {m}", path.display())))?;
        Ok(e)
    }

    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.schema != SCHEMA {
            return Err(format!("schema is {:?}, expected {SCHEMA:?}", self.schema));
        }
        if self.input_sha256.len() != 64
            || !self.input_sha256.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err("input_sha256 must be 64 hex digits".into());
        }
        let mut seen = HashSet::new();
        for t in &self.tracks {
            if t.reason.trim().is_empty() {
                return Err(format!("track {}: every correction needs a reason", t.id));
            }
            if !seen.insert(t.id) {
                return Err(format!("track {} is edited twice", t.id));
            }
        }
        for (i, b) in self.boxes.iter().enumerate() {
            if b.reason.trim().is_empty() {
                return Err(format!("box {}: every correction needs a reason", i + 1));
            }
            if b.keyframes.is_empty() {
                return Err(format!("box {}: no keyframes", i + 1));
            }
            for k in &b.keyframes {
                if k.w <= 0 || k.h <= 0 || k.w > 1 << 16 || k.h > 1 << 16 {
                    return Err(format!(
                        "box {}: keyframe {} has an empty or huge size",
                        i + 1,
                        k.frame
                    ));
                }
                if k.x.abs() > 1 << 16 || k.y.abs() > 1 << 16 {
                    return Err(format!(
                        "box {}: keyframe {} is far outside any frame",
                        i + 1,
                        k.frame
                    ));
                }
            }
            if b.keyframes.windows(2).any(|w| w[1].frame <= w[0].frame) {
                return Err(format!(
                    "box {}: keyframes must be in increasing frame order",
                    i + 1
                ));
            }
        }
        for a in &self.audio {
            check_span(a)?;
        }
        Ok(())
    }

    pub fn suppressed(&self) -> HashSet<u32> {
        self.tracks
            .iter()
            .filter(|t| t.action == TrackAction::NotSensitive)
            .map(|t| t.id)
            .collect()
    }
}

fn check_span(a: &AudioEdit) -> std::result::Result<(), String> {
    if !(a.start.is_finite() && a.end.is_finite() && a.start >= 0.0 && a.end > a.start) {
        return Err(format!(
            "audio span {}-{}: needs 0 <= start < end",
            a.start, a.end
        ));
    }
    if a.reason.trim().is_empty() {
        return Err(format!(
            "audio span {}-{}: every correction needs a reason",
            a.start, a.end
        ));
    }
    Ok(())
}

/// Parses a command-line span `START-END` in seconds (`12.5-14`) or `[hh:]mm:ss(.s)` each.
pub fn parse_span(s: &str, action: AudioAction) -> Result<AudioEdit> {
    let bad =
        || {
            VeilError::Config(format!(
            "--{} {s:?}: expected START-END in seconds or [hh:]mm:ss, e.g. 12.5-14 or 1:02-1:05.5",
            if action == AudioAction::Mute { "mute" } else { "bleep" }
        ))
        };
    let (a, b) = s.split_once('-').ok_or_else(bad)?;
    let secs = |t: &str| -> Option<f64> {
        let mut total = 0.0;
        for part in t.trim().split(':') {
            let v: f64 = part.parse().ok()?;
            if !v.is_finite() || v < 0.0 {
                return None;
            }
            total = total * 60.0 + v;
        }
        Some(total)
    };
    let e = AudioEdit {
        action,
        start: secs(a).ok_or_else(bad)?,
        end: secs(b).ok_or_else(bad)?,
        reason: "command line".into(),
    };
    check_span(&e).map_err(|m| {
        VeilError::Config(format!(
            "--{}: {m}",
            if action == AudioAction::Mute {
                "mute"
            } else {
                "bleep"
            }
        ))
    })?;
    Ok(e)
}

impl ManualBox {
    /// The box at `frame`, if the region covers it: linear between keyframes.
    pub fn at(&self, frame: u64) -> Option<BBox> {
        let k = &self.keyframes;
        let first = k.first()?;
        let last = k.last()?;
        if frame < first.frame || frame > last.frame {
            return None;
        }
        let i = k.iter().rposition(|kf| kf.frame <= frame)?;
        let a = k[i];
        let b = *k.get(i + 1).unwrap_or(&a);
        let t = if b.frame > a.frame {
            (frame - a.frame) as f32 / (b.frame - a.frame) as f32
        } else {
            0.0
        };
        let lerp = |p: i64, q: i64| p as f32 + (q - p) as f32 * t;
        let (x, y, w, h) = (
            lerp(a.x, b.x),
            lerp(a.y, b.y),
            lerp(a.w, b.w),
            lerp(a.h, b.h),
        );
        Some(BBox::new(x, y, x + w, y + h))
    }
}

/// How audio edits are applied (recorded in the audit).
pub const AUDIO_METHOD: &str = "AAC-LC and PCM audio: only the packets that overlap a span, plus one packet on each side, are decoded, edited (digital silence, or a 1 kHz tone) and re-encoded with the same codec; every other packet is copied bit-exact. Other codecs: the whole stream is re-encoded";

/// Ids given to manual boxes in the audit record: 1_000_000 + their index in the edits.
pub const MANUAL_ID_BASE: u32 = 1_000_000;

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
            return Err(VeilError::Config(format!(
                "{} was made for another file (input sha256 {}…, this input {}…)",
                edits_path.display(),
                &edits.input_sha256[..12],
                &input_sha[..12]
            )));
        }
        let mut replay = None;
        let mut detections_from = None;
        if let Some(a) = audit.filter(|a| a.is_file()) {
            let rec = crate::audit::AuditRecord::read(a)?;
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
                    return Err(VeilError::Config(format!(
                        "{}: track {} is not in {}",
                        edits_path.display(),
                        t.id,
                        a.display()
                    )));
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

/// What a re-render records about the edits it applied.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EditsRecord {
    /// sha256 of the edits file, when one was given.
    pub sha256: Option<String>,
    pub path: Option<String>,
    /// sha256 of the audit record whose detections were re-used.
    pub detections_from: Option<String>,
    pub tracks: Vec<TrackEdit>,
    pub boxes: Vec<ManualBox>,
    pub audio: Vec<AudioEdit>,
    /// How the audio edits were applied.
    pub audio_method: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edits() -> Edits {
        Edits {
            schema: SCHEMA.into(),
            input_sha256: "a".repeat(64),
            source: None,
            tracks: vec![TrackEdit {
                id: 2,
                action: TrackAction::NotSensitive,
                reason: "poster, not a person".into(),
            }],
            boxes: vec![ManualBox {
                reason: "bystander's face behind glass".into(),
                keyframes: vec![
                    Keyframe {
                        frame: 10,
                        x: 0,
                        y: 0,
                        w: 10,
                        h: 20,
                    },
                    Keyframe {
                        frame: 20,
                        x: 100,
                        y: 50,
                        w: 30,
                        h: 20,
                    },
                ],
            }],
            audio: vec![],
        }
    }

    #[test]
    fn manual_boxes_interpolate_between_keyframes_and_stop_at_the_ends() {
        let e = edits();
        let b = &e.boxes[0];
        assert_eq!(b.at(9), None);
        assert_eq!(b.at(10), Some(BBox::new(0.0, 0.0, 10.0, 20.0)));
        assert_eq!(b.at(15), Some(BBox::new(50.0, 25.0, 70.0, 45.0)));
        assert_eq!(b.at(20), Some(BBox::new(100.0, 50.0, 130.0, 70.0)));
        assert_eq!(b.at(21), None);
        assert!(e.validate().is_ok());
        assert_eq!(e.suppressed(), HashSet::from([2]));
    }

    #[test]
    fn invalid_edits_are_refused_with_a_reason() {
        let mut e = edits();
        e.tracks[0].reason = " ".into();
        assert!(e.validate().unwrap_err().contains("reason"));
        let mut e = edits();
        e.boxes[0].keyframes.reverse();
        assert!(e.validate().unwrap_err().contains("increasing"));
        let mut e = edits();
        e.input_sha256 = "x".into();
        assert!(e.validate().is_err());
        let json = r#"{"schema":"veil.edits/1","input_sha256":"00","tracks":[],"surprise":1}"#;
        assert!(serde_json::from_str::<Edits>(json).is_err());
    }

    #[test]
    fn command_line_spans() {
        let s = parse_span("12.5-14", AudioAction::Mute).unwrap();
        assert_eq!((s.start, s.end), (12.5, 14.0));
        let s = parse_span("1:02-1:05.5", AudioAction::Bleep).unwrap();
        assert_eq!((s.start, s.end), (62.0, 65.5));
        assert!(parse_span("14-12", AudioAction::Mute).is_err());
        assert!(parse_span("abc", AudioAction::Mute).is_err());
        assert!(parse_span("-1-2", AudioAction::Mute).is_err());
    }
}
