//! Writes highlights as `highlights.json` (schema `veil.highlights/1`), `highlights.vtt`
//! (WebVTT chapters) and `review.html` (one self-contained page).

use std::path::Path;

use serde::Serialize;

use super::fusion::{self, Highlight, Kind};
use super::{Analysis, ModelUse, OutputNames};
use crate::error::Result;
use crate::pipeline::write_atomic;
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
        created_unix: crate::pipeline::now_unix(),
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

/// A URL for `target` relative to `dir` (percent-encoding what a URL cannot hold).
pub fn relative_url(dir: &Path, target: &Path) -> String {
    // An empty parent ("out.mp4".parent()) is the current folder.
    let abs = |p: &Path| {
        let p = if p.as_os_str().is_empty() {
            Path::new(".")
        } else {
            p
        };
        std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
    };
    let (d, t) = (abs(dir), abs(target));
    let dc: Vec<_> = d.components().collect();
    let tc: Vec<_> = t.components().collect();
    let common = dc.iter().zip(&tc).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<String> = std::iter::repeat("..".to_string())
        .take(dc.len() - common)
        .collect();
    parts.extend(
        tc[common..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    parts
        .iter()
        .map(|p| {
            p.bytes()
                .map(|b| {
                    if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                        (b as char).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("/")
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

/// JSON safe to put inside a `<script>` element.
pub fn script_json(v: &serde_json::Value) -> String {
    serde_json::to_string(v)
        .expect("page data serialises")
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

fn page(a: &Analysis, source: &str, video: Option<String>, original: Option<String>) -> String {
    use base64_lite::encode;
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
                Some(j) => serde_json::json!(format!("data:image/jpeg;base64,{}", encode(j))),
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

/// Standard base64 (RFC 4648).
pub fn base64(data: &[u8]) -> String {
    base64_lite::encode(data)
}

/// Standard base64 (RFC 4648) for thumbnails: small enough not to need a crate.
mod base64_lite {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    pub fn encode(data: &[u8]) -> String {
        let mut s = String::with_capacity(data.len().div_ceil(3) * 4);
        for c in data.chunks(3) {
            let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
            let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
            for i in 0..4 {
                if i <= c.len() {
                    s.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
                } else {
                    s.push('=');
                }
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64_lite::encode(i.as_bytes()), o);
        }
    }

    #[test]
    fn script_json_cannot_close_the_script_element() {
        let v = serde_json::json!({"source": "</script><img src=x onerror=alert(1)>&"});
        let s = script_json(&v);
        assert!(!s.contains('<') && !s.contains('>') && !s.contains('&'));
        let back: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(back, v);
    }

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

    #[test]
    fn relative_urls_escape_and_climb() {
        assert_eq!(
            relative_url(Path::new("/a/b"), Path::new("/a/b/c d.mp4")),
            "c%20d.mp4"
        );
        assert_eq!(
            relative_url(Path::new("/a/b"), Path::new("/a/x/<y>.mp4")),
            "../x/%3Cy%3E.mp4"
        );
        // A bare file name's folder is the current one.
        assert_eq!(relative_url(Path::new(""), Path::new("out.mp4")), "out.mp4");
    }
}
