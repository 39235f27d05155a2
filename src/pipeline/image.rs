//! Still images (JPEG, PNG, ...): detected at several scales (speed matters less than for
//! video), redacted in RGB and written in the output's format, with an audit record.

use std::path::Path;
use std::time::Instant;

use image::{ImageFormat, RgbImage};

use super::RedactSummary;
use crate::audit::{self, JobRecord, TrackLog};
use crate::decode::load_upright;
use crate::detect::rotate::Look;
use crate::detect::views::{add_tile_plates, detect_rgb, detect_rgb_with, plate_looks, tile_grid};
use crate::detect::{
    drop_parts, nms, BBox, Class, Detection, Detectors, Rgb, CENTERFACE_NMS_IOU, YOLO_NMS_IOU,
};
use crate::error::{InvalidSetting, Result, VeilError};
use crate::fsutil::{temp_path_for, TempGuard};
use crate::job::Job;
use crate::options::RedactOptions;
use crate::redact::{self, Plane};

/// The largest picture a still's whole-image face pass runs on: the model's memory grows with
/// its input (a 4096-pixel pass took 3.4 GiB), so larger stills are also looked at in tiles.
pub const STILL_MAX_PASS: usize = 1536;
/// Tiles of a large still for faces, looked at in full resolution.
pub const STILL_FACE_TILE: usize = 1024;
/// A large still's plate tiles: at most this many a side (tiles grow with the picture).
const STILL_MAX_TILES: usize = 12;
/// Stills of more pixels look turned only around plate-like candidates, like video.
const STILL_ALL_TURNS_PIXELS: usize = 4_000_000;

/// Detects faces (several sizes, and full-resolution tiles on large images) and plates (whole
/// image plus overlapping tiles) in an RGB image. Boxes are in image pixels. Memory and time
/// follow the picture's size: no pass is larger than [`STILL_MAX_PASS`].
pub fn detect_image(
    img: &RgbImage,
    opts: &RedactOptions,
    dets: &mut Detectors,
) -> Result<Vec<Detection>> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let long = w.max(h);
    let full = Rgb::new(w, h, w * 3, img.as_raw())?;
    let looks = [Look::upright(opts.thresh)];
    let mut found = Vec::new();
    let mut sizes = vec![
        opts.detect_size,
        opts.detect_size * 2,
        long.min(STILL_MAX_PASS),
    ];
    sizes.retain(|&s| s <= STILL_MAX_PASS.max(opts.detect_size));
    sizes.sort_unstable();
    sizes.dedup();
    for size in sizes {
        found.extend(detect_rgb(&mut dets.face, &full, size, &looks)?);
    }
    if long > STILL_MAX_PASS {
        for (x, y, tw, th) in tile_grid(w, h, STILL_FACE_TILE) {
            let view = full.crop(x, y, tw, th);
            for mut d in detect_rgb(&mut dets.face, &view, STILL_FACE_TILE, &looks)? {
                d.bbox = d.bbox.map(1.0, 1.0, x as f32, y as f32);
                found.push(d);
            }
        }
    }
    let mut found = drop_parts(nms(found, CENTERFACE_NMS_IOU));
    if let Some(pd) = dets.plate.as_mut() {
        let angles = opts.plate_angles();
        let all_turns = w * h <= STILL_ALL_TURNS_PIXELS;
        let looks = (opts.plate_thresh, angles.as_slice(), all_turns);
        let plates = detect_rgb_with(pd, &full, 0, |det, img| {
            plate_looks(det, img, looks.0, looks.1, looks.2).map(|p| p.0)
        })?;
        // Stills get tiles at the model's native scale (640 pixels) where that keeps to a few
        // a side; larger stills get larger tiles.
        let tile = match opts.plate_tile {
            0 => 0,
            t => t.min(640).max(long.div_ceil(STILL_MAX_TILES)),
        };
        let plates = if tile > 0 && long > tile {
            add_tile_plates(
                pd,
                &full,
                (&tile_grid(w, h, tile), tile),
                |_| true,
                looks,
                plates,
            )?
        } else {
            nms(plates, YOLO_NMS_IOU)
        };
        let (iw, ih) = (full.width as f32, full.height as f32);
        let faces: Vec<BBox> = found.iter().map(|d| d.bbox).collect();
        found.extend(crate::detect::tighten_plates(
            plates
                .into_iter()
                .filter(|d| crate::detect::plausible_plate(&d.bbox, iw, ih, &faces, &faces))
                .collect(),
        ));
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
    let (mut img, orientation) = load_upright(input)?;
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
        // Where the input's EXIF said the picture is turned, the pixels were turned upright
        // (the output carries no EXIF, so it shows as the input did).
        video: (orientation != image::metadata::Orientation::NoTransforms).then(|| {
            serde_json::json!({
                "width": img.width(),
                "height": img.height(),
                "exif_orientation": format!("{orientation:?}"),
                "orientation_applied_to_pixels": true,
            })
        }),
        damaged: vec![],
        fixups: 0,
        discontinuities: vec![],
        whole_frames: vec![],
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
        damaged: 0,
        discontinuities: 0,
        whole_frames: 0,
        seconds,
        fps: 1.0 / seconds.max(1e-9),
        timing: Default::default(),
        passes: Default::default(),
    })
}
