//! Recall evaluation on labelled media. It judges the OUTPUT PIXELS, not the engine's log: a
//! labelled box counts as redacted when the fine detail inside it (mean gradient magnitude) has
//! dropped below [`REDACTED_DETAIL_RATIO`] of the original's.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::audit::AuditRecord;
use crate::decode::{decode_gray_frames, is_image, load_rgb, Gray};
use crate::detect::{BBox, Detectors};
use crate::error::{Result, VeilError};
use crate::fsutil::check_paths;
use crate::job::Job;
use crate::options::RedactOptions;
use crate::pipeline;

/// A box counts as redacted when its detail is below this share of the original's. Plain
/// re-encoding at the default quality keeps well above it (see README).
pub const REDACTED_DETAIL_RATIO: f64 = 0.5;

/// Faces at least this tall are held to the 99% recall target.
pub const FACE_MIN_HEIGHT: i64 = 16;

#[derive(Debug, Clone, Deserialize)]
pub struct LabelFile {
    pub media: String,
    pub width: u32,
    pub height: u32,
    #[serde(default)]
    pub frame_count: Option<u64>,
    pub frames: BTreeMap<String, Vec<LabelBox>>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LabelBox {
    pub class: String,
    pub r#box: [i64; 4],
    #[serde(default)]
    pub small: bool,
    #[serde(default)]
    pub ambiguous: bool,
    /// Where the object's light fell during the exposure, when that is more than `box`: the
    /// box around its positions while the shutter was open (a smear, or the copies a whip
    /// leaves). Covering it is not lost picture; recall is still judged on `box`.
    #[serde(default)]
    pub exposure: Option<[i64; 4]>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct MediaReport {
    pub media: String,
    pub labelled_frames: usize,
    pub faces: usize,
    pub faces_redacted: usize,
    pub faces16: usize,
    pub faces16_redacted: usize,
    pub plates: usize,
    pub plates_redacted: usize,
    /// Mean share of frame area redacted outside the labelled boxes (from the audit record).
    pub fp_area: Option<f64>,
    /// Mean share of the frame whose picture was destroyed outside the labelled boxes, judged
    /// from the pixels (see [`lost_share`]): what a viewer sees, motion growth included.
    pub lost_area: Option<f64>,
    /// Tracks a reviewer would untick: seen on labelled frames, never on a labelled box.
    pub fp_tracks: Option<usize>,
    pub fps: Option<f64>,
    pub misses: Vec<Miss>,
    /// Why a file could not be scored (only when scoring another tool's outputs).
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Miss {
    pub frame: u64,
    pub class: String,
    pub r#box: [i64; 4],
    pub detail_ratio: f64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub media: Vec<MediaReport>,
}

fn pct(a: usize, b: usize) -> String {
    if b == 0 {
        "-".into()
    } else {
        format!("{:.1}% ({a}/{b})", 100.0 * a as f64 / b as f64)
    }
}

impl Report {
    pub fn totals(&self) -> MediaReport {
        let mut t = MediaReport {
            media: "TOTAL".into(),
            ..Default::default()
        };
        for m in &self.media {
            t.labelled_frames += m.labelled_frames;
            t.faces += m.faces;
            t.faces_redacted += m.faces_redacted;
            t.faces16 += m.faces16;
            t.faces16_redacted += m.faces16_redacted;
            t.plates += m.plates;
            t.plates_redacted += m.plates_redacted;
        }
        let tracks: Vec<usize> = self.media.iter().filter_map(|m| m.fp_tracks).collect();
        if !tracks.is_empty() {
            t.fp_tracks = Some(tracks.iter().sum());
        }
        let lost: Vec<f64> = self.media.iter().filter_map(|m| m.lost_area).collect();
        if !lost.is_empty() {
            t.lost_area = Some(lost.iter().sum::<f64>() / lost.len() as f64);
        }
        let fps: Vec<f64> = self.media.iter().filter_map(|m| m.fp_area).collect();
        if !fps.is_empty() {
            t.fp_area = Some(fps.iter().sum::<f64>() / fps.len() as f64);
        }
        t
    }

    pub fn table(&self) -> String {
        let mut s = format!(
            "{:<38} {:>6} {:>18} {:>18} {:>18} {:>9} {:>9} {:>9} {:>7}\n",
            "media",
            "frames",
            "faces>=16px",
            "faces all",
            "plates",
            "FP area",
            "lost",
            "FP tracks",
            "fps"
        );
        let tot = self.totals();
        for m in self.media.iter().chain(std::iter::once(&tot)) {
            if let Some(e) = &m.error {
                s += &format!("{:<38} not scored: {e}\n", m.media);
                continue;
            }
            s += &format!(
                "{:<38} {:>6} {:>18} {:>18} {:>18} {:>9} {:>9} {:>9} {:>7}\n",
                m.media,
                m.labelled_frames,
                pct(m.faces16_redacted, m.faces16),
                pct(m.faces_redacted, m.faces),
                pct(m.plates_redacted, m.plates),
                m.fp_area
                    .map(|v| format!("{:.2}%", v * 100.0))
                    .unwrap_or_else(|| "-".into()),
                m.lost_area
                    .map(|v| format!("{:.2}%", v * 100.0))
                    .unwrap_or_else(|| "-".into()),
                m.fp_tracks
                    .map(|v| v.to_string())
                    .unwrap_or_else(|| "-".into()),
                m.fps
                    .map(|v| format!("{v:.1}"))
                    .unwrap_or_else(|| "-".into()),
            );
        }
        s
    }
}

/// Mean L1 gradient magnitude inside a box (clipped to the image).
pub fn detail(img: &Gray, b: [i64; 4]) -> f64 {
    let x0 = b[0].clamp(0, img.width as i64) as usize;
    let y0 = b[1].clamp(0, img.height as i64) as usize;
    let x1 = b[0].saturating_add(b[2]).clamp(0, img.width as i64) as usize;
    let y1 = b[1].saturating_add(b[3]).clamp(0, img.height as i64) as usize;
    if x1 < x0 + 2 || y1 < y0 + 2 {
        return 0.0;
    }
    let mut sum = 0u64;
    for y in y0..y1 - 1 {
        let r = &img.data[y * img.width..];
        let r2 = &img.data[(y + 1) * img.width..];
        for x in x0..x1 - 1 {
            sum += (r[x] as i32 - r[x + 1] as i32).unsigned_abs() as u64
                + (r[x] as i32 - r2[x] as i32).unsigned_abs() as u64;
        }
    }
    sum as f64 / ((x1 - x0 - 1) * (y1 - y0 - 1)) as f64
}

/// Detail of the redacted box relative to the original.
pub fn detail_ratio(orig: &Gray, out: &Gray, b: [i64; 4]) -> f64 {
    let d0 = detail(orig, b);
    let d1 = detail(out, b);
    if d0 < 1.0 {
        // A flat region has nothing to recognise; count it by what happened to it.
        return if d1 <= d0 { 0.0 } else { d1 / d0.max(1e-6) };
    }
    d1 / d0
}

fn load_gray_image(path: &Path) -> Result<Gray> {
    let img = load_rgb(path)?;
    let luma = image::DynamicImage::ImageRgb8(img).to_luma8();
    Ok(Gray {
        width: luma.width() as usize,
        height: luma.height() as usize,
        data: luma.into_raw(),
    })
}

/// Evaluates one labelled media file against a redacted version of it.
pub fn score_media(
    label: &LabelFile,
    original: &Path,
    redacted: &Path,
    audit: Option<&AuditRecord>,
    mask_scale: f32,
) -> Result<MediaReport> {
    let wanted: BTreeSet<u64> = label
        .frames
        .keys()
        .filter_map(|k| k.parse::<u64>().ok())
        .collect();
    let (orig, out) = if is_image(original) {
        (
            BTreeMap::from([(0u64, load_gray_image(original)?)]),
            BTreeMap::from([(0u64, load_gray_image(redacted)?)]),
        )
    } else {
        (
            decode_gray_frames(original, &wanted)?,
            decode_gray_frames(redacted, &wanted)?,
        )
    };
    let mut rep = MediaReport {
        media: label.media.clone(),
        labelled_frames: wanted.len(),
        ..Default::default()
    };
    let mut fp_sum = 0.0;
    let mut lost_sum = 0.0;
    let mut fp_n = 0usize;
    for (key, boxes) in &label.frames {
        let Ok(fi) = key.parse::<u64>() else { continue };
        let (Some(o), Some(r)) = (orig.get(&fi), out.get(&fi)) else {
            return Err(VeilError::Input {
                path: redacted.to_path_buf(),
                msg: format!("labelled frame {fi} is missing from the original or the output"),
            });
        };
        if (o.width, o.height) != (r.width, r.height) {
            return Err(VeilError::Input {
                path: redacted.to_path_buf(),
                msg: "output frame size differs from the original".into(),
            });
        }
        for b in boxes.iter().filter(|b| !b.ambiguous) {
            let ratio = detail_ratio(o, r, b.r#box);
            let hit = ratio < REDACTED_DETAIL_RATIO;
            match b.class.as_str() {
                "face" => {
                    rep.faces += 1;
                    rep.faces_redacted += hit as usize;
                    if b.r#box[3] >= FACE_MIN_HEIGHT {
                        rep.faces16 += 1;
                        rep.faces16_redacted += hit as usize;
                    }
                }
                "plate" => {
                    rep.plates += 1;
                    rep.plates_redacted += hit as usize;
                }
                _ => continue,
            }
            if !hit {
                rep.misses.push(Miss {
                    frame: fi,
                    class: b.class.clone(),
                    r#box: b.r#box,
                    detail_ratio: (ratio * 1000.0).round() / 1000.0,
                });
            }
        }
        lost_sum += lost_share(o, r, boxes, mask_scale);
        if let Some(a) = audit {
            fp_sum += fp_area_share(a, fi, boxes, o.width, o.height, mask_scale);
            fp_n += 1;
        }
    }
    if fp_n > 0 {
        rep.fp_area = Some(fp_sum / fp_n as f64);
    }
    if !label.frames.is_empty() {
        rep.lost_area = Some(lost_sum / label.frames.len() as f64);
    }
    rep.fp_tracks = audit.map(|a| false_tracks(a, label, mask_scale));
    Ok(rep)
}

/// The tracks of `a` with a box on a labelled frame of `label` but none touching a labelled
/// box (grown as [`fp_area_share`] grows them; ambiguous ones included): the false positives
/// a reviewer would untick on the review page.
fn false_tracks(a: &AuditRecord, label: &LabelFile, mask_scale: f32) -> usize {
    let grown = |b: [i64; 4], k: f32| {
        BBox::from_xywh(b[0] as f32, b[1] as f32, b[2] as f32, b[3] as f32).scaled(k)
    };
    let frames: BTreeMap<u64, &Vec<LabelBox>> = label
        .frames
        .iter()
        .filter_map(|(k, v)| Some((k.parse().ok()?, v)))
        .collect();
    a.tracks
        .iter()
        .filter(|t| {
            let mut seen = false;
            let touches = t.boxes.iter().any(|bx| {
                let Some(labels) = frames.get(&(bx[0] as u64)) else {
                    return false;
                };
                seen = true;
                let b = grown([bx[1], bx[2], bx[3], bx[4]], mask_scale);
                labels
                    .iter()
                    .any(|l| b.intersection(&grown(l.r#box, mask_scale * 1.2)) > 0.0)
            });
            seen && !touches
        })
        .count()
}

/// Side of the cells [`lost_share`] judges, in pixels.
const LOST_CELL: usize = 16;
/// A cell is judged only when the original has this much detail (mean L1 gradient): a flat
/// wall looks the same blurred.
const LOST_MIN_DETAIL: f64 = 3.0;

/// Share of the frame, outside every labelled box and exposure (grown by the mask scale and a
/// fifth, as [`fp_area_share`]), whose detail fell below half of the original's: the picture a viewer
/// lost, from the pixels, whatever drew the mask (tracks, motion growth, another tool).
pub fn lost_share(orig: &Gray, out: &Gray, labels: &[LabelBox], mask_scale: f32) -> f64 {
    let grown: Vec<BBox> = labels
        .iter()
        .flat_map(|l| std::iter::once(l.r#box).chain(l.exposure))
        .map(|b| {
            BBox::from_xywh(b[0] as f32, b[1] as f32, b[2] as f32, b[3] as f32)
                .scaled(mask_scale * 1.2)
        })
        .collect();
    let (w, h) = (orig.width, orig.height);
    let mut lost = 0usize;
    for y in (0..h).step_by(LOST_CELL) {
        for x in (0..w).step_by(LOST_CELL) {
            let (cw, ch) = (LOST_CELL.min(w - x), LOST_CELL.min(h - y));
            let cell = BBox::from_xywh(x as f32, y as f32, cw as f32, ch as f32);
            if grown.iter().any(|g| g.intersection(&cell) > 0.0) {
                continue;
            }
            let b = [x as i64, y as i64, cw as i64, ch as i64];
            let d0 = detail(orig, b);
            if d0 >= LOST_MIN_DETAIL && detail(out, b) < 0.5 * d0 {
                lost += cw * ch;
            }
        }
    }
    lost as f64 / (w * h).max(1) as f64
}

/// Share of the frame redacted (per the audit's boxes, grown by the mask scale) that lies
/// outside every labelled box (grown the same way, ambiguous ones included).
fn fp_area_share(
    a: &AuditRecord,
    frame: u64,
    labels: &[LabelBox],
    w: usize,
    h: usize,
    mask_scale: f32,
) -> f64 {
    let mut mask = vec![0u8; w * h];
    let mut paint = |b: &BBox, v: u8| {
        let b = b.clip(w as f32, h as f32);
        for y in b.y1 as usize..(b.y2.ceil() as usize).min(h) {
            for x in b.x1 as usize..(b.x2.ceil() as usize).min(w) {
                mask[y * w + x] = v;
            }
        }
    };
    for t in &a.tracks {
        for bx in t.boxes.iter().filter(|bx| bx[0] as u64 == frame) {
            let b = BBox::from_xywh(bx[1] as f32, bx[2] as f32, bx[3] as f32, bx[4] as f32);
            paint(&b.scaled(mask_scale), 1);
        }
    }
    for l in labels {
        let b = l.r#box;
        let bb = BBox::from_xywh(b[0] as f32, b[1] as f32, b[2] as f32, b[3] as f32);
        paint(&bb.scaled(mask_scale * 1.2), 0);
    }
    mask.iter().filter(|&&v| v == 1).count() as f64 / (w * h) as f64
}

/// Finds `labels/**/*.gt.json` under `data`.
pub fn find_labels(data: &Path) -> Result<Vec<PathBuf>> {
    let root = data.join("labels");
    let mut out = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        let rd =
            std::fs::read_dir(&dir).map_err(|e| VeilError::io("cannot list labels", &dir, e))?;
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().ends_with(".gt.json") {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Runs veil (or scores given outputs) on every labelled media file under `data`.
pub fn run_dataset(
    data: &Path,
    out_dir: Option<&Path>,
    only: Option<&str>,
    redacted_dir: Option<&Path>,
    opts: &RedactOptions,
    job: &Job,
) -> Result<Report> {
    let tmp;
    let out_dir = match out_dir {
        Some(d) => d.to_path_buf(),
        None => {
            tmp = std::env::temp_dir().join(format!("veil-eval-{}", std::process::id()));
            tmp
        }
    };
    std::fs::create_dir_all(&out_dir).map_err(|e| VeilError::io("cannot create", &out_dir, e))?;
    // Evaluation output is never disclosed: its review pages stay inside the evaluation folder.
    let mut opts = opts.clone();
    if opts.review_dir.is_none() {
        opts.review_dir = Some(out_dir.join("review"));
    }
    let opts = &opts;
    let mut report = Report::default();
    let mut dets = if redacted_dir.is_none() {
        opts.validate()?;
        job.validate()?;
        let threads = opts.threads_for(job);
        Some(Detectors::load(
            &opts.detector_spec(),
            threads.ort,
            job.device,
        )?)
    } else {
        None
    };
    for lp in find_labels(data)? {
        let text =
            std::fs::read_to_string(&lp).map_err(|e| VeilError::io("cannot read", &lp, e))?;
        let label: LabelFile = serde_json::from_str(&text).map_err(|e| VeilError::Input {
            path: lp.clone(),
            msg: format!("bad label file ({e})"),
        })?;
        if only.is_some_and(|o| !label.media.contains(o)) {
            continue;
        }
        let media = data.join(&label.media);
        let file_name = media.file_name().unwrap_or_default().to_os_string();
        let (redacted, audit, fps) = match redacted_dir {
            Some(d) => {
                let r = d.join(&file_name);
                if !r.exists() {
                    continue;
                }
                (r, None, None)
            }
            None => {
                let out = out_dir.join(&file_name);
                let outputs = opts.outputs(&media, &out);
                let outputs: Vec<&Path> = outputs.iter().map(PathBuf::as_path).collect();
                check_paths(&media, &outputs)?.keep();
                let dets = dets.as_mut().expect("loaded above");
                let s = if is_image(&media) {
                    pipeline::redact_image(&media, &out, opts, job, dets)?
                } else {
                    pipeline::redact_video(&media, &out, opts, job, dets, None, None)?
                };
                let a = AuditRecord::read(&s.audit)?;
                (out, Some(a), Some(s.fps))
            }
        };
        let scored = score_media(
            &label,
            &media,
            &redacted,
            audit.as_ref(),
            opts.redact.mask_scale,
        );
        let mut rep = match (scored, redacted_dir) {
            (Ok(r), _) => r,
            // Another tool's output that cannot be compared (e.g. resized) is reported, not fatal.
            (Err(e), Some(_)) => MediaReport {
                media: label.media.clone(),
                error: Some(e.to_string()),
                ..Default::default()
            },
            (Err(e), None) => return Err(e),
        };
        rep.fps = fps;
        report.media.push(rep);
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noise(w: usize, h: usize) -> Gray {
        let mut s = 12345u32;
        let data = (0..w * h)
            .map(|_| {
                s = s.wrapping_mul(1103515245).wrapping_add(12345);
                (s >> 16) as u8
            })
            .collect();
        Gray {
            width: w,
            height: h,
            data,
        }
    }

    #[test]
    fn blurred_box_scores_as_redacted_and_copy_does_not() {
        let o = noise(64, 64);
        let mut r = o.clone();
        for y in 10..40 {
            for x in 10..40 {
                r.data[y * 64 + x] = 128;
            }
        }
        assert!(detail_ratio(&o, &r, [10, 10, 30, 30]) < REDACTED_DETAIL_RATIO);
        assert!(detail_ratio(&o, &o, [10, 10, 30, 30]) > 0.99);
        // A box half covered is not redacted.
        assert!(detail_ratio(&o, &r, [25, 10, 30, 30]) > REDACTED_DETAIL_RATIO);
    }

    #[test]
    fn lost_picture_is_counted_outside_the_labels_only() {
        let o = noise(64, 64);
        let mut r = o.clone();
        // Flatten the top-left 32x32 quarter.
        for y in 0..32 {
            for x in 0..32 {
                r.data[y * 64 + x] = 128;
            }
        }
        assert_eq!(lost_share(&o, &o, &[], 1.0), 0.0);
        assert!((lost_share(&o, &r, &[], 1.0) - 0.25).abs() < 1e-9);
        // The same loss over a labelled box is what was asked for.
        let label = LabelBox {
            class: "face".into(),
            r#box: [4, 4, 24, 24],
            small: false,
            ambiguous: false,
            exposure: None,
        };
        assert_eq!(lost_share(&o, &r, std::slice::from_ref(&label), 1.0), 0.0);
        // A smear's path: only a label whose exposure reaches the flattened quarter excuses it.
        let away = LabelBox {
            r#box: [40, 40, 20, 20],
            ..label.clone()
        };
        assert!((lost_share(&o, &r, std::slice::from_ref(&away), 1.0) - 0.25).abs() < 1e-9);
        let smeared = LabelBox {
            exposure: Some([4, 4, 56, 56]),
            ..away
        };
        assert_eq!(lost_share(&o, &r, &[smeared], 1.0), 0.0);
    }
}
