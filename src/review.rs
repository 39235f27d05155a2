//! The redaction review page (`<review folder>/<output name>.redaction-review.html`, outside
//! the output folder: it shows unredacted faces, so it is never part of a disclosure):
//! original and redacted video,
//! every track as a card with thumbnails of what was redacted, and the corrections a reviewer
//! exports as `edits.json` (see [`crate::edits`]) for `veil redact --edits`.

use std::path::{Path, PathBuf};

use ffmpeg_next as ffmpeg;
use ffmpeg_next::frame;

use crate::audit::AuditRecord;
use crate::detect::BBox;
use crate::error::Result;

const TEMPLATE: &str = include_str!("redact_review.html");

/// Tracks whose best score is below this are flagged for the reviewer.
pub const LOW_CONFIDENCE_BELOW: f32 = 0.5;
/// At most this many boxes per track go into the page (evenly subsampled).
const MAX_BOXES: usize = 400;
/// Thumbnails kept per track, and the frames between them.
pub const THUMBS_PER_TRACK: usize = 3;
pub const THUMB_EVERY: u64 = 45;
const THUMB_H: usize = 96;

/// What the review folder's name ends with: it holds unredacted material.
pub const REVIEW_SUFFIX: &str = ".review-NOT-FOR-DISCLOSURE";

/// The review folder beside an output folder: `<folder>.review-NOT-FOR-DISCLOSURE`, a sibling,
/// so sharing the output folder never shares it.
pub fn default_review_dir(output_folder: &Path) -> PathBuf {
    let abs = crate::fsutil::resolve(output_folder).unwrap_or_else(|| output_folder.to_path_buf());
    let mut name = abs.file_name().unwrap_or_default().to_os_string();
    if name.is_empty() {
        name.push("veil");
    }
    name.push(REVIEW_SUFFIX);
    abs.with_file_name(name)
}

/// Path of the review page for an output file, in the review folder `dir`.
pub fn page_path(dir: &Path, output: &Path) -> PathBuf {
    let mut name = output.file_name().unwrap_or_default().to_os_string();
    name.push(".redaction-review.html");
    dir.join(name)
}

/// A JPEG data URI of `b` (grown by a fifth) cut from a planar YUV frame, `THUMB_H` tall.
pub fn crop_thumb(f: &frame::Video, b: &BBox) -> Option<String> {
    let (w, h) = (f.width() as f32, f.height() as f32);
    let g = b.scaled(1.2).clip(w, h);
    let (cw, ch) = (g.width().floor() as usize, g.height().floor() as usize);
    if cw < 2 || ch < 2 {
        return None;
    }
    let (sx, sy) = crate::decode::chroma_shift(f.format());
    let full = matches!(
        f.format(),
        ffmpeg::format::Pixel::YUVJ420P | ffmpeg::format::Pixel::YUVJ444P
    );
    let th = THUMB_H.min(ch).max(2);
    let tw = (cw * th / ch).max(2);
    let mut rgb = Vec::with_capacity(tw * th * 3);
    for ty in 0..th {
        let y = g.y1 as usize + ty * ch / th;
        for tx in 0..tw {
            let x = g.x1 as usize + tx * cw / tw;
            let yy = f.data(0)[y * f.stride(0) + x] as f32;
            let (cx, cy) = (x >> sx, y >> sy);
            let u = f.data(1)[cy * f.stride(1) + cx] as f32 - 128.0;
            let v = f.data(2)[cy * f.stride(2) + cx] as f32 - 128.0;
            rgb.extend(crate::decode::yuv_to_rgb(yy, u, v, full));
        }
    }
    let mut jpg = Vec::new();
    let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpg, 80);
    image::ImageEncoder::write_image(
        enc,
        &rgb,
        tw as u32,
        th as u32,
        image::ExtendedColorType::Rgb8,
    )
    .ok()?;
    Some(format!(
        "data:image/jpeg;base64,{}",
        crate::html::base64(&jpg)
    ))
}

/// Writes the review page `page` for a finished redaction. `thumbs` maps track ids to
/// thumbnails.
pub fn write_page(
    page: &Path,
    audit: &AuditRecord,
    input: &Path,
    output: &Path,
    fps: f64,
    has_audio: bool,
    thumbs: &std::collections::HashMap<u32, Vec<String>>,
) -> Result<PathBuf> {
    let page = page.to_path_buf();
    let dir = page.parent().unwrap_or(Path::new("."));
    let url = |p: &Path| crate::html::relative_url(dir, p);
    let (w, h) = audit
        .video
        .as_ref()
        .map(|v| {
            (
                v["width"].as_u64().unwrap_or(0),
                v["height"].as_u64().unwrap_or(0),
            )
        })
        .unwrap_or((0, 0));
    let tracks: Vec<serde_json::Value> = audit
        .tracks
        .iter()
        .map(|t| {
            let step = t.boxes.len().div_ceil(MAX_BOXES).max(1);
            let boxes: Vec<&[i64; 5]> = t.boxes.iter().step_by(step).collect();
            serde_json::json!({
                "id": t.id,
                "class": t.class.as_str(),
                "first_frame": t.first_frame,
                "last_frame": t.last_frame,
                "first_time_s": t.first_time_s,
                "last_time_s": t.last_time_s,
                "frames": t.frames,
                "max_score": (t.max_score as f64 * 1000.0).round() / 1000.0,
                "low_confidence": t.class != crate::detect::Class::Manual && t.max_score < LOW_CONFIDENCE_BELOW,
                "boxes": boxes,
                "thumbs": thumbs.get(&t.id).cloned().unwrap_or_default(),
            })
        })
        .collect();
    let frames = audit.output.frames;
    let data = serde_json::json!({
        "schema": "veil.review/1",
        "source": input.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        "input_sha256": audit.input.sha256,
        "original": url(input),
        "redacted": url(output),
        "width": w,
        "height": h,
        "fps": fps,
        "frames": frames,
        "duration": if fps > 0.0 { frames as f64 / fps } else { 0.0 },
        "audio": has_audio,
        "tracks": tracks,
        "low_confidence_below": LOW_CONFIDENCE_BELOW,
    });
    let html = TEMPLATE.replacen("__VEIL_DATA__", &crate::html::script_json(&data), 1);
    crate::fsutil::write_atomic(&page, html.as_bytes())?;
    Ok(page)
}
