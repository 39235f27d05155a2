//! `veil batch`: folders and manifests, resume, failures that do not stop the batch,
//! sharding, and a kill -9 in the middle.

mod common;
use common::*;

use std::path::Path;
use std::process::Command;

fn batch_cmd(input: &Path, out: &Path) -> Command {
    let mut c = veil();
    c.arg("batch")
        .arg(input)
        .arg("-o")
        .arg(out)
        .args(["--json", "--no-plates"]);
    c
}

fn report(o: &std::process::Output) -> veil::batch::BatchReport {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("bad report ({e}): {}", stderr(o)))
}

fn copy(src: &str, dst: &Path) {
    std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
    std::fs::copy(fixture(src), dst).unwrap();
}

#[test]
fn folder_batch_resumes_and_reports_failures() {
    let d = tempdir();
    let inp = d.path().join("in");
    copy("synth_noaudio_320x240.mp4", &inp.join("a.mp4"));
    copy("synth_odd_321x241.mp4", &inp.join("sub/b.mp4"));
    copy("astronaut.jpg", &inp.join("sub/c.jpg"));
    std::fs::write(inp.join("broken.mp4"), b"not a video").unwrap();
    std::fs::write(inp.join("notes.txt"), b"ignored").unwrap();
    let out = d.path().join("out");

    let o = run(&mut batch_cmd(&inp, &out));
    assert_eq!(
        o.status.code(),
        Some(1),
        "a failed file makes the exit code non-zero"
    );
    let r = report(&o);
    assert_eq!((r.done, r.failed, r.skipped), (3, 1, 0), "{:?}", r.files);
    let failed = r
        .files
        .iter()
        .find(|f| f.status == veil::batch::Status::Failed)
        .unwrap();
    assert!(failed.input.ends_with("broken.mp4") && failed.error.is_some());
    for rel in ["a.mp4", "sub/b.mp4", "sub/c.jpg"] {
        assert!(out.join(rel).is_file(), "{rel} missing");
        let mut a = out.join(rel).into_os_string();
        a.push(".audit.json");
        assert!(Path::new(&a).is_file());
    }
    assert_eq!(frame_count(&out.join("sub/b.mp4")), 50);
    // Videos also get their highlights and review page, as `veil process` writes them;
    // images do not.
    for rel in ["a.mp4", "sub/b.mp4"] {
        for suffix in [".highlights.json", ".highlights.vtt", ".review.html"] {
            let p = out.join(format!("{rel}{suffix}"));
            assert!(p.is_file(), "{} missing", p.display());
        }
    }
    assert!(!out.join("sub/c.jpg.review.html").exists());
    let on_disk: veil::batch::BatchReport =
        serde_json::from_slice(&std::fs::read(out.join("batch-report.json")).unwrap()).unwrap();
    assert_eq!(on_disk.files.len(), 4);

    // A second run skips what is done and retries the failure.
    let o = run(&mut batch_cmd(&inp, &out));
    let r = report(&o);
    assert_eq!((r.done, r.failed, r.skipped), (0, 1, 3), "{:?}", r.files);

    // A corrupt audit record is not trusted: that file is redone.
    std::fs::write(
        out.join("a.mp4.audit.json"),
        b"{\"schema\": \"veil.audit/1\"",
    )
    .unwrap();
    let r = report(&run(&mut batch_cmd(&inp, &out)));
    assert_eq!((r.done, r.skipped), (1, 2), "{:?}", r.files);

    // A run killed after the video but before its review page is not complete either.
    std::fs::remove_file(out.join("sub/b.mp4.review.html")).unwrap();
    let r = report(&run(&mut batch_cmd(&inp, &out)));
    assert_eq!((r.done, r.skipped), (1, 2), "{:?}", r.files);
    assert!(out.join("sub/b.mp4.review.html").is_file());
}

#[test]
fn manifest_shards_cover_every_file_once() {
    let d = tempdir();
    let media = d.path().join("media");
    let names: Vec<String> = (0..6).map(|i| format!("clip{i}.png")).collect();
    for n in &names {
        copy("astronaut.png", &media.join(n));
    }
    let manifest = d.path().join("list.txt");
    let body: String = names.iter().map(|n| format!("media/{n}\n")).collect();
    std::fs::write(&manifest, format!("# six stills\n\n{body}")).unwrap();
    let out = d.path().join("out");
    let mut seen = Vec::new();
    for k in 0..3 {
        let o = run(batch_cmd(&manifest, &out).args(["--shard", &format!("{k}/3")]));
        assert!(o.status.success(), "{}", stderr(&o));
        let r = report(&o);
        assert_eq!(r.shard.as_deref(), Some(format!("{k}/3").as_str()));
        assert!(out.join(format!("batch-report-{k}-of-3.json")).is_file());
        seen.extend(r.files.into_iter().map(|f| f.input));
    }
    seen.sort();
    let mut want: Vec<String> = names
        .iter()
        .map(|n| d.path().join("media").join(n).display().to_string())
        .collect();
    want.sort();
    assert_eq!(seen, want, "every file exactly once across shards");

    // Slurm array variables select the same shard as --shard.
    let o = run(batch_cmd(&manifest, &d.path().join("out2"))
        .env("SLURM_ARRAY_TASK_ID", "1")
        .env("SLURM_ARRAY_TASK_COUNT", "3"));
    assert_eq!(report(&o).shard.as_deref(), Some("1/3"));
}

#[test]
fn kill_9_then_rerun_processes_each_file_once() {
    let d = tempdir();
    let inp = d.path().join("in");
    for i in 0..5 {
        copy("face_carphone_352x288.mp4", &inp.join(format!("c{i}.mp4")));
    }
    let out = d.path().join("out");
    let mut child = batch_cmd(&inp, &out)
        .args(["--jobs", "1"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill as soon as the first file is finished (and the second is under way).
    let t0 = std::time::Instant::now();
    while !out.join("c0.mp4.audit.json").exists() && t0.elapsed().as_secs() < 120 {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let done_before: Vec<String> = (0..5)
        .map(|i| format!("c{i}.mp4"))
        .filter(|n| out.join(format!("{n}.audit.json")).exists())
        .collect();
    assert!(!done_before.is_empty());

    let o = run(&mut batch_cmd(&inp, &out));
    assert!(o.status.success(), "{}", stderr(&o));
    let r = report(&o);
    for f in &r.files {
        let name = Path::new(&f.output)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let expect = if done_before.contains(&name) {
            veil::batch::Status::Skipped
        } else {
            veil::batch::Status::Done
        };
        assert_eq!(f.status, expect, "{name}");
        assert_eq!(frame_count(Path::new(&f.output)), 120, "{name}");
    }
    assert_eq!(r.done + r.skipped, 5);
    assert!(
        partial_files(&out).is_empty(),
        "partial files left: {:?}",
        partial_files(&out)
    );
}

fn proc_status(pid: u32) -> Option<(u64, usize)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kb = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count();
    Some((rss_kb, fds))
}

#[test]
fn two_hundred_tiny_files_keep_memory_and_descriptors_flat() {
    let d = tempdir();
    let inp = d.path().join("in");
    std::fs::create_dir_all(&inp).unwrap();
    let tiny = d.path().join("tiny.mp4");
    let st = Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=s=96x64:d=0.2:r=25",
            "-f",
            "lavfi",
            "-i",
            "sine=d=0.2",
            "-shortest",
            "-c:v",
            "libx264",
            "-c:a",
            "aac",
        ])
        .arg(&tiny)
        .status()
        .unwrap();
    assert!(st.success());
    for i in 0..200 {
        std::fs::copy(&tiny, inp.join(format!("t{i:03}.mp4"))).unwrap();
    }
    let out = d.path().join("out");
    let mut child = batch_cmd(&inp, &out)
        .args(["--jobs", "2"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut samples = Vec::new();
    while child.try_wait().unwrap().is_none() {
        let done = std::fs::read_dir(&out).map(|r| r.count()).unwrap_or(0);
        if let Some(s) = proc_status(pid) {
            samples.push((done, s));
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let r = report(&o);
    assert_eq!(
        r.done,
        200,
        "{:?}",
        r.files.iter().find(|f| f.error.is_some())
    );
    // Compare the first quarter of the run (after start-up) with the rest.
    let n = samples.len();
    assert!(n >= 8, "too few samples ({n})");
    let early = &samples[n / 8..n / 4 + 1];
    let late = &samples[n / 2..];
    let max = |s: &[(usize, (u64, usize))], f: fn(&(u64, usize)) -> u64| {
        s.iter().map(|x| f(&x.1)).max().unwrap()
    };
    let (rss_early, rss_late) = (max(early, |s| s.0), max(late, |s| s.0));
    let (fd_early, fd_late) = (max(early, |s| s.1 as u64), max(late, |s| s.1 as u64));
    eprintln!("RSS early {rss_early} kB, late {rss_late} kB; fds early {fd_early}, late {fd_late}");
    assert!(
        rss_late <= rss_early + rss_early / 4 + 32 * 1024,
        "memory grew: {rss_early} -> {rss_late} kB"
    );
    assert!(
        fd_late <= fd_early + 4,
        "file descriptors grew: {fd_early} -> {fd_late}"
    );
    for f in r.files.iter().step_by(20) {
        assert_eq!(frame_count(Path::new(&f.output)), 5, "{}", f.output);
    }
}

#[test]
fn interrupted_batch_cleans_up_and_resumes() {
    let d = tempdir();
    let inp = d.path().join("in");
    for i in 0..4 {
        copy("face_720p.mp4", &inp.join(format!("v{i}.mp4")));
    }
    let out = d.path().join("out");
    let child = batch_cmd(&inp, &out)
        .args(["--jobs", "1"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = std::time::Instant::now();
    while partial_files(&out).is_empty() && t0.elapsed().as_secs() < 60 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    let r = report(&o);
    assert!(r.interrupted >= 1, "{:?}", r.files);
    assert!(
        partial_files(&out).is_empty(),
        "temp files left: {:?}",
        partial_files(&out)
    );
    // Whatever completed is valid; a re-run finishes the rest.
    for f in r
        .files
        .iter()
        .filter(|f| f.status == veil::batch::Status::Done)
    {
        assert_eq!(frame_count(Path::new(&f.output)), 180);
    }
    let r2 = report(&run(&mut batch_cmd(&inp, &out)));
    assert_eq!(r2.done + r2.skipped, 4);
    assert_eq!(r2.skipped, r.done);
}

#[test]
fn hostile_names_are_handled_as_data() {
    let d = tempdir();
    let inp = d.path().join("in");
    let evil = "<img src=x onerror=alert(1)>.png";
    copy("astronaut.png", &inp.join(evil));
    let out = d.path().join("out");
    let o = run(&mut batch_cmd(&inp, &out));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(out.join(evil).is_file());
    let r = report(&o);
    assert!(r.files[0].input.ends_with(evil));
    // A manifest entry that climbs out of its folder still lands inside the output folder.
    let manifest = inp.join("list.txt");
    std::fs::write(&manifest, "../outside.png\n").unwrap();
    copy("astronaut.png", &d.path().join("outside.png"));
    let out2 = d.path().join("out2");
    let o = run(&mut batch_cmd(&manifest, &out2));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(out2.join("outside.png").is_file());
    assert!(!d.path().join("outside.png.audit.json").exists());
}

#[test]
fn symlinked_clips_and_folders_are_inputs_and_a_link_loop_ends() {
    let d = tempdir();
    let inp = d.path().join("in");
    let elsewhere = d.path().join("elsewhere");
    copy("astronaut.jpg", &elsewhere.join("linked.jpg"));
    copy("astronaut.jpg", &elsewhere.join("dir/inside.jpg"));
    copy("astronaut.jpg", &inp.join("plain.jpg"));
    std::os::unix::fs::symlink(elsewhere.join("linked.jpg"), inp.join("link.jpg")).unwrap();
    std::os::unix::fs::symlink(elsewhere.join("dir"), inp.join("linkdir")).unwrap();
    // A link back to the folder above it would walk forever if followed blindly.
    std::os::unix::fs::symlink(&inp, inp.join("loop")).unwrap();
    std::os::unix::fs::symlink(d.path().join("missing.jpg"), inp.join("dangling.jpg")).unwrap();
    let out = d.path().join("out");
    let o = run(&mut batch_cmd(&inp, &out));
    assert!(o.status.success(), "{}", stderr(&o));
    let r = report(&o);
    let mut inputs: Vec<String> = r
        .files
        .iter()
        .map(|f| {
            Path::new(&f.input)
                .strip_prefix(&inp)
                .unwrap()
                .display()
                .to_string()
        })
        .collect();
    inputs.sort();
    assert_eq!(inputs, ["link.jpg", "linkdir/inside.jpg", "plain.jpg"]);
    assert_eq!(r.done, 3, "{:?}", r.files);
    assert!(out.join("linkdir/inside.jpg").is_file());
}
