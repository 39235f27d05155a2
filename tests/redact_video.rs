//! End-to-end redaction of the committed fixtures through the real binary.

mod common;
use common::*;

use std::path::{Path, PathBuf};

fn redact(input: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let o = run(veil()
        .arg("redact")
        .arg(input)
        .arg("-o")
        .arg(out)
        .arg("--json")
        .args(extra));
    assert!(
        o.status.success(),
        "redact {} failed: {}",
        input.display(),
        stderr(&o)
    );
    o
}

fn audit_of(out: &Path) -> veil::audit::AuditRecord {
    let mut p = out.as_os_str().to_owned();
    p.push(".audit.json");
    veil::audit::AuditRecord::read(&PathBuf::from(p)).expect("valid audit record")
}

#[test]
fn carphone_face_is_redacted_with_audio_and_timing_intact() {
    let input = fixture("face_carphone_352x288.mp4");
    let before = sha256(&input);
    let d = tempdir();
    let out = d.path().join("out.mp4");
    let o = redact(&input, &out, &[]);

    // The JSON summary is machine-readable.
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(summary["frames_in"], summary["frames_out"]);

    // Same frames, same timestamps, same duration.
    assert_eq!(frame_count(&out), frame_count(&input));
    assert_eq!(frame_times(&out), frame_times(&input));
    assert!((format_duration(&out) - format_duration(&input)).abs() < 0.05);

    // Audio packets are bit-exact.
    let (a_in, ts_in) = audio_packets(&input);
    let (a_out, ts_out) = audio_packets(&out);
    assert!(!a_in.is_empty());
    assert_eq!(a_in, a_out, "audio payload differs");
    assert_eq!(ts_in, ts_out, "audio packet timing differs");

    // The face is redacted on the annotated frames; the striped sunshade is not touched.
    let faces = faces_json();
    let fx = &faces["fixtures"]["face_carphone_352x288.mp4"];
    for fb in fx["frame_boxes"].as_array().unwrap() {
        let frame = fb["frame"].as_u64().unwrap();
        let r = detail_ratio(&input, &out, frame, json_box(&fb["box"]));
        assert!(
            r < 0.5,
            "face at frame {frame} not redacted (detail ratio {r:.2})"
        );
    }
    let core = json_box(&fx["core_box"]);
    for frame in [0, 30, 90, 119] {
        let r = detail_ratio(&input, &out, frame, core);
        assert!(r < 0.5, "face core at frame {frame} not redacted ({r:.2})");
    }
    for nf in fx["no_face"].as_array().unwrap() {
        let r = detail_ratio(&input, &out, 60, json_box(nf));
        assert!(r > 0.75, "no-face region was damaged (detail ratio {r:.2})");
    }

    // The input is unchanged, and the audit record matches the files.
    assert_eq!(sha256(&input), before);
    let a = audit_of(&out);
    assert_eq!(a.input.sha256, before);
    assert_eq!(a.output.sha256, sha256(&out));
    assert_eq!(a.input.frames, a.output.frames);
    assert!(a
        .models
        .iter()
        .any(|m| m.id == "centerface-int8" && m.pinned && m.sha256.len() == 64));
    let face_tracks: Vec<_> = a
        .tracks
        .iter()
        .filter(|t| t.class == veil::detect::Class::Face)
        .collect();
    assert!(!face_tracks.is_empty());
    let t = face_tracks[0];
    // A frame can list two boxes of a track (its gap-filled box and where following found
    // it); `frames` counts the frames.
    let frames: std::collections::BTreeSet<i64> = t.boxes.iter().map(|b| b[0]).collect();
    assert_eq!(t.frames as usize, frames.len());
    assert!(t.boxes.len() <= 2 * frames.len());
    assert!(t.detected_frames > 0 && t.detected_frames <= t.frames);
    assert!(partial_files(d.path()).is_empty());
}

#[test]
fn variable_frame_rate_keeps_timestamps() {
    let input = fixture("synth_vfr_320x240.mp4");
    let d = tempdir();
    let out = d.path().join("vfr.mp4");
    redact(&input, &out, &[]);
    let tin = frame_times(&input);
    assert!(tin.len() > 10);
    assert_eq!(frame_times(&out), tin);
}

#[test]
fn rotation_metadata_is_kept() {
    let input = fixture("synth_rotated_320x240.mp4");
    let d = tempdir();
    let out = d.path().join("rot.mp4");
    redact(&input, &out, &[]);
    let q = |f: &Path| {
        ffprobe(
            &[
                "-select_streams",
                "v:0",
                "-show_entries",
                "stream_side_data=rotation",
                "-of",
                "csv=p=0",
            ],
            f,
        )
    };
    let rin = q(&input);
    assert!(rin.contains("90"), "fixture lost its rotation: {rin}");
    assert_eq!(q(&out).trim(), rin.trim());
    assert_eq!(frame_count(&out), frame_count(&input));
}

#[test]
fn odd_sizes_matroska_and_silent_clips_work() {
    let d = tempdir();
    for (name, ext) in [
        ("synth_odd_321x241.mp4", "mp4"),
        ("synth_audio_320x240.mkv", "mkv"),
        ("synth_noaudio_320x240.mp4", "mp4"),
    ] {
        let input = fixture(name);
        let out = d.path().join(format!("{name}.out.{ext}"));
        redact(&input, &out, &[]);
        assert_eq!(frame_count(&out), frame_count(&input), "{name}");
        let dims = |f: &Path| {
            ffprobe(
                &[
                    "-select_streams",
                    "v:0",
                    "-show_entries",
                    "stream=width,height",
                    "-of",
                    "csv=p=0",
                ],
                f,
            )
        };
        assert_eq!(dims(&out), dims(&input), "{name}");
    }
}

#[test]
fn no_audio_flag_drops_audio() {
    let d = tempdir();
    let out = d.path().join("na.mp4");
    redact(
        &fixture("synth_audio_320x240.mkv"),
        &out,
        &["--no-audio", "--no-plates"],
    );
    let streams = ffprobe(
        &["-show_entries", "stream=codec_type", "-of", "csv=p=0"],
        &out,
    );
    assert!(!streams.contains("audio"), "{streams}");
}

#[test]
fn each_style_redacts_the_image_face() {
    let input = fixture("astronaut.png");
    let fx = faces_json();
    let core = json_box(&fx["fixtures"]["astronaut.png"]["core_box"]);
    let flag = json_box(&fx["fixtures"]["astronaut.png"]["no_face"][0]);
    let d = tempdir();
    for style in ["blur", "mosaic", "solid"] {
        let out = d.path().join(format!("a-{style}.png"));
        redact(&input, &out, &["--replacewith", style]);
        let r = detail_ratio(&input, &out, 0, core);
        assert!(r < 0.5, "{style}: face not redacted ({r:.2})");
        let r = detail_ratio(&input, &out, 0, flag);
        assert!(r > 0.95, "{style}: flag damaged ({r:.2})");
        let a = audit_of(&out);
        assert!(a
            .tracks
            .iter()
            .any(|t| t.class == veil::detect::Class::Face));
    }
    // JPEG in, JPEG out.
    let out = d.path().join("a.jpg");
    redact(&fixture("astronaut.jpg"), &out, &[]);
    assert!(detail_ratio(&fixture("astronaut.jpg"), &out, 0, core) < 0.5);
}

#[test]
fn damaged_input_fails_closed_and_leaves_nothing() {
    let d = tempdir();
    // The first 60% of a clip: the moov atom is at the end or the data is cut short.
    let src = std::fs::read(fixture("face_carphone_352x288.mp4")).unwrap();
    let cut = d.path().join("cut.mp4");
    std::fs::write(&cut, &src[..src.len() * 6 / 10]).unwrap();
    let before = sha256(&cut);
    let outdir = d.path().join("o");
    let out = outdir.join("cut.out.mp4");
    let o = run(veil().arg("redact").arg(&cut).arg("-o").arg(&out));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).starts_with("veil: error: "));
    assert!(!out.exists(), "a partial output was left behind");
    assert!(partial_files(&outdir).is_empty(), "temp files left behind");
    assert_eq!(sha256(&cut), before);
}

#[test]
fn faces_in_rotated_footage_are_found_upright() {
    // A phone-style recording: the picture is stored on its side, with rotation metadata that
    // makes players show it upright (ffprobe: rotation -90).
    let d = tempdir();
    let turned = d.path().join("turned.mp4");
    let input = d.path().join("sideways.mp4");
    let ff = |args: &[&str]| {
        let st = std::process::Command::new("ffmpeg")
            .args(["-v", "error", "-y"])
            .args(args)
            .status()
            .unwrap();
        assert!(st.success());
    };
    let src = fixture("face_carphone_352x288.mp4");
    ff(&[
        "-i",
        src.to_str().unwrap(),
        "-vf",
        "transpose=cclock",
        "-c:v",
        "libx264",
        "-crf",
        "18",
        "-c:a",
        "copy",
        turned.to_str().unwrap(),
    ]);
    // The rotation tag becomes a display matrix only on a stream copy (FFmpeg 5.1).
    ff(&[
        "-i",
        turned.to_str().unwrap(),
        "-c",
        "copy",
        "-metadata:s:v:0",
        "rotate=270",
        input.to_str().unwrap(),
    ]);
    let rot = ffprobe(
        &[
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream_side_data=rotation",
            "-of",
            "csv=p=0",
        ],
        &input,
    );
    assert!(rot.contains("-90"), "{rot}");
    let out = d.path().join("out.mp4");
    redact(&input, &out, &["--no-plates"]);
    // The carphone core box [134, 96, 18, 76] of the upright 352x288 picture, in stored pixels
    // of the counter-clockwise-turned frame (288x352): [y, 352 - x - w, h, w].
    let core = [96, 352 - 134 - 18, 76, 18];
    for frame in [0, 60, 119] {
        let r = detail_ratio(&input, &out, frame, core);
        assert!(
            r < 0.5,
            "face at frame {frame} not redacted in rotated footage ({r:.2})"
        );
    }
    // Detected upright: run on every frame (--thorough), the face model finds it on nearly all.
    let out = d.path().join("thorough.mp4");
    redact(&input, &out, &["--no-plates", "--thorough"]);
    let a = audit_of(&out);
    let detected: u64 = a
        .tracks
        .iter()
        .filter(|t| t.class == veil::detect::Class::Face)
        .map(|t| t.detected_frames)
        .sum();
    assert!(
        detected >= 100,
        "face detected on only {detected} of 120 frames"
    );
}
