//! Writes highlights as `highlights.json` (schema `veil.highlights/1`), `highlights.vtt`
//! (WebVTT chapters) and `review.html` (one self-contained page).

use std::path::Path;

use serde::Serialize;

use super::fusion::{self, Highlight, Kind};
use super::{Analysis, ModelUse, OutputNames};
use crate::error::Result;
use crate::fsutil::{now_unix, write_atomic};
use crate::html::{base64, relative_url, script_json};
use crate::util::format_time;

pub const SCHEMA: &str = "veil.highlights/1";

const TEMPLATE: &str = include_str!("review.html");

/// The colours the page and the VTT legend use per kind.
pub fn colour(kind: Kind) -> &'static str {
    match kind {
        Kind::Shouting => "#e4572e",
        Kind::LoudImpulse => "#f3a712",
        Kind::Struggle => "#a8329c",
        Kind::Running => "#3f88c5",
        Kind::RisingTension => "#44af69",
    }
}

#[derive(Serialize)]
struct Settings {
    sensitivity: f32,
    on_score: f32,
    pre_roll_s: f64,
    post_roll_s: f64,
    merge_gap_s: f64,
}

#[derive(Serialize)]
struct Source<'a> {
    path: String,
    name: String,
    sha256: Option<&'a str>,
}

#[derive(Serialize)]
struct Scores {
    t0: f64,
    step: f64,
    scores: serde_json::Map<String, serde_json::Value>,
}

/// highlights.json.
#[derive(Serialize)]
struct Doc<'a> {
    schema: &'static str,
    veil_version: &'static str,
    created_unix: u64,
    source: Source<'a>,
    /// Relative path of the video the page plays (the redacted one when there is one).
    video: Option<String>,
    duration_s: f64,
    settings: Settings,
    models: &'a [ModelUse],
    baseline: &'a fusion::Baseline,
    notes: &'a [String],
    highlights: &'a [Highlight],
    signals: Scores,
}

fn round2(v: f32) -> serde_json::Value {
    serde_json::json!((v as f64 * 100.0).round() / 100.0)
}

fn scores_of(a: &Analysis) -> Scores {
    let mut scores = serde_json::Map::new();
    for (k, v) in &a.scores {
        scores.insert(
            k.name().to_string(),
            serde_json::Value::Array(v.iter().map(|x| round2(*x)).collect()),
        );
    }
    Scores {
        t0: 0.0,
        step: 1.0,
        scores,
    }
}

/// Writes the three files. `video` and `original` are paths of the videos the page plays,
/// made relative to the page's folder.
pub fn write(
    a: &Analysis,
    names: &OutputNames,
    input: &Path,
    input_sha256: Option<&str>,
    video: Option<&Path>,
    original: Option<&Path>,
) -> Result<()> {
    let dir = names.html.parent().unwrap_or(Path::new("."));
    let rel = |p: &Path| relative_url(dir, p);
    let doc = Doc {
        schema: SCHEMA,
        veil_version: env!("CARGO_PKG_VERSION"),
        created_unix: now_unix(),
        source: Source {
            path: input.display().to_string(),
            name: input
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            sha256: input_sha256,
        },
        video: video.map(rel),
        duration_s: (a.duration * 1000.0).round() / 1000.0,
        settings: Settings {
            sensitivity: a.sensitivity,
            on_score: fusion::on_threshold(a.sensitivity),
            pre_roll_s: fusion::PRE_ROLL_S,
            post_roll_s: fusion::POST_ROLL_S,
            merge_gap_s: fusion::MERGE_GAP_S,
        },
        models: &a.models,
        baseline: &a.baseline,
        notes: &a.notes,
        highlights: &a.highlights,
        signals: scores_of(a),
    };
    let json = serde_json::to_vec_pretty(&doc).expect("highlights serialise");
    write_atomic(&names.json, &json)?;
    write_atomic(&names.vtt, vtt(&a.highlights).as_bytes())?;
    write_atomic(
        &names.html,
        page(a, &doc.source.name, video.map(rel), original.map(rel)).as_bytes(),
    )?;
    Ok(())
}

/// WebVTT chapters: one cue per highlight, from its start (with the lead-up) to its end.
pub fn vtt(hs: &[Highlight]) -> String {
    let mut s = String::from("WEBVTT - veil highlights\n\n");
    for h in hs {
        // A cue text cannot contain "-->"; ours never does, and has no markup.
        s.push_str(&format!(
            "{}\n{} --> {}\n{} ({:.2}), onset {}\n\n",
            h.id,
            format_time(h.start),
            format_time(h.end.max(h.start + 0.001)),
            h.kind.label(),
            h.score,
            format_time(h.onset),
        ));
    }
    s
}

fn page(a: &Analysis, source: &str, video: Option<String>, original: Option<String>) -> String {
    let kinds: serde_json::Map<String, serde_json::Value> = Kind::ALL
        .iter()
        .map(|k| (k.name().to_string(), serde_json::json!(colour(*k))))
        .collect();
    let hs: Vec<serde_json::Value> = a
        .highlights
        .iter()
        .map(|h| {
            let mut v = serde_json::to_value(h).expect("highlight serialises");
            v["thumb"] = match a.thumb_at(h.peak) {
                Some(j) => serde_json::json!(format!("data:image/jpeg;base64,{}", base64(j))),
                None => serde_json::Value::Null,
            };
            v
        })
        .collect();
    let data = serde_json::json!({
        "schema": SCHEMA,
        "source": source,
        "video": video,
        "original": original,
        "duration": a.duration,
        "kinds": kinds,
        "highlights": hs,
        "signals": scores_of(a),
    });
    TEMPLATE.replacen("__VEIL_DATA__", &script_json(&data), 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vtt_cues_are_well_formed() {
        let h = Highlight {
            id: 1,
            kind: Kind::Shouting,
            also: vec![],
            start: 3661.5,
            onset: 3671.5,
            peak: 3672.0,
            end: 3680.25,
            score: 0.8,
            reasons: vec![],
            low_evidence: false,
        };
        let v = vtt(&[h]);
        assert!(v.starts_with("WEBVTT"));
        assert!(v.contains("\n01:01:01.500 --> 01:01:20.250\n"), "{v}");
    }
}
