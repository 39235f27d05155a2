//! Still images (JPEG, PNG, ...): detected at several scales (speed matters less than for
//! video), redacted in RGB and written in the output's format, with an audit record.

use std::path::Path;
use std::time::Instant;

use image::{ImageFormat, RgbImage};

use super::RedactSummary;
use crate::audit::{self, JobRecord, TrackLog};
use crate::decode::load_rgb;
use crate::detect::rotate::Look;
use crate::detect::views::{add_tile_plates, detect_rgb, detect_rgb_with, plate_looks};
use crate::detect::{
    drop_parts, nms, Class, Detection, Detectors, Rgb, CENTERFACE_NMS_IOU, YOLO_NMS_IOU,
};
use crate::error::{InvalidSetting, Result, VeilError};
use crate::fsutil::{temp_path_for, TempGuard};
use crate::job::Job;
use crate::options::RedactOptions;
use crate::redact::{self, Plane};

/// Detects faces (several widths) and plates (whole image plus overlapping tiles on large
/// images) in an RGB image. Boxes are in image pixels.
pub fn detect_image(
    img: &RgbImage,
    opts: &RedactOptions,
    dets: &mut Detectors,
) -> Result<Vec<Detection>> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let full = Rgb::new(w, h, w * 3, img.as_raw())?;
    let mut found = Vec::new();
    let mut widths = vec![opts.detect_size, opts.detect_size * 2, w.max(h).min(4096)];
    widths.sort_unstable();
    widths.dedup();
    for tw in widths {
        found.extend(detect_rgb(
            &mut dets.face,
            &full,
            tw,
            &[Look::upright(opts.thresh)],
        )?);
    }
    let mut found = drop_parts(nms(found, CENTERFACE_NMS_IOU));
    if let Some(pd) = dets.plate.as_mut() {
        let angles = opts.plate_angles();
        // Stills are looked at turned everywhere: speed matters less than for video.
        let looks = (opts.plate_thresh, angles.as_slice(), true);
        let plates = detect_rgb_with(pd, &full, 0, |det, img| {
            plate_looks(det, img, looks.0, looks.1, looks.2).map(|p| p.0)
        })?;
        // Stills get the model's native scale (640-pixel tiles), as speed matters less than
        // for video.
        let tile = opts.plate_tile.min(640);
        let plates = if tile > 0 && w.max(h) > tile {
            add_tile_plates(pd, &full, tile, |_| true, looks, plates)?
        } else {
            nms(plates, YOLO_NMS_IOU)
        };
        found.extend(plates);
    }
    Ok(found)
}

/// Redacts `boxes` in an RGB image in place.
pub fn redact_rgb(img: &mut RgbImage, boxes: &[Detection], opts: &RedactOptions) {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let mut scratch = Vec::new();
    for d in boxes {
        let (region, shape) = opts.redact.region(d.class, &d.bbox, w as f32, h as f32);
        let mut plane = Plane {
            data: &mut *img,
            stride: w * 3,
            width: w,
            height: h,
            channels: 3,
        };
        redact::redact_plane(
            &mut plane,
            &region,
            shape,
            opts.redact.style,
            &[0, 0, 0],
            &mut scratch,
        );
    }
}

/// Writes `img` to a temp file beside `output` and moves it into place.
fn write_image(img: &RgbImage, output: &Path, format: ImageFormat) -> Result<()> {
    let guard = TempGuard::new(temp_path_for(output));
    {
        let f = std::fs::File::create(guard.path())
            .map_err(|e| VeilError::io("cannot create output", guard.path(), e))?;
        let mut wr = std::io::BufWriter::new(f);
        let res = if format == ImageFormat::Jpeg {
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut wr, 95).encode_image(img)
        } else {
            img.write_to(&mut wr, format)
        };
        res.map_err(|e| VeilError::Io {
            context: "cannot write image",
            path: guard.path().to_path_buf(),
            source: std::io::Error::other(e.to_string()),
        })?;
        use std::io::Write;
        wr.flush()
            .map_err(|e| VeilError::io("cannot write image", guard.path(), e))?;
    }
    guard.commit(output)
}

/// Redacts a still image into `output` (paths checked by the caller) with its audit record.
pub fn redact_image(
    input: &Path,
    output: &Path,
    opts: &RedactOptions,
    job: &Job,
    dets: &mut Detectors,
) -> Result<RedactSummary> {
    let started = Instant::now();
    let out_format = ImageFormat::from_path(output).map_err(|_| InvalidSetting::Path {
        path: output.to_path_buf(),
        why: "image output must end in .jpg, .png, .bmp or .webp".into(),
    })?;
    dets.set_low_memory(false)?;
    let mut img = load_rgb(input)?;
    let found = detect_image(&img, opts, dets)?;
    redact_rgb(&mut img, &found, opts);
    write_image(&img, output, out_format)?;
    let mut log = TrackLog::default();
    for (i, d) in found.iter().enumerate() {
        log.add(i as u32, d.class, 0, 0.0, d.bbox.to_xywh_i32());
        log.set_detections(i as u32, 1, d.score);
    }
    let tracks = log.into_records();
    let face_tracks = tracks.iter().filter(|t| t.class == Class::Face).count();
    let settings = opts.resolve(1.0, (img.width() as usize, img.height() as usize), job);
    let audit_path = audit::write_audit(JobRecord {
        input,
        output,
        frames_in: 1,
        frames_out: 1,
        video: None,
        damaged: vec![],
        fixups: 0,
        tracks,
        settings: serde_json::to_value(&settings)
            .map_err(|e| VeilError::serialize("settings", e))?,
        models: &dets.models,
        edits: opts.edits_record(),
    })?;
    let seconds = started.elapsed().as_secs_f64();
    Ok(RedactSummary {
        input: input.to_path_buf(),
        output: output.to_path_buf(),
        audit: audit_path,
        review: None,
        frames_in: 1,
        frames_out: 1,
        face_tracks,
        plate_tracks: found.len() - face_tracks,
        redacted_frames: (!found.is_empty()) as u64,
        seconds,
        fps: 1.0 / seconds.max(1e-9),
        timing: Default::default(),
        passes: Default::default(),
    })
}
