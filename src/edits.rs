//! A reviewer's corrections (`edits.json`, schema `veil.edits/1`) and the command-line audio
//! spans (`--mute`, `--bleep`): tracks marked not sensitive, manual boxes with keyframes, and
//! audio spans to mute or bleep. Every correction carries its reason (the legal basis).

use std::collections::HashSet;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::detect::BBox;
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
            VeilError::setting(
                "--edits",
                format!("{}: not a veil edits file: {e}", path.display()),
            )
        })?;
        e.validate()
            .map_err(|m| VeilError::setting("--edits", format!("{}: {m}", path.display())))?;
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

/// Checks audio spans against the file they edit: it must have audio, and every span must
/// start within its `duration` (seconds) and end no later than a second after it.
pub fn check_spans(spans: &[AudioEdit], has_audio: bool, duration: Option<f64>) -> Result<()> {
    let Some(first) = spans.first() else {
        return Ok(());
    };
    let flag = match first.action {
        AudioAction::Mute => "--mute",
        AudioAction::Bleep => "--bleep",
    };
    if !has_audio {
        return Err(VeilError::setting(
            flag,
            "the input has no audio stream to edit (or --no-audio drops it)",
        ));
    }
    if let Some(d) = duration.filter(|d| d.is_finite() && *d > 0.0) {
        if let Some(s) = spans.iter().find(|s| s.start >= d || s.end > d + 1.0) {
            return Err(VeilError::setting(
                flag,
                format!(
                    "the span {}-{} s is not within the input, which lasts {d:.3} s",
                    s.start, s.end
                ),
            ));
        }
    }
    Ok(())
}

/// Parses a command-line span `START-END` in seconds (`12.5-14`) or `[hh:]mm:ss(.s)` each.
pub fn parse_span(s: &str, action: AudioAction) -> Result<AudioEdit> {
    let flag = if action == AudioAction::Mute {
        "--mute"
    } else {
        "--bleep"
    };
    let bad = || {
        VeilError::setting(
            flag,
            format!(
                "{s:?}: expected START-END in seconds or [hh:]mm:ss, e.g. 12.5-14 or 1:02-1:05.5"
            ),
        )
    };
    let (a, b) = s.split_once('-').ok_or_else(bad)?;
    let secs = |t: &str| -> Option<f64> {
        let mut total = 0.0;
        if t.split(':').count() > 3 {
            return None;
        }
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
    check_span(&e).map_err(|m| VeilError::setting(flag, m))?;
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
        // Four fields is not a time.
        assert!(parse_span("1:2:3:4-1:2:3:5", AudioAction::Mute).is_err());
    }
}
