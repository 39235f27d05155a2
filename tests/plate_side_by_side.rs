//! A frame large enough to be cut into pieces or tiled for plates has the looks of each plate
//! sample run side by side on two sessions of the plate model (`Detectors::plate_pair`). They
//! must find exactly what the same looks find one after the other: the audit records of the
//! two runs hold the same plate boxes.

mod common;
use common::*;

use std::path::Path;
use std::process::Command;

/// The plate tracks' boxes in the audit record beside `out`.
fn plate_boxes(out: &Path) -> Vec<serde_json::Value> {
    let audit = out.with_file_name(format!(
        "{}.audit.json",
        out.file_name().unwrap().to_string_lossy()
    ));
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&audit).expect("audit record")).expect("json");
    v["tracks"]
        .as_array()
        .expect("tracks")
        .iter()
        .filter(|t| t["class"] == "plate")
        .map(|t| t["boxes"].clone())
        .collect()
}

/// The "N side by side" count of `veil redact -v`.
fn side_by_side(stderr: &str) -> u64 {
    let line = stderr
        .lines()
        .find(|l| l.contains("side by side"))
        .unwrap_or_else(|| panic!("no pass counts in: {stderr}"));
    let before = line.split(" side by side").next().unwrap();
    before
        .rsplit(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in: {line}"))
}

#[test]
fn plate_looks_side_by_side_find_what_they_find_one_after_the_other() {
    let dir = tempdir();
    let clip = dir.path().join("people_1080p.mp4");
    // One second of the street fixture scaled to 1920x1080: cut into two pieces for plates
    // (long side over 1.5 tiles of 960), one on each session.
    let st = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-i"])
        .arg(fixture("people_vtest_768x576.mp4"))
        .args(["-t", "1", "-vf", "scale=1920:1080", "-an"])
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-crf", "18"])
        .arg(&clip)
        .status()
        .expect("run ffmpeg");
    assert!(st.success(), "ffmpeg could not make the 1080p clip");
    let redact = |name: &str, threads: &str| {
        let out = dir.path().join(name);
        // A low plate threshold, so the model reports boxes on the pieces to compare (the
        // clip has no plate).
        let o = run(veil().arg("redact").arg(&clip).arg("-o").arg(&out).args([
            "-v",
            "--plate-thresh",
            "0.05",
            "--threads",
            threads,
        ]));
        assert!(o.status.success(), "{}", stderr(&o));
        (side_by_side(&stderr(&o)), plate_boxes(&out))
    };
    let (pair_samples, pair_boxes) = redact("pair.mp4", "2");
    let (one_samples, one_boxes) = redact("one.mp4", "1");
    assert!(
        pair_samples > 0,
        "with 2 threads the looks run side by side"
    );
    assert_eq!(one_samples, 0, "with 1 thread they run one after the other");
    assert!(
        !one_boxes.is_empty(),
        "nothing to compare: no plate box at all"
    );
    assert_eq!(pair_boxes, one_boxes);
}
