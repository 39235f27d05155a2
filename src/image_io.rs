//! Still images (JPEG, PNG, ...): decoded with the `image` crate, detected at several scales
//! (speed matters less than for video), redacted in RGB and written in the input's format.

use std::path::Path;
use std::time::Instant;

use image::{ImageFormat, ImageReader, RgbImage};

use crate::audit::TrackLog;
use crate::detect::{nms, Class, Detection, Rgb};
use crate::error::{Result, VeilError};
use crate::pipeline::{Detectors, RedactOptions, RedactSummary, TempGuard};
use crate::redact::{self, Plane};

/// Largest image accepted, in pixels (guards against decompression bombs).
pub const MAX_IMAGE_PIXELS: u64 = 100_000_000;

pub fn load_rgb(path: &Path) -> Result<RgbImage> {
    let reader = ImageReader::open(path)
        .map_err(|e| VeilError::io("cannot open image", path, e))?
        .with_guessed_format()
        .map_err(|e| VeilError::io("cannot read image", path, e))?;
    let (w, h) = reader.into_dimensions().map_err(|e| VeilError::Input {
        path: path.to_path_buf(),
        msg: format!("not a readable image ({e})"),
    })?;
    if w as u64 * h as u64 > MAX_IMAGE_PIXELS {
        return Err(VeilError::Input {
            path: path.to_path_buf(),
            msg: format!("image {w}x{h} exceeds the {MAX_IMAGE_PIXELS}-pixel limit"),
        });
    }
    let img = ImageReader::open(path)
        .map_err(|e| VeilError::io("cannot open image", path, e))?
        .with_guessed_format()
        .map_err(|e| VeilError::io("cannot read image", path, e))?
        .decode()
        .map_err(|e| VeilError::Input {
            path: path.to_path_buf(),
            msg: format!("not a readable image ({e})"),
        })?;
    Ok(img.to_rgb8())
}

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
    let mut widths = vec![opts.detect_width, opts.detect_width * 2, w.min(4096)];
    widths.sort_unstable();
    widths.dedup();
    for tw in widths {
        found.extend(run_scaled(&mut dets.face, &full, tw, opts.thresh, &[])?);
    }
    let mut found = nms(found, 0.3);
    if let Some(pd) = dets.plate.as_mut() {
        let angles = opts.plate_angles();
        let mut plates = run_scaled(pd, &full, 0, opts.plate_thresh, &angles)?;
        // Overlapping tiles find plates too small for the whole-image pass; stills get the
        // model's native scale (640-pixel tiles) as speed matters less than for video.
        let tile = if opts.plate_tile == 0 {
            0
        } else {
            opts.plate_tile.min(640)
        };
        if tile > 0 && w.max(h) > tile {
            for (x, y, tw, th) in crate::pipeline::tile_grid(w, h, tile) {
                let view = full.crop(x, y, tw, th);
                for mut d in run_scaled(pd, &view, 0, opts.plate_thresh, &angles)? {
                    d.bbox = d.bbox.map(1.0, 1.0, x as f32, y as f32);
                    plates.push(d);
                }
            }
        }
        found.extend(nms(plates, 0.45));
    }
    Ok(found)
}

/// Resizes `src` for the detector (image crate, bilinear) and maps boxes back.
pub(crate) fn run_scaled(
    det: &mut crate::detect::Detector,
    src: &Rgb,
    target_width: usize,
    thresh: f32,
    angles: &[f32],
) -> Result<Vec<Detection>> {
    let (dw, dh) = det.input_size(src.width, src.height, target_width);
    let mut packed = Vec::with_capacity(src.width * src.height * 3);
    for y in 0..src.height {
        packed.extend_from_slice(src.row(y));
    }
    let tile = RgbImage::from_raw(src.width as u32, src.height as u32, packed)
        .ok_or_else(|| VeilError::Config("image buffer size mismatch".into()))?;
    let resized = if (dw, dh) == (src.width, src.height) {
        tile
    } else {
        image::imageops::resize(
            &tile,
            dw as u32,
            dh as u32,
            image::imageops::FilterType::Triangle,
        )
    };
    let img = Rgb::new(dw, dh, dw * 3, resized.as_raw())?;
    let sx = src.width as f32 / dw as f32;
    let sy = src.height as f32 / dh as f32;
    Ok(
        crate::detect::rotate::detect_turned(det, &img, thresh, angles)?
            .into_iter()
            .map(|mut d| {
                d.bbox = d.bbox.map(sx, sy, 0.0, 0.0);
                d
            })
            .collect(),
    )
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

pub fn redact_image(
    input: &Path,
    output: &Path,
    opts: &RedactOptions,
    dets: &mut Detectors,
) -> Result<RedactSummary> {
    let started = Instant::now();
    let out_format = ImageFormat::from_path(output).map_err(|_| {
        VeilError::Config(format!(
            "image output must end in .jpg, .png, .bmp or .webp: {}",
            output.display()
        ))
    })?;
    let mut img = load_rgb(input)?;
    let found = detect_image(&img, opts, dets)?;
    redact_rgb(&mut img, &found, opts);
    let guard = TempGuard::new(crate::pipeline::temp_path_for(output));
    {
        let f = std::fs::File::create(guard.path())
            .map_err(|e| VeilError::io("cannot create output", guard.path(), e))?;
        let mut wr = std::io::BufWriter::new(f);
        let res = if out_format == ImageFormat::Jpeg {
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut wr, 95).encode_image(&img)
        } else {
            img.write_to(&mut wr, out_format)
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
    guard.commit(output)?;
    let mut log = TrackLog::default();
    for (i, d) in found.iter().enumerate() {
        log.add(i as u32, d.class, 0, 0.0, d.bbox.to_xywh_i32());
        log.set_detections(i as u32, 1, d.score);
    }
    let tracks = log.into_records();
    let face_tracks = tracks.iter().filter(|t| t.class == Class::Face).count();
    let audit_path = crate::pipeline::write_audit(
        crate::pipeline::JobRecord {
            input,
            output,
            frames_in: 1,
            frames_out: 1,
            video: None,
            damaged: vec![],
            fixups: 0,
            tracks,
        },
        opts,
        dets,
    )?;
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
    })
}
