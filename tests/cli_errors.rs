//! Start-up and input errors: one actionable line, a non-zero exit, never a panic, no output.

mod common;
use common::*;

use std::path::Path;

fn link(src: &Path, dst: &Path) {
    std::os::unix::fs::symlink(src, dst).unwrap();
}

/// A cache folder with the real ONNX Runtime and models, to be broken by each test.
fn cache_copy(with_ort: bool, models: bool) -> TempDir {
    let real = veil::paths::cache_dir();
    let d = tempdir();
    if with_ort {
        std::fs::create_dir_all(d.path().join("ort")).unwrap();
        for f in std::fs::read_dir(real.join("ort")).unwrap().flatten() {
            link(&f.path(), &d.path().join("ort").join(f.file_name()));
        }
    }
    std::fs::create_dir_all(d.path().join("models")).unwrap();
    if models {
        for f in std::fs::read_dir(real.join("models")).unwrap().flatten() {
            link(&f.path(), &d.path().join("models").join(f.file_name()));
        }
    }
    d
}

/// Redacts the astronaut still with `env` set; expects exit 1, no output, and returns the one
/// error line.
fn failed_start(env: &[(&str, &std::ffi::OsStr)]) -> String {
    let out = tempdir();
    let mut cmd = veil();
    cmd.env_remove("ORT_DYLIB_PATH");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let o = run(cmd
        .arg("redact")
        .arg(fixture("astronaut.png"))
        .arg("-o")
        .arg(out.path().join("a.png")));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        std::fs::read_dir(out.path()).unwrap().next().is_none(),
        "output left behind"
    );
    one_line_error(&o)
}

fn one_line_error(o: &std::process::Output) -> String {
    let e = stderr(o);
    let lines: Vec<&str> = e.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one error line, got: {e}");
    assert!(lines[0].starts_with("veil: error: "), "{e}");
    lines[0].to_string()
}

#[test]
fn help_and_version_work() {
    let o = run(veil().arg("--help"));
    assert!(o.status.success());
    let s = String::from_utf8_lossy(&o.stdout);
    for cmd in ["redact", "models", "eval"] {
        assert!(s.contains(cmd), "{s}");
    }
    let o = run(veil().args(["redact", "--help"]));
    let s = String::from_utf8_lossy(&o.stdout);
    for flag in [
        "--thresh",
        "--mask-scale",
        "--replacewith",
        "--crf",
        "--no-audio",
    ] {
        assert!(s.contains(flag), "{flag} missing: {s}");
    }
}

#[test]
fn models_lists_installed_models_with_licences() {
    let o = run(veil().args(["models", "--json"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let models = v["models"].as_array().unwrap();
    assert!(models
        .iter()
        .any(|m| m["id"] == "centerface" && m["license"] == "MIT"));
    let plate = models.iter().find(|m| m["id"] == "platedet").unwrap();
    assert!(plate["license"].as_str().unwrap().contains("AGPL"));
    assert!(models
        .iter()
        .all(|m| m["status"].as_str().unwrap().starts_with("ok")));
}

#[test]
fn missing_onnxruntime_is_a_clear_error() {
    let cache = cache_copy(false, true);
    let line = failed_start(&[("VEIL_CACHE", cache.path().as_os_str())]);
    assert!(
        line.contains("ONNX Runtime library not found") && line.contains("make setup"),
        "{line}"
    );
}

#[test]
fn broken_ort_dylib_path_is_a_clear_error() {
    let d = tempdir();
    let bogus = d.path().join("libonnxruntime.so");
    std::fs::write(&bogus, b"not a library").unwrap();
    let line = failed_start(&[("ORT_DYLIB_PATH", bogus.as_os_str())]);
    assert!(line.contains("could not be loaded"), "{line}");
}

#[test]
fn wrong_model_hash_is_a_clear_error() {
    let cache = cache_copy(true, true);
    let model = cache.path().join("models/centerface-int8.onnx");
    let mut bytes = std::fs::read(&model).unwrap();
    std::fs::remove_file(&model).unwrap();
    bytes.push(0);
    std::fs::write(&model, bytes).unwrap();
    let line = failed_start(&[("VEIL_CACHE", cache.path().as_os_str())]);
    assert!(
        line.contains("sha256") && line.contains("centerface"),
        "{line}"
    );
    // `veil models` reports it too, with a non-zero exit.
    let o = run(veil().env("VEIL_CACHE", cache.path()).arg("models"));
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stdout).contains("MISMATCH"));
}

#[test]
fn missing_model_is_a_clear_error() {
    let cache = cache_copy(true, false);
    let line = failed_start(&[("VEIL_CACHE", cache.path().as_os_str())]);
    assert!(
        line.contains("not installed") && line.contains("make setup"),
        "{line}"
    );
}

#[test]
fn bad_inputs_fail_cleanly_without_output() {
    let d = tempdir();
    let empty = d.path().join("empty.mp4");
    std::fs::write(&empty, b"").unwrap();
    let text = d.path().join("text.mp4");
    std::fs::write(&text, b"this is not a video\n".repeat(100)).unwrap();
    let random = d.path().join("random.mkv");
    std::fs::write(
        &random,
        (0..50_000u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let missing = d.path().join("nope.mp4");
    let dir = d.path().join("adir.mp4");
    std::fs::create_dir(&dir).unwrap();
    let outdir = d.path().join("out");
    for (input, expect) in [
        (&empty, "empty"),
        (&text, "not a readable media file"),
        (&random, "not a readable media file"),
        (&missing, "cannot open input"),
        (&dir, "directory"),
    ] {
        let before = input
            .exists()
            .then(|| input.is_file().then(|| sha256(input)))
            .flatten();
        let out = outdir.join("o.mp4");
        let o = run(veil().arg("redact").arg(input).arg("-o").arg(&out));
        assert_eq!(
            o.status.code(),
            Some(1),
            "{}: {}",
            input.display(),
            stderr(&o)
        );
        let line = one_line_error(&o);
        assert!(line.contains(expect), "{}: {line}", input.display());
        assert!(!out.exists());
        assert!(partial_files(&outdir).is_empty());
        if let Some(h) = before {
            assert_eq!(sha256(input), h, "input changed");
        }
    }
}

#[test]
fn output_equal_to_input_is_refused() {
    let d = tempdir();
    let input = d.path().join("in.mp4");
    std::fs::copy(fixture("synth_noaudio_320x240.mp4"), &input).unwrap();
    let h = sha256(&input);
    // Same file by another spelling.
    let other = d.path().join(".").join("in.mp4");
    let o = run(veil().arg("redact").arg(&input).arg("-o").arg(&other));
    assert_eq!(o.status.code(), Some(1));
    assert!(one_line_error(&o).contains("overwrite the input"));
    assert_eq!(sha256(&input), h);
}

#[test]
fn bad_settings_name_the_value_and_range() {
    let d = tempdir();
    let o = run(veil()
        .arg("redact")
        .arg(fixture("astronaut.png"))
        .arg("-o")
        .arg(d.path().join("a.png"))
        .args(["--mask-scale", "9"]));
    assert_eq!(o.status.code(), Some(2));
    let line = one_line_error(&o);
    assert!(
        line.contains("--mask-scale") && line.contains('9'),
        "{line}"
    );
}
