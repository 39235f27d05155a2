//! Highlights end to end: `veil process` and `veil highlights` on clips made here with ffmpeg,
//! the JSON checked against its schema, the VTT, and the review page in headless Chromium.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// A 320x240 clip of `secs` seconds: a moving test pattern over quiet pink noise, with a
/// short full-band bang at each time in `bangs`.
fn make_clip(dir: &Path, name: &str, secs: u32, bangs: &[f64]) -> PathBuf {
    let out = dir.join(name);
    let mut filter = String::new();
    let mut mix = String::from("[1:a]");
    for (i, t) in bangs.iter().enumerate() {
        let ms = (t * 1000.0) as u64;
        filter.push_str(&format!(
            "[2:a]atrim=0:0.3,afade=t=out:st=0:d=0.25,adelay={ms}|{ms},apad[b{i}];"
        ));
        mix.push_str(&format!("[b{i}]"));
    }
    filter.push_str(&format!(
        "{mix}amix=inputs={}:normalize=0:duration=first[a]",
        bangs.len() + 1
    ));
    let st = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg("testsrc2=size=320x240:rate=15")
        .args([
            "-f",
            "lavfi",
            "-i",
            "anoisesrc=color=pink:amplitude=0.01:seed=3",
        ])
        .args([
            "-f",
            "lavfi",
            "-i",
            "anoisesrc=color=white:amplitude=0.9:seed=5",
        ])
        .args(["-filter_complex", &filter])
        .args(["-map", "0:v", "-map", "[a]", "-t", &secs.to_string()])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
        ])
        .args(["-c:a", "aac", "-ac", "1"])
        .arg(&out)
        .status()
        .expect("run ffmpeg");
    assert!(st.success(), "ffmpeg could not make {name}");
    out
}

fn schema_check(doc: &serde_json::Value) {
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("../src/highlights/highlights.schema.json"))
            .expect("schema parses");
    let v = jsonschema::validator_for(&schema).expect("schema compiles");
    let errors: Vec<String> = v.iter_errors(doc).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "schema errors: {errors:#?}");
}

fn read_json(p: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(p).expect("read json")).expect("valid json")
}

/// Runs scripts/browser-test.py on the page. Chromium is part of the test setup
/// (`make test` installs it); VEIL_SKIP_BROWSER=1 skips this step on machines without it.
fn browser_check(page: &Path, shot: Option<&Path>) {
    if std::env::var_os("VEIL_SKIP_BROWSER").is_some() {
        eprintln!("browser check skipped: VEIL_SKIP_BROWSER is set");
        return;
    }
    let mut cmd = Command::new("python3");
    cmd.arg(root().join("scripts/browser-test.py")).arg(page);
    if let Some(s) = shot {
        cmd.arg("--screenshot").arg(s);
    }
    let out = cmd.output().expect("run browser-test.py");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "browser test failed (install chromium and chromium-driver with `scripts/setup.sh chromium chromium-driver`, or set VEIL_SKIP_BROWSER=1):\n{text}"
    );
    assert!(text.contains("browser-test: ok"), "{text}");
}

#[test]
fn process_redacts_and_finds_bangs_in_one_pass() {
    let dir = tempdir();
    let clip = make_clip(dir.path(), "bangs.mp4", 45, &[12.0, 31.5]);
    let out = dir.path().join("out");
    let o = run(veil()
        .args(["process", "--no-plates", "--json", "-o"])
        .arg(&out)
        .arg(&clip));
    assert!(o.status.success(), "{}", stderr(&o));
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).expect("summary json");
    assert_eq!(summary["highlights"], 2, "{summary}");

    // The redacted video keeps every frame, and has its audit record.
    let redacted = out.join("bangs.redacted.mp4");
    assert_eq!(frame_count(&redacted), frame_count(&clip));
    assert!(veil::audit::audit_path(&redacted).is_file());

    let doc = read_json(&out.join("highlights.json"));
    schema_check(&doc);
    let hs = doc["highlights"].as_array().unwrap();
    assert_eq!(hs.len(), 2, "{hs:#?}");
    for (h, t) in hs.iter().zip([12.0, 31.5]) {
        assert_eq!(h["kind"], "loud_impulse", "{h}");
        let onset = h["onset"].as_f64().unwrap();
        assert!((onset - t).abs() <= 1.0, "onset {onset} for a bang at {t}");
        let start = h["start"].as_f64().unwrap();
        assert!((onset - start - 10.0).abs() < 1e-6, "10 s pre-roll: {h}");
        assert!(h["reasons"][0]["signal"] == "impulse_db");
    }
    assert_eq!(doc["video"], "bangs.redacted.mp4");

    let vtt = std::fs::read_to_string(out.join("highlights.vtt")).unwrap();
    assert!(vtt.starts_with("WEBVTT"));
    assert_eq!(vtt.matches(" --> ").count(), 2, "{vtt}");
    // The first cue starts 10 s before the first bang (12 s, timed to 10 ms: the AAC encoder's
    // pre-echo can put the rise one 10 ms block early).
    let first = vtt
        .lines()
        .find_map(|l| l.split_once(" --> ").map(|(a, _)| a.to_string()))
        .expect("a cue");
    let secs: f64 = first
        .rsplit(':')
        .next()
        .and_then(|s| s.parse().ok())
        .expect("cue start seconds");
    assert!(
        first.starts_with("00:00:") && (secs - 2.0).abs() <= 0.021,
        "{vtt}"
    );

    let page = std::fs::read_to_string(out.join("review.html")).unwrap();
    assert!(!page.contains("__VEIL_DATA__"));
    assert!(
        page.contains("data:image/jpeg;base64,"),
        "thumbnails embedded"
    );
    browser_check(
        &out.join("review.html"),
        Some(&root().join("target/review-screenshot.png")),
    );
}

#[test]
fn calm_clip_gives_no_highlights_and_hostile_names_are_escaped() {
    let dir = tempdir();
    let name = "<img src=x onerror=alert(1)>.mp4";
    let clip = make_clip(dir.path(), name, 30, &[]);
    let out = dir.path().join("hl");
    let o = run(veil().args(["highlights", "-o"]).arg(&out).arg(&clip));
    assert!(o.status.success(), "{}", stderr(&o));
    let doc = read_json(&out.join("highlights.json"));
    schema_check(&doc);
    assert_eq!(doc["highlights"].as_array().unwrap().len(), 0, "{doc}");
    assert_eq!(doc["source"]["name"], name);
    let page = std::fs::read_to_string(out.join("review.html")).unwrap();
    assert!(
        !page.contains("<img src=x"),
        "the file name must be escaped"
    );
    // The video URL is percent-encoded.
    assert!(page.contains("%3Cimg%20src%3Dx"), "video url escaped");
}

#[test]
fn highlights_errors_are_one_line_with_the_right_exit_code() {
    let dir = tempdir();
    let o = run(veil()
        .args(["highlights", "-o"])
        .arg(dir.path())
        .arg(dir.path().join("missing.mp4")));
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert_eq!(e.trim().lines().count(), 1, "{e}");
    assert!(e.contains("missing.mp4"), "{e}");

    let o = run(veil()
        .args(["highlights", "--sensitivity", "2", "-o"])
        .arg(dir.path())
        .arg(fixture("face_720p.mp4")));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--sensitivity"));

    let o = run(veil()
        .args(["process", "-o"])
        .arg(dir.path())
        .arg(fixture("astronaut.png")));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(!dir.path().join("highlights.json").exists());
}

#[test]
fn a_user_signal_model_feeds_its_kind() {
    // fixtures/peak_signal.onnx (scripts/make-signal-model.py): scores = [peak, 1 - peak] of
    // each second of audio. Its column 0 fed into `struggle` fires on the two bangs.
    let dir = tempdir();
    let clip = make_clip(dir.path(), "bangs.mp4", 45, &[12.0, 31.5]);
    let out = dir.path().join("hl");
    let model = root().join("fixtures/peak_signal.onnx");
    let o = run(veil()
        .args(["highlights", "--signal-model"])
        .arg(format!("{}:struggle:0", model.display()))
        .arg("-o")
        .arg(&out)
        .arg(&clip));
    assert!(o.status.success(), "{}", stderr(&o));
    let doc = read_json(&out.join("highlights.json"));
    schema_check(&doc);
    let hs = doc["highlights"].as_array().unwrap();
    assert_eq!(hs.len(), 2, "{hs:#?}");
    for h in hs {
        let kinds: Vec<&str> = std::iter::once(h["kind"].as_str().unwrap())
            .chain(
                h["also"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|k| k.as_str().unwrap()),
            )
            .collect();
        assert!(kinds.contains(&"struggle"), "{h}");
    }
    let models = doc["models"].as_array().unwrap();
    let m = models
        .iter()
        .find(|m| m["id"] == "model:peak_signal")
        .expect("the user model is recorded");
    assert_eq!(m["sha256"], sha256(&model));
    // The quiet seconds score low: the per-second track stays under the trigger there.
    let track = doc["signals"]["scores"]["struggle"].as_array().unwrap();
    assert!(track[5].as_f64().unwrap() < 0.2, "{}", track[5]);

    // A bad spec is a usage error.
    let o = run(veil()
        .args(["highlights", "--signal-model"])
        .arg(format!("{}:bogus", model.display()))
        .arg("-o")
        .arg(&out)
        .arg(&clip));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}
