//! Helpers for the integration tests: run the real binary, probe files with ffprobe.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixture(name: &str) -> PathBuf {
    root().join("fixtures").join(name)
}

pub fn veil() -> Command {
    Command::new(env!("CARGO_BIN_EXE_veil"))
}

pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("spawn veil");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "veil panicked: {stderr}");
    out
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn sha256(path: &Path) -> String {
    veil::util::sha256_file(path).expect("hash")
}

/// A temp folder for one test, removed with the review folder veil puts beside it (the
/// redaction review page goes to `<output folder>.review-NOT-FOR-DISCLOSURE`, a sibling).
pub struct TempDir(Option<tempfile::TempDir>);

impl TempDir {
    pub fn path(&self) -> &Path {
        self.0.as_ref().expect("live").path()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Some(d) = self.0.take() {
            let review = veil::review::default_review_dir(d.path());
            let _ = std::fs::remove_dir_all(review);
        }
    }
}

pub fn tempdir() -> TempDir {
    TempDir(Some(tempfile::tempdir().expect("tempdir")))
}

/// Runs ffprobe and returns stdout.
pub fn ffprobe(args: &[&str], file: &Path) -> String {
    let out = Command::new("ffprobe")
        .args(["-v", "error"])
        .args(args)
        .arg(file)
        .output()
        .expect("ffprobe");
    assert!(
        out.status.success(),
        "ffprobe failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Number of decoded video frames.
pub fn frame_count(file: &Path) -> u64 {
    ffprobe(
        &[
            "-count_frames",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=nb_read_frames",
            "-of",
            "csv=p=0",
        ],
        file,
    )
    .trim()
    .trim_end_matches(',')
    .parse()
    .expect("frame count")
}

/// Presentation timestamps (seconds, as printed) of every video frame.
pub fn frame_times(file: &Path) -> Vec<String> {
    ffprobe(
        &[
            "-select_streams",
            "v:0",
            "-show_entries",
            "frame=pts_time",
            "-of",
            "csv=p=0",
        ],
        file,
    )
    .lines()
    .map(|l| l.trim().trim_end_matches(',').to_string())
    .filter(|l| !l.is_empty())
    .collect()
}

pub fn format_duration(file: &Path) -> f64 {
    ffprobe(
        &["-show_entries", "format=duration", "-of", "csv=p=0"],
        file,
    )
    .trim()
    .parse()
    .expect("duration")
}

/// The payload bytes of the first audio stream's packets, concatenated, and their timestamps.
pub fn audio_packets(file: &Path) -> (Vec<u8>, String) {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(file)
        .args(["-map", "0:a:0", "-c", "copy", "-f", "data", "-"])
        .output()
        .expect("ffmpeg");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ts = ffprobe(
        &[
            "-select_streams",
            "a:0",
            "-show_entries",
            "packet=pts_time,duration_time,size",
            "-of",
            "csv=p=0",
        ],
        file,
    );
    (out.stdout, ts)
}

/// Fine-detail ratio (output / original) inside `b` = [x, y, w, h] of frame `frame`.
pub fn detail_ratio(orig: &Path, out: &Path, frame: u64, b: [i64; 4]) -> f64 {
    let (o, r) = if veil::decode::is_image(orig) {
        let g = |p: &Path| {
            let img = veil::decode::load_rgb(p).unwrap();
            let l = image::DynamicImage::ImageRgb8(img).to_luma8();
            veil::decode::Gray {
                width: l.width() as usize,
                height: l.height() as usize,
                data: l.into_raw(),
            }
        };
        (g(orig), g(out))
    } else {
        let want = std::collections::BTreeSet::from([frame]);
        let mut o = veil::decode::decode_gray_frames(orig, &want).unwrap();
        let mut r = veil::decode::decode_gray_frames(out, &want).unwrap();
        (
            o.remove(&frame).expect("frame in original"),
            r.remove(&frame).expect("frame in output"),
        )
    };
    veil::eval::detail_ratio(&o, &r, b)
}

/// Files in `dir` whose names contain `veil-partial` (left-over temp files).
pub fn partial_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.to_string_lossy().contains("veil-partial"))
                .collect()
        })
        .unwrap_or_default()
}

/// The fixture face annotations.
pub fn faces_json() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(fixture("faces.json")).unwrap()).unwrap()
}

pub fn json_box(v: &serde_json::Value) -> [i64; 4] {
    let a = v.as_array().expect("box array");
    [
        a[0].as_i64().unwrap(),
        a[1].as_i64().unwrap(),
        a[2].as_i64().unwrap(),
        a[3].as_i64().unwrap(),
    ]
}

/// Redacts `input` twice at once into `dir` (each run loads the cores for the other, as the
/// workers of a batch do); the two outputs.
pub fn redact_twice_at_once(input: &Path, dir: &Path) -> [PathBuf; 2] {
    let outs = [dir.join("a.mp4"), dir.join("b.mp4")];
    let children: Vec<_> = outs
        .iter()
        .map(|o| {
            veil()
                .arg("redact")
                .arg(input)
                .arg("-o")
                .arg(o)
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn veil")
        })
        .collect();
    for c in children {
        let o = c.wait_with_output().expect("wait");
        assert!(o.status.success(), "{}", stderr(&o));
    }
    outs
}
