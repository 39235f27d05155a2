//! The bad-input corpus (scripts/make-bad-inputs.sh): every damaged or hostile file gives one
//! clear error line and a non-zero exit, never a panic; no output is left; the input is
//! unchanged. Valid-but-odd files (1x1, timestamps going backwards, an hour-long gap) are
//! redacted with every frame kept.

mod common;
use common::*;

use std::process::Command;

#[test]
fn bad_input_corpus() {
    let d = tempdir();
    let corpus = d.path().join("corpus");
    let st = Command::new("bash")
        .arg(root().join("scripts/make-bad-inputs.sh"))
        .arg(&corpus)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "corpus script failed: {}",
        String::from_utf8_lossy(&st.stderr)
    );

    // (file, expected error text or None for success)
    let cases: [(&str, Option<&str>); 12] = [
        ("zero-bytes.mp4", Some("empty")),
        ("random-bytes.mp4", Some("not a readable media file")),
        ("text-renamed.mp4", Some("not a readable media file")),
        ("moov-missing.mp4", Some("not a readable media file")),
        ("truncated-middle.mp4", Some("ends early")),
        ("bit-flipped.mp4", Some("corrupt")),
        ("audio-only.mp4", Some("no video stream")),
        ("huge-header.avi", Some("no valid frame size")),
        ("resolution-change.h264", Some("frame size changed")),
        ("one-by-one.mp4", None),
        ("backwards-timestamps.mkv", None),
        ("vfr-hour-gap.mkv", None),
    ];
    let outdir = d.path().join("out");
    let mut table = String::new();
    for (name, expect) in cases {
        let input = corpus.join(name);
        let before = sha256(&input);
        let out = outdir.join(format!("{name}.out.mp4"));
        let o = run(veil()
            .arg("redact")
            .arg(&input)
            .arg("-o")
            .arg(&out)
            .arg("--no-plates"));
        let err = stderr(&o);
        match expect {
            Some(text) => {
                assert_eq!(o.status.code(), Some(1), "{name}: {err}");
                let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
                assert_eq!(lines.len(), 1, "{name}: {err}");
                assert!(
                    lines[0].starts_with("veil: error: ") && lines[0].contains(text),
                    "{name}: {err}"
                );
                assert!(!out.exists(), "{name}: output left behind");
                table += &format!("{name}: {}\n", lines[0]);
            }
            None => {
                assert!(o.status.success(), "{name}: {err}");
                assert_eq!(
                    frame_count(&out),
                    frame_count(&input),
                    "{name}: frames lost"
                );
                table += &format!("{name}: redacted, {} frames\n", frame_count(&out));
            }
        }
        assert!(partial_files(&outdir).is_empty(), "{name}: temp files left");
        assert_eq!(sha256(&input), before, "{name}: input changed");
    }
    eprintln!("{table}");

    // --allow-damaged redacts what decodes and records the rest; nothing unredacted is written.
    let out = outdir.join("flipped-allowed.mp4");
    let o = run(veil()
        .arg("redact")
        .arg(corpus.join("bit-flipped.mp4"))
        .arg("-o")
        .arg(&out)
        .args(["--no-plates", "--allow-damaged", "--json"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let mut a = out.clone().into_os_string();
    a.push(".audit.json");
    let audit = veil::audit::AuditRecord::read(std::path::Path::new(&a)).unwrap();
    assert!(audit.output.frames > 0);
    let fx = faces_json();
    let core = json_box(&fx["fixtures"]["face_carphone_352x288.mp4"]["core_box"]);
    let r = detail_ratio(&fixture("face_carphone_352x288.mp4"), &out, 0, core);
    assert!(r < 0.5, "face in the damaged clip not redacted ({r:.2})");
}

#[test]
fn unwritable_output_is_a_clear_error() {
    let d = tempdir();
    // A regular file where a folder is needed: fails even for root.
    let blocker = d.path().join("file");
    std::fs::write(&blocker, b"x").unwrap();
    let o = run(veil()
        .arg("redact")
        .arg(fixture("synth_noaudio_320x240.mp4"))
        .arg("-o")
        .arg(blocker.join("out.mp4")));
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("veil: error: cannot"), "{}", stderr(&o));
}

#[test]
fn full_disk_leaves_no_truncated_output() {
    let d = tempdir();
    let out = d.path().join("full.mp4");
    // `ulimit -f` caps file size (in 512-byte blocks here: 40 KiB), as a full disk would.
    let o = Command::new("bash")
        .arg("-c")
        .arg(r#"ulimit -f 80; exec "$0" redact "$1" -o "$2" --no-plates"#)
        .arg(env!("CARGO_BIN_EXE_veil"))
        .arg(fixture("face_carphone_352x288.mp4"))
        .arg(&out)
        .output()
        .unwrap();
    let err = stderr(&o);
    assert!(!o.status.success(), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.contains("veil: error:"), "{err}");
    assert!(!out.exists(), "a truncated output was left");
    assert!(partial_files(d.path()).is_empty());
}

#[test]
fn sigint_and_sigterm_remove_temp_files() {
    for sig in ["INT", "TERM"] {
        let d = tempdir();
        let out = d.path().join("x.mp4");
        let child = veil()
            .arg("redact")
            .arg(fixture("face_720p.mp4"))
            .arg("-o")
            .arg(&out)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Wait until the temp output exists, i.e. the job is under way.
        let t0 = std::time::Instant::now();
        while partial_files(d.path()).is_empty() && t0.elapsed().as_secs() < 60 {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
        let st = Command::new("kill")
            .args([&format!("-{sig}"), &child.id().to_string()])
            .status()
            .unwrap();
        assert!(st.success());
        let o = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(130), "SIG{sig}: {err}");
        assert!(err.contains("interrupted"), "SIG{sig}: {err}");
        assert!(!out.exists());
        assert!(
            partial_files(d.path()).is_empty(),
            "SIG{sig}: temp files left"
        );
    }
}
