//! Re-rendering with a reviewer's corrections: a track marked not sensitive comes back, a
//! manual box is redacted over its frame range only, audio spans are muted or bleeped, and the
//! audit record lists every edit.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

/// Mean volume (dBFS) of the first audio stream between `from` and `from + len` seconds.
fn mean_volume(file: &Path, from: f64, len: f64) -> f64 {
    let out = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-ss",
            &from.to_string(),
            "-t",
            &len.to_string(),
            "-i",
        ])
        .arg(file)
        .args(["-map", "0:a:0", "-af", "volumedetect", "-f", "null", "-"])
        .output()
        .expect("ffmpeg");
    let text = String::from_utf8_lossy(&out.stderr);
    let line = text
        .lines()
        .find(|l| l.contains("mean_volume:"))
        .unwrap_or_else(|| panic!("no volume for {}: {text}", file.display()));
    line.split("mean_volume:")
        .nth(1)
        .unwrap()
        .trim()
        .trim_end_matches(" dB")
        .parse()
        .unwrap()
}

/// (pts seconds, md5) of every packet of the first audio stream.
fn audio_packet_md5s(file: &Path) -> Vec<(f64, String)> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(file)
        .args(["-map", "0:a:0", "-c", "copy", "-f", "framemd5", "-"])
        .output()
        .expect("ffmpeg");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let tb: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("#tb 0: 1/"))
        .map(|d| 1.0 / d.trim().parse::<f64>().unwrap())
        .expect("time base");
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let f: Vec<&str> = l.split(',').map(str::trim).collect();
            (f[2].parse::<f64>().unwrap() * tb, f[5].to_string())
        })
        .collect()
}

fn track_over(audit: &serde_json::Value, frame: i64, b: [i64; 4]) -> Option<u64> {
    let cx = b[0] + b[2] / 2;
    let cy = b[1] + b[3] / 2;
    audit["tracks"].as_array()?.iter().find_map(|t| {
        t["boxes"].as_array()?.iter().find_map(|bx| {
            let v: Vec<i64> = bx.as_array()?.iter().map(|x| x.as_i64().unwrap()).collect();
            (v[0] == frame && v[1] <= cx && cx <= v[1] + v[3] && v[2] <= cy && cy <= v[2] + v[4])
                .then(|| t["id"].as_u64().unwrap())
        })
    })
}

#[test]
fn edits_re_render_changes_exactly_what_they_say() {
    let d = tempdir();
    let input = fixture("face_720p.mp4");
    let out = d.path().join("out.mp4");
    let o = run(veil()
        .args(["redact", "--no-plates", "-o"])
        .arg(&out)
        .arg(&input));
    assert!(o.status.success(), "{}", stderr(&o));
    let f = &faces_json()["fixtures"]["face_720p.mp4"];
    let core = json_box(&f["core_box"]);
    let no_face = json_box(&f["no_face"][0]);
    assert!(
        detail_ratio(&input, &out, 60, core) < 0.5,
        "first run redacts the face"
    );
    let audit_path = veil::audit::audit_path(&out);
    let first_audit_sha = sha256(&audit_path);
    let audit: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&audit_path).unwrap()).unwrap();
    let face_track = track_over(&audit, 60, core).expect("a track covers the face at frame 60");

    // The reviewer: the face is "not sensitive", a region elsewhere must go from frame 10 to
    // 40, and 1.0-2.0 s of audio must be muted.
    let edits = serde_json::json!({
        "schema": "veil.edits/1",
        "input_sha256": sha256(&input),
        "tracks": [{"id": face_track, "action": "not_sensitive", "reason": "consenting officer"}],
        "boxes": [{"reason": "address on a letter", "keyframes": [
            {"frame": 10, "x": no_face[0], "y": no_face[1], "w": no_face[2], "h": no_face[3]},
            {"frame": 40, "x": no_face[0], "y": no_face[1], "w": no_face[2], "h": no_face[3]}]}],
        "audio": [{"action": "mute", "start": 1.0, "end": 2.0, "reason": "name spoken"}]
    });
    let edits_path = d.path().join("edits.json");
    std::fs::write(&edits_path, serde_json::to_vec_pretty(&edits).unwrap()).unwrap();
    let o = run(veil()
        .args(["redact", "--no-plates", "--edits"])
        .arg(&edits_path)
        .arg("-o")
        .arg(&out)
        .arg(&input));
    assert!(o.status.success(), "{}", stderr(&o));

    // Pixels: the face is back (no other track covers it at frame 60), the manual box is
    // redacted inside its range and untouched outside it.
    assert!(
        detail_ratio(&input, &out, 60, core) > 0.75,
        "suppressed track not redacted"
    );
    assert!(
        detail_ratio(&input, &out, 25, no_face) < 0.5,
        "manual box redacted"
    );
    assert!(
        detail_ratio(&input, &out, 10, no_face) < 0.5,
        "from its first keyframe"
    );
    assert!(
        detail_ratio(&input, &out, 40, no_face) < 0.5,
        "to its last keyframe"
    );
    assert!(detail_ratio(&input, &out, 41, no_face) > 0.75, "not after");
    assert!(detail_ratio(&input, &out, 9, no_face) > 0.75, "not before");
    assert_eq!(frame_count(&out), 180);

    // Audio: silent inside the span, as before outside it; only the packets of the span
    // (and one on each side) were re-encoded, every other one is bit-exact.
    assert!(mean_volume(&out, 1.2, 0.6) < -60.0);
    let (a, b) = (audio_packet_md5s(&input), audio_packet_md5s(&out));
    assert_eq!(a.len(), b.len());
    let mut changed = 0;
    for ((ta, ma), (tb, mb)) in a.iter().zip(&b) {
        assert!((ta - tb).abs() < 1e-6, "packet timing kept");
        if ma != mb {
            changed += 1;
            assert!(
                *ta > 1.0 - 0.05 && *ta < 2.0 + 0.03,
                "packet at {ta}s changed"
            );
        }
    }
    assert!(
        changed >= 45,
        "the span's packets were re-encoded ({changed})"
    );
    for t in [0.2, 3.0, 4.5] {
        let (a, b) = (mean_volume(&out, t, 0.6), mean_volume(&input, t, 0.6));
        assert!((a - b).abs() < 1.5, "at {t}s: {a} vs {b} dB");
    }

    // The audit lists every edit, the edits file's hash and the detections it re-used.
    let rec = veil::audit::AuditRecord::read(&audit_path).unwrap();
    let e = rec.edits.expect("edits recorded");
    assert_eq!(e.sha256.as_deref(), Some(sha256(&edits_path).as_str()));
    assert_eq!(e.detections_from.as_deref(), Some(first_audit_sha.as_str()));
    assert_eq!(e.tracks[0].reason, "consenting officer");
    assert_eq!(e.boxes[0].reason, "address on a letter");
    assert_eq!(e.audio[0].reason, "name spoken");
    assert!(e.audio_method.unwrap().contains("re-encoded"));
    assert!(rec.tracks.iter().all(|t| t.id as u64 != face_track));
    assert!(rec
        .tracks
        .iter()
        .any(|t| t.class == veil::detect::Class::Manual
            && t.first_frame == 10
            && t.last_frame == 40));
}

#[test]
fn command_line_bleep_and_refused_edits() {
    let d = tempdir();
    let input = fixture("face_720p.mp4");
    let out = d.path().join("b.mp4");
    let o = run(veil()
        .args(["redact", "--no-plates", "--bleep", "2-3", "-o"])
        .arg(&out)
        .arg(&input));
    assert!(o.status.success(), "{}", stderr(&o));
    // A 0.3-amplitude 1 kHz tone is -13.5 dBFS RMS.
    let v = mean_volume(&out, 2.2, 0.6);
    assert!((v + 13.5).abs() < 2.0, "bleep at {v} dB");
    let rec = veil::audit::AuditRecord::read(&veil::audit::audit_path(&out)).unwrap();
    assert_eq!(rec.edits.unwrap().audio.len(), 1);

    // Edits made for another file are refused before anything is written.
    let edits = serde_json::json!({"schema": "veil.edits/1", "input_sha256": "0".repeat(64)});
    let p = d.path().join("edits.json");
    std::fs::write(&p, edits.to_string()).unwrap();
    let out2 = d.path().join("c.mp4");
    let o = run(veil()
        .args(["redact", "--edits"])
        .arg(&p)
        .arg("-o")
        .arg(&out2)
        .arg(&input));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("another file"), "{}", stderr(&o));
    assert!(!out2.exists());

    // A span that ends before it starts is a usage error.
    let o = run(veil()
        .args(["redact", "--mute", "5-4", "-o"])
        .arg(&out2)
        .arg(&input));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

/// The whole loop in a real browser: redact, review in headless Chromium (mark a track, draw
/// a box at two keyframes, mark an audio span, export edits.json), re-render with the edits.
#[test]
fn review_page_loop_in_a_real_browser() {
    if std::env::var_os("VEIL_SKIP_BROWSER").is_some() {
        eprintln!("browser loop skipped: VEIL_SKIP_BROWSER is set");
        return;
    }
    let d = tempdir();
    let input = fixture("face_720p.mp4");
    let out = d.path().join("out.mp4");
    let o = run(veil()
        .args(["redact", "--no-plates", "-o"])
        .arg(&out)
        .arg(&input));
    assert!(o.status.success(), "{}", stderr(&o));
    // The page is in the review folder beside the output folder, never in it.
    let page = veil::review::page_path(&veil::review::default_review_dir(d.path()), &out);
    assert!(page.is_file(), "{}", page.display());
    let dl = d.path().join("downloads");
    let shot = root().join("target/redaction-review.png");
    let o = Command::new("python3")
        .arg(root().join("scripts/review-test.py"))
        .arg(&page)
        .arg("--out")
        .arg(&dl)
        .arg("--screenshot")
        .arg(&shot)
        .output()
        .expect("run review-test.py");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        o.status.success() && text.contains("review-test: ok"),
        "browser review failed (install chromium and chromium-driver, or set VEIL_SKIP_BROWSER=1):\n{text}"
    );
    let edits_path = dl.join("edits.json");
    let edits = veil::edits::Edits::read(&edits_path).expect("the page exports valid edits");
    assert_eq!(edits.tracks.len(), 1);
    assert_eq!(edits.boxes[0].keyframes.len(), 2);

    let o = run(veil()
        .args(["redact", "--no-plates", "--edits"])
        .arg(&edits_path)
        .arg("-o")
        .arg(&out)
        .arg(&input));
    assert!(o.status.success(), "{}", stderr(&o));

    // The drawn region, interpolated halfway between its keyframes, is redacted there.
    let kf = &edits.boxes[0].keyframes;
    let mid = (kf[0].frame + kf[1].frame) / 2;
    let b = edits.boxes[0].at(mid).unwrap().scaled(0.8);
    let bx = [
        b.x1 as i64,
        b.y1 as i64,
        b.width() as i64,
        b.height() as i64,
    ];
    assert!(
        detail_ratio(&input, &out, mid, bx) < 0.5,
        "manual box at frame {mid}"
    );
    // The region is not redacted after its last keyframe where nothing else covers it.
    let suppressed = edits.tracks[0].id;
    let rec = veil::audit::AuditRecord::read(&veil::audit::audit_path(&out)).unwrap();
    assert!(rec.tracks.iter().all(|t| t.id != suppressed));
    let e = rec.edits.unwrap();
    assert_eq!(e.sha256.as_deref(), Some(sha256(&edits_path).as_str()));
    // Audio span from the page: muted inside, unchanged level outside.
    let a = &edits.audio[0];
    assert!(mean_volume(&out, a.start + 0.2, (a.end - a.start - 0.4).max(0.1)) < -60.0);
    let (x, y) = (mean_volume(&out, 4.0, 1.0), mean_volume(&input, 4.0, 1.0));
    assert!((x - y).abs() < 1.5, "{x} vs {y}");
}
