//! Trust: no input is ever destroyed, a forged record cannot switch detection off, no unredacted
//! pixels sit beside the disclosure, and hostile files get bounded memory and time. One test per
//! defect found by the hostile-input review (issue 18).

mod common;
use common::*;

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::process::Command;

fn copy(src: &str, dst: &Path) {
    std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
    std::fs::copy(fixture(src), dst).unwrap();
}

fn ff(args: &[&str]) {
    let st = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-nostdin"])
        .args(args)
        .status()
        .expect("ffmpeg");
    assert!(st.success(), "ffmpeg {args:?}");
}

fn batch_report(o: &std::process::Output) -> veil::batch::BatchReport {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("bad report ({e}): {}", stderr(o)))
}

/// Runs `cmd` and returns its output with its peak resident memory (MiB), read from the
/// kernel's accounting of that one child (`wait4`), so other tests running alongside do not count.
#[allow(clippy::zombie_processes)] // reaped by wait4 below, which std cannot see
fn peak_rss_mib(cmd: &mut Command) -> (std::process::Output, f64) {
    use std::io::Read;
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn veil");
    // Pipes are drained while the child runs, so a chatty child never blocks on a full pipe.
    let drain = |s: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            if let Some(mut s) = s {
                let _ = s.read_to_end(&mut v);
            }
            v
        })
    };
    let out_t = drain(
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let err_t = drain(
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: a zeroed rusage is valid; wait4 fills it for our own child, which is reaped here.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    assert_eq!(r, pid);
    let out = std::process::Output {
        status: std::os::unix::process::ExitStatusExt::from_raw(status),
        stdout: out_t.join().unwrap(),
        stderr: err_t.join().unwrap(),
    };
    (out, ru.ru_maxrss as f64 / 1024.0)
}

#[test]
fn a_batch_into_its_own_folder_is_refused_and_never_writes_over_an_input() {
    let d = tempdir();
    let inp = d.path().join("in");
    copy("synth_noaudio_320x240.mp4", &inp.join("clip.mp4"));
    ff(&[
        "-i",
        fixture("synth_noaudio_320x240.mp4").to_str().unwrap(),
        "-c:v",
        "mjpeg",
        inp.join("clip.avi").to_str().unwrap(),
    ]);
    let before: Vec<String> = ["clip.mp4", "clip.avi"]
        .iter()
        .map(|n| sha256(&inp.join(n)))
        .collect();
    // -o equal to the input folder: refused before anything is written.
    let o = run(veil()
        .args(["batch", "--no-plates", "--json"])
        .arg(&inp)
        .arg("-o")
        .arg(&inp));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("input folder"), "{}", stderr(&o));
    // Inside it: the output folder is left out of the inputs, so outputs are never re-read.
    let out = inp.join("out");
    for round in 0..2 {
        let o = run(veil()
            .args(["batch", "--no-plates", "--no-highlights", "--json"])
            .arg(&inp)
            .arg("-o")
            .arg(&out));
        assert!(o.status.success(), "round {round}: {}", stderr(&o));
        let r = batch_report(&o);
        assert_eq!(r.files.len(), 2, "round {round}: {:?}", r.files);
    }
    // clip.avi does not take clip.mp4's output name.
    assert!(out.join("clip.mp4").is_file() && out.join("clip.avi.mp4").is_file());
    assert!(
        !out.join("out").exists(),
        "the outputs were taken for inputs"
    );
    let after: Vec<String> = ["clip.mp4", "clip.avi"]
        .iter()
        .map(|n| sha256(&inp.join(n)))
        .collect();
    assert_eq!(before, after, "an input changed");
}

#[test]
fn two_inputs_with_one_output_name_fail_the_second_loudly() {
    let d = tempdir();
    copy("astronaut.png", &d.path().join("x/a.png"));
    copy("astronaut.jpg", &d.path().join("lists/x/a.png"));
    let manifest = d.path().join("lists/manifest.txt");
    std::fs::write(&manifest, "../x/a.png\nx/a.png\n").unwrap();
    let out = d.path().join("out");
    let o = run(veil()
        .args(["batch", "--no-plates", "--json"])
        .arg(&manifest)
        .arg("-o")
        .arg(&out));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let r = batch_report(&o);
    assert_eq!((r.done, r.failed), (1, 1), "{:?}", r.files);
    let failed = r.files.iter().find(|f| f.error.is_some()).unwrap();
    assert!(
        failed
            .error
            .as_deref()
            .unwrap()
            .contains("also the output of"),
        "{failed:?}"
    );
}

#[test]
fn side_files_never_overwrite_the_input() {
    let d = tempdir();
    // `veil redact o.mp4.audit.json -o o.mp4` would write its audit record over its input.
    let input = d.path().join("o.mp4.audit.json");
    copy("synth_noaudio_320x240.mp4", &input);
    let h = sha256(&input);
    let o = run(veil()
        .arg("redact")
        .arg(&input)
        .arg("-o")
        .arg(d.path().join("o.mp4")));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("overwrite the input"), "{}", stderr(&o));
    assert_eq!(sha256(&input), h);
    assert!(!d.path().join("o.mp4").exists());
    // `veil process review.html -o .` would write the highlights page over it.
    let page = d.path().join("review.html");
    copy("synth_noaudio_320x240.mp4", &page);
    let h = sha256(&page);
    let o = run(veil().arg("process").arg(&page).arg("-o").arg(d.path()));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(sha256(&page), h);
}

#[test]
fn names_that_are_not_utf8_are_handled_and_a_batch_goes_on() {
    let d = tempdir();
    let dir = d.path().join("in");
    std::fs::create_dir_all(&dir).unwrap();
    let odd = dir.join(OsString::from_vec(b"clip-\xff\xfe.mp4".to_vec()));
    std::fs::copy(fixture("synth_noaudio_320x240.mp4"), &odd).unwrap();
    copy("synth_odd_321x241.mp4", &dir.join("z.mp4"));
    let out = d.path().join(OsString::from_vec(b"out-\xff.mp4".to_vec()));
    let o = run(veil()
        .args(["redact", "--no-plates"])
        .arg(&odd)
        .arg("-o")
        .arg(&out));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(frame_count(&out), frame_count(&odd));
    let o = run(veil()
        .arg("highlights")
        .arg(&odd)
        .arg("-o")
        .arg(d.path().join("hl")));
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(veil()
        .args(["process", "--no-plates"])
        .arg(&odd)
        .arg("-o")
        .arg(d.path().join("p")));
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(veil()
        .args(["batch", "--no-plates", "--no-highlights", "--json"])
        .arg(&dir)
        .arg("-o")
        .arg(d.path().join("b")));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(batch_report(&o).done, 2);
}

fn redact_json(input: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    run(veil()
        .args(["redact", "--no-plates"])
        .args(extra)
        .arg(input)
        .arg("-o")
        .arg(out))
}

fn edits_for(input: &Path, dir: &Path) -> PathBuf {
    let e = serde_json::json!({"schema": "veil.edits/1", "input_sha256": sha256(input),
        "audio": [{"action": "mute", "start": 0.1, "end": 0.2, "reason": "test"}]});
    let p = dir.join("edits.json");
    std::fs::write(&p, e.to_string()).unwrap();
    p
}

#[test]
fn a_forged_or_stale_audit_record_does_not_switch_detection_off() {
    let d = tempdir();
    let input = fixture("face_carphone_352x288.mp4");
    let out = d.path().join("out.mp4");
    let o = redact_json(&input, &out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let audit_path = veil::audit::audit_path(&out);
    let edits = edits_for(&input, d.path());
    let rerender = |detections: Option<&Path>| {
        let mut c = veil();
        c.args(["redact", "--no-plates", "--edits"])
            .arg(&edits)
            .arg(&input)
            .arg("-o")
            .arg(&out);
        if let Some(a) = detections {
            c.arg("--detections").arg(a);
        }
        run(&mut c)
    };
    let reused = || {
        veil::audit::AuditRecord::read(&audit_path)
            .unwrap()
            .edits
            .unwrap()
            .detections_from
            .is_some()
    };
    // The genuine record is re-used.
    let o = rerender(None);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(reused(), "a genuine record was not re-used");
    // A record claiming another version, with its boxes removed: detection runs again and
    // the face is redacted anyway.
    let genuine = std::fs::read_to_string(&audit_path).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&genuine).unwrap();
    v["veil_version"] = "0".into();
    v["tracks"] = serde_json::json!([]);
    let forged = d.path().join("forged.audit.json");
    std::fs::write(&forged, v.to_string()).unwrap();
    std::fs::write(&audit_path, v.to_string()).unwrap();
    let o = rerender(None);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!reused(), "a forged record was re-used");
    let fx = faces_json();
    let core = json_box(&fx["fixtures"]["face_carphone_352x288.mp4"]["core_box"]);
    assert!(
        detail_ratio(&input, &out, 10, core) < 0.5,
        "face left visible"
    );
    // Given explicitly, it is refused with the reason.
    let o = rerender(Some(&forged));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("written by veil 0"), "{}", stderr(&o));
    // A record of other settings (a higher threshold found fewer boxes) is stale.
    let o = redact_json(&input, &out, &["--thresh", "0.9"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = rerender(None);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!reused(), "a record of other settings was re-used");
}

#[test]
fn review_material_stays_out_of_the_output_folder() {
    let d = tempdir();
    let out_dir = d.path().join("disclose");
    let o = run(veil()
        .args(["process", "--no-plates"])
        .arg(fixture("face_carphone_352x288.mp4"))
        .arg("-o")
        .arg(&out_dir));
    assert!(o.status.success(), "{}", stderr(&o));
    let mut names: Vec<String> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "face_carphone_352x288.redacted.mp4",
            "face_carphone_352x288.redacted.mp4.audit.json",
            "highlights.json",
            "highlights.vtt",
            "review.html"
        ]
    );
    // The highlights page plays the redacted video only.
    let page = std::fs::read_to_string(out_dir.join("review.html")).unwrap();
    assert!(
        page.contains("\"original\":null"),
        "the page links the original"
    );
    for attr in ["src=", "href="] {
        assert!(
            !page.contains(&format!("{attr}\"face_carphone_352x288.mp4\"")),
            "the page links the original"
        );
    }
    let review = d.path().join("disclose.review-NOT-FOR-DISCLOSURE");
    assert!(review
        .join("face_carphone_352x288.redacted.mp4.redaction-review.html")
        .is_file());
    // A review folder chosen inside the output folder is refused, for every command.
    for cmd in ["redact", "process", "batch"] {
        let dir = d.path().join(format!("to-{cmd}"));
        let out = if cmd == "redact" {
            dir.join("o.mp4")
        } else {
            dir.clone()
        };
        let input = if cmd == "batch" {
            let i = d.path().join("in");
            copy("face_carphone_352x288.mp4", &i.join("c.mp4"));
            i
        } else {
            fixture("face_carphone_352x288.mp4")
        };
        let o = run(veil()
            .args([cmd, "--no-plates"])
            .arg(&input)
            .arg("-o")
            .arg(&out)
            .arg("--review-dir")
            .arg(dir.join("rev")));
        assert_eq!(o.status.code(), Some(2), "{cmd}: {}", stderr(&o));
        assert!(stderr(&o).contains("--review-dir"), "{cmd}: {}", stderr(&o));
        assert!(!dir.exists(), "{cmd} left {}", dir.display());
    }
}

#[test]
fn hostile_sizes_get_bounded_memory_or_a_clear_refusal() {
    let d = tempdir();
    // A 4000x4000 JPEG (small on disk) and a 10000x10000 1-bit PNG.
    let jpg = d.path().join("big.jpg");
    ff(&[
        "-f",
        "lavfi",
        "-i",
        "gradients=s=4000x4000:n=2",
        "-frames:v",
        "1",
        "-q:v",
        "20",
        jpg.to_str().unwrap(),
    ]);
    let png = d.path().join("huge.png");
    ff(&[
        "-f",
        "lavfi",
        "-i",
        "color=white:s=10000x10000",
        "-frames:v",
        "1",
        "-pix_fmt",
        "monob",
        png.to_str().unwrap(),
    ]);
    for input in [&jpg, &png] {
        let out = d.path().join(format!(
            "out-{}",
            input.file_name().unwrap().to_string_lossy()
        ));
        let (o, mib) = peak_rss_mib(veil().arg("redact").arg(input).arg("-o").arg(&out));
        assert!(o.status.success(), "{}: {}", input.display(), stderr(&o));
        eprintln!("{}: peak RSS {mib:.0} MiB", input.display());
        assert!(mib < 2048.0, "{}: peak RSS {mib:.0} MiB", input.display());
    }
    // An 8192x8192 stream is refused before it is decoded, with the limit to raise.
    let big = d.path().join("big.mp4");
    ff(&[
        "-f",
        "lavfi",
        "-i",
        "color=gray:s=8192x8192:d=0.1:r=30",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        big.to_str().unwrap(),
    ]);
    let o = run(veil()
        .arg("redact")
        .arg(&big)
        .arg("-o")
        .arg(d.path().join("o.mp4")));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--max-pixels"), "{}", stderr(&o));
}

#[test]
fn a_tiny_long_clip_costs_what_its_pixels_cost() {
    let d = tempdir();
    // 16x16 at 1 fps for ten minutes: 600 frames of 256 pixels.
    let clip = d.path().join("tiny.mp4");
    ff(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=s=16x16:r=1:d=600",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        clip.to_str().unwrap(),
    ]);
    let t0 = std::time::Instant::now();
    let o = run(veil()
        .arg("redact")
        .arg(&clip)
        .arg("-o")
        .arg(d.path().join("o.mp4")));
    assert!(o.status.success(), "{}", stderr(&o));
    // Not a speed target: a hang check (it did not finish in 10 minutes before).
    assert!(t0.elapsed().as_secs() < 120, "took {:?}", t0.elapsed());
}

#[test]
fn timestamps_that_jump_back_are_a_discontinuity_not_a_squeeze() {
    let d = tempdir();
    // Two MPEG-TS segments of 2 s each, concatenated: timestamps restart at the join.
    let seg = d.path().join("seg.ts");
    ff(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=s=320x240:r=25:d=2",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=300:duration=2",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-c:a",
        "aac",
        seg.to_str().unwrap(),
    ]);
    let joined = d.path().join("joined.ts");
    let bytes = std::fs::read(&seg).unwrap();
    std::fs::write(&joined, [bytes.clone(), bytes].concat()).unwrap();
    for extra in [&[][..], &["--no-audio"][..]] {
        let out = d.path().join(format!("out{}.mp4", extra.len()));
        let o = run(veil()
            .args(["redact", "--no-plates"])
            .args(extra)
            .arg(&joined)
            .arg("-o")
            .arg(&out));
        assert!(o.status.success(), "{extra:?}: {}", stderr(&o));
        assert_eq!(frame_count(&out), 100, "{extra:?}");
        // Both segments keep their two seconds (the file's start offset aside).
        let dur: f64 = ffprobe(
            &[
                "-select_streams",
                "v",
                "-show_entries",
                "stream=duration",
                "-of",
                "csv=p=0",
            ],
            &out,
        )
        .trim()
        .parse()
        .unwrap();
        assert!((dur - 4.0).abs() < 0.1, "{extra:?}: {dur} s");
        let a = veil::audit::AuditRecord::read(&veil::audit::audit_path(&out)).unwrap();
        assert_eq!(
            a.discontinuities.len(),
            1,
            "{extra:?}: {:?}",
            a.discontinuities
        );
    }
}

#[test]
fn leftovers_and_late_errors_are_gone() {
    let d = tempdir();
    // A name whose review page's temp file would be too long: refused before any work.
    let long = d.path().join(format!("{}.mp4", "n".repeat(214)));
    let o = run(veil()
        .args(["redact", "--no-plates"])
        .arg(fixture("synth_noaudio_320x240.mp4"))
        .arg("-o")
        .arg(&long));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_eq!(
        std::fs::read_dir(d.path()).unwrap().count(),
        0,
        "something was left"
    );
    // An unusable --signal-model is found before the redaction, and the folders the run would
    // have made are not left behind.
    let bogus = d.path().join("bogus.onnx");
    std::fs::write(&bogus, b"not a model").unwrap();
    let out_dir = d.path().join("new/dir");
    let o = run(veil()
        .args(["process", "--no-plates", "--signal-model"])
        .arg(format!("{}:struggle", bogus.display()))
        .arg(fixture("synth_noaudio_320x240.mp4"))
        .arg("-o")
        .arg(&out_dir));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        !d.path().join("new").exists(),
        "a failed run left its folders"
    );
}

#[test]
fn exif_orientation_is_applied_to_the_pixels() {
    let d = tempdir();
    // The astronaut turned a quarter left, with EXIF orientation 6 ("turn 90 degrees clockwise
    // to view").
    let side = d.path().join("side.jpg");
    ff(&[
        "-i",
        fixture("astronaut.png").to_str().unwrap(),
        "-vf",
        "transpose=2",
        side.to_str().unwrap(),
    ]);
    let jpg = std::fs::read(&side).unwrap();
    // An APP1 Exif segment with one IFD entry: Orientation (0x0112) = 6.
    let mut exif =
        b"Exif\0\0MM\0\x2a\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01\0\x06\0\0\0\0\0\0".to_vec();
    let mut seg = vec![0xFF, 0xE1];
    seg.extend(((exif.len() + 2) as u16).to_be_bytes());
    seg.append(&mut exif);
    let tagged = d.path().join("tagged.jpg");
    std::fs::write(&tagged, [&jpg[..2], &seg[..], &jpg[2..]].concat()).unwrap();
    let out = d.path().join("out.png");
    let o = run(veil()
        .args(["redact", "--no-plates"])
        .arg(&tagged)
        .arg("-o")
        .arg(&out));
    assert!(o.status.success(), "{}", stderr(&o));
    let img = veil::decode::load_rgb(&out).unwrap();
    assert_eq!((img.width(), img.height()), (512, 512));
    let a = veil::audit::AuditRecord::read(&veil::audit::audit_path(&out)).unwrap();
    assert_eq!(
        a.video.as_ref().unwrap()["orientation_applied_to_pixels"],
        true
    );
    // Upright, the face is found and redacted where it is in the upright picture.
    let core = json_box(&faces_json()["fixtures"]["astronaut.png"]["core_box"]);
    let r = detail_ratio(&fixture("astronaut.png"), &out, 0, core);
    assert!(r < 0.5, "face not redacted ({r:.2})");
}

#[test]
fn audio_edits_that_cannot_apply_are_refused() {
    let d = tempdir();
    let with_audio = fixture("face_carphone_352x288.mp4");
    let out = d.path().join("o.mp4");
    for (input, args) in [
        (with_audio.clone(), vec!["--mute", "100-200"]),
        (with_audio.clone(), vec!["--mute", "1:2:3:4-1:2:3:5"]),
        (with_audio.clone(), vec!["--mute", "0-1e300"]),
        (
            fixture("synth_noaudio_320x240.mp4"),
            vec!["--bleep", "0-0.5"],
        ),
    ] {
        let o = run(veil()
            .args(["redact", "--no-plates"])
            .args(&args)
            .arg(&input)
            .arg("-o")
            .arg(&out));
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(!out.exists(), "{args:?}");
    }
    // PCM audio into MP4: the error names the audio stream and what to do.
    let mkv = d.path().join("pcm.mkv");
    ff(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=s=160x120:r=10:d=1",
        "-f",
        "lavfi",
        "-i",
        "sine=duration=1",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-c:a",
        "pcm_s16le",
        mkv.to_str().unwrap(),
    ]);
    let o = run(veil()
        .args(["redact", "--no-plates"])
        .arg(&mkv)
        .arg("-o")
        .arg(&out));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("audio stream") && e.contains("--no-audio") && e.contains(".mkv"),
        "{e}"
    );
}

#[test]
fn damaged_matroska_fails_closed_or_is_recorded() {
    let d = tempdir();
    let mkv = d.path().join("clusters.mkv");
    ff(&[
        "-i",
        fixture("synth_noaudio_320x240.mp4").to_str().unwrap(),
        "-c",
        "copy",
        "-cluster_time_limit",
        "200",
        "-cluster_size_limit",
        "20000",
        mkv.to_str().unwrap(),
    ]);
    // Scramble the size of the third cluster: the demuxer logs the broken element, skips
    // ahead, and some frames are never seen, with no error returned to the caller.
    let mut bytes = std::fs::read(&mkv).unwrap();
    let clusters: Vec<usize> = bytes
        .windows(4)
        .enumerate()
        .filter(|(_, w)| *w == [0x1F, 0x43, 0xB6, 0x75])
        .map(|(i, _)| i)
        .collect();
    assert!(clusters.len() >= 4, "{} clusters", clusters.len());
    for b in &mut bytes[clusters[2] + 4..clusters[2] + 12] {
        *b ^= 0x5A;
    }
    let bad = d.path().join("bad.mkv");
    std::fs::write(&bad, &bytes).unwrap();
    assert!(
        frame_count(&bad) < frame_count(&mkv),
        "the damage lost no frames"
    );

    let out = d.path().join("out.mp4");
    let o = run(veil()
        .args(["redact", "--no-plates"])
        .arg(&bad)
        .arg("-o")
        .arg(&out));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("damaged"), "{}", stderr(&o));
    assert!(!out.exists(), "fail-closed left an output");

    let o = run(veil()
        .args(["redact", "--no-plates", "--allow-damaged"])
        .arg(&bad)
        .arg("-o")
        .arg(&out));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("warning: the input is damaged"),
        "{}",
        stderr(&o)
    );
    let a = veil::audit::AuditRecord::read(&veil::audit::audit_path(&out)).unwrap();
    assert!(!a.damaged.is_empty(), "the loss was not recorded");
    assert!(a.damaged[0].time_s > 0.0, "{:?}", a.damaged);
}

/// A 1 s picture with a silent audio track of `secs` seconds.
fn long_silence(dir: &Path, secs: u32) -> PathBuf {
    let p = dir.join(format!("silence-{secs}.mp4"));
    ff(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=s=160x120:r=25:d=1",
        "-f",
        "lavfi",
        "-i",
        &format!("anullsrc=r=8000:cl=mono:d={secs}"),
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-c:a",
        "aac",
        "-b:a",
        "8k",
        p.to_str().unwrap(),
    ]);
    p
}

#[test]
fn audio_analysis_memory_does_not_grow_with_the_audio_length() {
    let d = tempdir();
    // Kept whole, an hour of decoded audio is hundreds of MiB more than a minute of it
    // (the 10-hour case reached 2.5 GiB); streamed, the two runs cost the same.
    let mut peaks = Vec::new();
    for secs in [60, 3600] {
        let clip = long_silence(d.path(), secs);
        let out = d.path().join(format!("h{secs}"));
        let (o, mib) = peak_rss_mib(veil().arg("highlights").arg(&clip).arg("-o").arg(&out));
        assert!(o.status.success(), "{secs} s: {}", stderr(&o));
        eprintln!("{secs} s of audio: peak RSS {mib:.0} MiB");
        peaks.push(mib);
    }
    assert!(
        peaks[1] - peaks[0] < 64.0,
        "memory grew with the audio: {peaks:?} MiB"
    );
}

#[test]
fn the_same_input_and_settings_give_the_same_output_bytes() {
    // Anyone can redact again and check the output hash in the audit record.
    let dir = tempdir();
    let [a, b] = redact_twice_at_once(&fixture("face_720p.mp4"), dir.path()).map(|o| {
        let audit: serde_json::Value =
            serde_json::from_slice(&std::fs::read(o.with_extension("mp4.audit.json")).unwrap())
                .unwrap();
        (
            sha256(&o),
            audit["output"]["sha256"].as_str().unwrap().to_owned(),
        )
    });
    assert_eq!(a.0, a.1, "the audit record names the output's hash");
    assert_eq!(a, b, "two runs of the same job wrote different bytes");
}
