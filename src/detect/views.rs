//! The views a detector sees, for video frames and stills alike: the picture scaled to the
//! detector's size, turned upright (rotation metadata), turned by a few degrees (tilted
//! plates, `rotate`), and cut into overlapping tiles (small plates in large frames). Boxes come
//! back in the stored picture's pixels.

use std::borrow::Cow;

use ffmpeg_next::frame;

use super::rotate::{detect_looks, Look};
use super::{nms, BBox, Detection, Detector, Rgb, YOLO_NMS_IOU};
use crate::decode::RgbScaler;
use crate::error::{Result, VeilError};

/// Quarter turns (clockwise) that make a frame stored with this display rotation upright.
/// `rotation` is FFmpeg's display-matrix angle (counter-clockwise degrees, as [`VideoInfo`]).
///
/// [`VideoInfo`]: crate::decode::VideoInfo
pub fn upright_turns(rotation: i32) -> u32 {
    (((360 - rotation.rem_euclid(360)) % 360) / 90) as u32
}

/// Turns a packed RGB image clockwise by `turn` quarter turns; the result is tightly packed.
pub fn turn_quarters(src: &[u8], w: usize, h: usize, stride: usize, turn: u32) -> Vec<u8> {
    let turn = turn % 4;
    let nw = if turn % 2 == 1 { h } else { w };
    let mut out = vec![0u8; w * h * 3];
    for y in 0..h {
        let row = &src[y * stride..y * stride + w * 3];
        for x in 0..w {
            let (u, v) = match turn {
                1 => (h - 1 - y, x),
                2 => (w - 1 - x, h - 1 - y),
                3 => (y, w - 1 - x),
                _ => (x, y),
            };
            let o = (v * nw + u) * 3;
            out[o..o + 3].copy_from_slice(&row[x * 3..x * 3 + 3]);
        }
    }
    out
}

/// Maps a box in the upright picture back to the stored frame (`w`x`h`, stored orientation).
pub fn unturn_box(b: &BBox, turn: u32, w: f32, h: f32) -> BBox {
    match turn % 4 {
        1 => BBox::new(b.y1, h - b.x2, b.y2, h - b.x1),
        2 => BBox::new(w - b.x2, h - b.y2, w - b.x1, h - b.y1),
        3 => BBox::new(w - b.y2, b.x1, w - b.y1, b.x2),
        _ => *b,
    }
}

/// Overlapping tiles of (at most) `tile` pixels covering a `w`x`h` frame: `(x, y, w, h)`.
/// Neighbours overlap by at least a quarter of a tile, so an object cut by one tile's edge lies
/// whole inside the next one when it is smaller than that overlap.
pub fn tile_grid(w: usize, h: usize, tile: usize) -> Vec<Rect> {
    let axis = |n: usize| -> Vec<usize> {
        if n <= tile {
            return vec![0];
        }
        let step = tile * 3 / 4;
        let count = (n - tile).div_ceil(step) + 1;
        (0..count).map(|i| (n - tile) * i / (count - 1)).collect()
    };
    let mut out = Vec::new();
    for &y in &axis(h) {
        for &x in &axis(w) {
            out.push((x, y, tile.min(w), tile.min(h)));
        }
    }
    out
}

/// Runs a detector over a decoded frame (`w`x`h` as stored) scaled for it at `target_long`,
/// turned upright by `turn` clockwise quarter turns so it sees faces and plates the way a
/// viewer does, once per look. `scaler` makes the scaled RGB picture (its buffer is used in
/// place). Boxes come back in stored-frame pixels.
pub fn detect_frame(
    det: &mut Detector,
    f: &frame::Video,
    target_long: usize,
    turn: u32,
    looks: &[Look],
    scaler: &mut RgbScaler,
) -> Result<Vec<Detection>> {
    detect_frame_with(det, f, target_long, turn, scaler, |det, img| {
        detect_looks(det, img, looks)
    })
}

/// [`detect_frame`] with the looks decided by `run`, which gets the scaled, upright picture.
pub fn detect_frame_with(
    det: &mut Detector,
    f: &frame::Video,
    target_long: usize,
    turn: u32,
    scaler: &mut RgbScaler,
    run: impl FnOnce(&mut Detector, &Rgb) -> Result<Vec<Detection>>,
) -> Result<Vec<Detection>> {
    FrameView::new(det, f, target_long, turn, scaler)?.detect(det, run)
}

/// A decoded frame scaled for a detector and turned upright (see [`detect_frame`]), with
/// what maps boxes found on it back to the stored frame.
pub struct FrameView<'a> {
    buf: Cow<'a, [u8]>,
    stride: usize,
    /// The picture the detector sees.
    w: usize,
    h: usize,
    /// The upright frame.
    uw: usize,
    uh: usize,
    /// The stored frame.
    frame_w: usize,
    frame_h: usize,
    turn: u32,
}

impl<'a> FrameView<'a> {
    /// The view of `f` that `det` takes at `target_long`; its pixels may be `scaler`'s buffer.
    pub fn new(
        det: &Detector,
        f: &frame::Video,
        target_long: usize,
        turn: u32,
        scaler: &'a mut RgbScaler,
    ) -> Result<FrameView<'a>> {
        let (frame_w, frame_h) = (f.width() as usize, f.height() as usize);
        let turn = turn % 4;
        let swap = turn % 2 == 1;
        let (uw, uh) = if swap {
            (frame_h, frame_w)
        } else {
            (frame_w, frame_h)
        };
        let (w, h) = det.input_size(uw, uh, target_long);
        let (sw, sh) = if swap { (h, w) } else { (w, h) };
        let (buf, stride) = scaler.run(f, sw as u32, sh as u32)?;
        let (buf, stride) = if turn == 0 {
            (Cow::Borrowed(buf), stride)
        } else {
            (Cow::Owned(turn_quarters(buf, sw, sh, stride, turn)), w * 3)
        };
        Ok(FrameView {
            buf,
            stride,
            w,
            h,
            uw,
            uh,
            frame_w,
            frame_h,
            turn,
        })
    }

    /// The same view holding its own pixels (the scaler is free for another picture).
    pub fn into_owned(self) -> FrameView<'static> {
        FrameView {
            buf: Cow::Owned(self.buf.into_owned()),
            ..self
        }
    }

    /// Runs `run` on the view; boxes come back in stored-frame pixels.
    pub fn detect(
        &self,
        det: &mut Detector,
        run: impl FnOnce(&mut Detector, &Rgb) -> Result<Vec<Detection>>,
    ) -> Result<Vec<Detection>> {
        let img = Rgb::new(self.w, self.h, self.stride, &self.buf)?;
        let sx = self.uw as f32 / self.w as f32;
        let sy = self.uh as f32 / self.h as f32;
        let (uw, uh) = (self.uw as f32, self.uh as f32);
        let (fw, fh) = (self.frame_w as f32, self.frame_h as f32);
        Ok(run(det, &img)?
            .into_iter()
            .map(|mut d| {
                let upright = d.bbox.map(sx, sy, 0.0, 0.0).clip(uw, uh);
                d.bbox = unturn_box(&upright, self.turn, fw, fh);
                d
            })
            .filter(|d| d.bbox.is_valid())
            .collect())
    }
}

/// Runs a detector over an RGB picture resized for it at `target_long` (image crate,
/// bilinear), once per look; boxes come back in `src` pixels.
pub fn detect_rgb(
    det: &mut Detector,
    src: &Rgb,
    target_long: usize,
    looks: &[Look],
) -> Result<Vec<Detection>> {
    detect_rgb_with(det, src, target_long, |det, img| {
        detect_looks(det, img, looks)
    })
}

/// [`detect_rgb`] with the looks decided by `run`, which gets the resized picture.
pub fn detect_rgb_with(
    det: &mut Detector,
    src: &Rgb,
    target_long: usize,
    run: impl FnOnce(&mut Detector, &Rgb) -> Result<Vec<Detection>>,
) -> Result<Vec<Detection>> {
    let (dw, dh) = det.input_size(src.width, src.height, target_long);
    let resized = resize_rgb(src, dw, dh)?;
    let img = Rgb::new(dw, dh, dw * 3, &resized)?;
    let sx = src.width as f32 / dw as f32;
    let sy = src.height as f32 / dh as f32;
    Ok(run(det, &img)?
        .into_iter()
        .map(|mut d| {
            d.bbox = d.bbox.map(sx, sy, 0.0, 0.0);
            d
        })
        .collect())
}

/// `src` resized to `dw`x`dh`, packed RGB: the image crate's `resize` with
/// `FilterType::Triangle` (bilinear, widened when shrinking), the same arithmetic in the same
/// order, so the same bytes (a test compares them), but row by row. The crate walks its float
/// image down columns for the horizontal pass and reads a pixel at a time through a generic
/// view, which was 4% of the CPU on a moving 1080p clip (a 1080x1080 piece per look).
fn resize_rgb(src: &Rgb, dw: usize, dh: usize) -> Result<Vec<u8>> {
    let (sw, sh) = (src.width, src.height);
    if dw == 0 || dh == 0 {
        return Err(VeilError::Internal(format!("resize to {dw}x{dh}")));
    }
    if (dw, dh) == (sw, sh) {
        let mut packed = Vec::with_capacity(sw * sh * 3);
        for y in 0..sh {
            packed.extend_from_slice(src.row(y));
        }
        return Ok(packed);
    }
    // Vertical pass into floats, a row of output at a time.
    let mut tmp = vec![0f32; sw * dh * 3];
    for (oy, taps) in triangle_taps(sh, dh).into_iter().enumerate() {
        let row = &mut tmp[oy * sw * 3..(oy + 1) * sw * 3];
        for (i, &w) in taps.1.iter().enumerate() {
            for (t, &v) in row.iter_mut().zip(src.row(taps.0 + i)) {
                *t += v as f32 * w;
            }
        }
    }
    // Horizontal pass, rounded to bytes.
    let cols = triangle_taps(sw, dw);
    let mut out = vec![0u8; dw * dh * 3];
    for (trow, orow) in tmp.chunks_exact(sw * 3).zip(out.chunks_exact_mut(dw * 3)) {
        for ((left, ws), o) in cols.iter().zip(orow.chunks_exact_mut(3)) {
            let mut t = [0f32; 3];
            for (i, &w) in ws.iter().enumerate() {
                let p = &trow[(left + i) * 3..(left + i) * 3 + 3];
                t[0] += p[0] * w;
                t[1] += p[1] * w;
                t[2] += p[2] * w;
            }
            for c in 0..3 {
                o[c] = t[c].clamp(0.0, 255.0).round() as u8;
            }
        }
    }
    Ok(out)
}

/// For each of `dst` output samples along an axis of `src` input samples: the first input
/// sample it reads and the normalised triangle weights of the inputs from there, as the image
/// crate computes them (`imageops::sample`, `Filter` of support 1 scaled by the shrink ratio).
fn triangle_taps(src: usize, dst: usize) -> Vec<(usize, Vec<f32>)> {
    let ratio = src as f32 / dst as f32;
    let sratio = if ratio < 1.0 { 1.0 } else { ratio };
    let support = sratio;
    (0..dst)
        .map(|o| {
            let centre = (o as f32 + 0.5) * ratio;
            let left = ((centre - support).floor() as i64).clamp(0, src as i64 - 1);
            let right = ((centre + support).ceil() as i64).clamp(left + 1, src as i64);
            let centre = centre - 0.5;
            let mut ws: Vec<f32> = (left..right)
                .map(|i| {
                    let x = (i as f32 - centre) / sratio;
                    if x.abs() < 1.0 {
                        1.0 - x.abs()
                    } else {
                        0.0
                    }
                })
                .collect();
            let sum = ws.iter().fold(0.0f32, |a, w| a + w);
            for w in &mut ws {
                *w /= sum;
            }
            (left as usize, ws)
        })
        .collect()
}

/// Plate candidates: boxes the plate model scores at least this (and under the threshold)
/// are looked at again turned by the plate angles.
pub const PLATE_CANDIDATE: f32 = 0.05;

/// The plate model on one picture: upright, and turned by `angles` when `all_turns` is set or
/// the upright look found a candidate (a plate-like box scoring [`PLATE_CANDIDATE`] or more but
/// under `thresh`): a plate tilted by a rolling camera scores low upright. Returns the boxes
/// scoring `thresh` or more (first), and the candidates (their scores are under `thresh`).
pub fn plate_looks(
    det: &mut Detector,
    img: &Rgb,
    thresh: f32,
    angles: &[f32],
    all_turns: bool,
) -> Result<(Vec<Detection>, Vec<Detection>)> {
    let low = PLATE_CANDIDATE.min(thresh);
    let (mut found, candidates): (Vec<Detection>, Vec<Detection>) = det
        .detect(img, low)?
        .into_iter()
        .partition(|d| d.score >= thresh);
    if !angles.is_empty() && (all_turns || !candidates.is_empty()) {
        let looks: Vec<Look> = Look::turned(thresh, angles).collect();
        let boxes: Vec<BBox> = candidates.iter().map(|c| c.bbox).collect();
        let regions = regions_around(&boxes, TURN_REACH, TURN_MIN_PX, img.width, img.height);
        let area: f32 = regions.iter().map(|r| r.width() * r.height()).sum();
        let whole = (img.width * img.height) as f32;
        if all_turns || !det.is_dynamic() || area > 0.5 * whole {
            found.extend(detect_looks(det, img, &looks)?);
        } else {
            // A dynamic model costs what it sees: only the candidates are looked at turned.
            for r in regions {
                let scale =
                    (TURN_PLATE_PX / r.width().max(r.height()) * TURN_REACH).clamp(1.0, 2.0);
                found.extend(detect_in_region(det, img, &r, scale, |det, v| {
                    detect_looks(det, v, &looks)
                })?);
            }
        }
    }
    Ok((found, candidates))
}

/// A turned look around a plate candidate covers a square of this many times its long side...
const TURN_REACH: f32 = 3.0;
/// ... and at least this many pixels of the picture it was found in,
const TURN_MIN_PX: f32 = 96.0;
/// scaled up (at most twice) so the candidate is about this long.
const TURN_PLATE_PX: f32 = 64.0;

/// Squares around `boxes` in a `w`x`h` picture: `reach` times each box's long side (at least
/// `min` pixels), moved inside the picture where they fit, else clipped. A box inside a square
/// already taken adds none.
pub fn regions_around(boxes: &[BBox], reach: f32, min: f32, w: usize, h: usize) -> Vec<BBox> {
    let (fw, fh) = (w as f32, h as f32);
    let mut out: Vec<BBox> = Vec::new();
    for b in boxes {
        if out
            .iter()
            .any(|r| r.x1 <= b.x1 && r.y1 <= b.y1 && r.x2 >= b.x2 && r.y2 >= b.y2)
        {
            continue;
        }
        let side = (b.width().max(b.height()) * reach).max(min);
        let sq = square_around(b, side, fw, fh);
        out.push(BBox::new(
            sq.x1.floor(),
            sq.y1.floor(),
            sq.x2.ceil().min(fw),
            sq.y2.ceil().min(fh),
        ));
    }
    out
}

/// Runs `run` on region `r` of `img` resized by `scale` (kept within the model's 640 pixels);
/// boxes come back in `img` pixels.
pub fn detect_in_region(
    det: &mut Detector,
    img: &Rgb,
    r: &BBox,
    scale: f32,
    run: impl FnOnce(&mut Detector, &Rgb) -> Result<Vec<Detection>>,
) -> Result<Vec<Detection>> {
    let (x, y) = (r.x1.max(0.0) as usize, r.y1.max(0.0) as usize);
    let (w, h) = (r.width().round() as usize, r.height().round() as usize);
    if w < 2 || h < 2 || x >= img.width || y >= img.height {
        return Ok(Vec::new());
    }
    let view = img.crop(x, y, w, h);
    let scale = scale.min(640.0 / view.width.max(view.height) as f32);
    let (dw, dh) = (
        ((view.width as f32 * scale).round() as usize).max(1),
        ((view.height as f32 * scale).round() as usize).max(1),
    );
    let resized = resize_rgb(&view, dw, dh)?;
    let small = Rgb::new(dw, dh, dw * 3, &resized)?;
    let (sx, sy) = (
        view.width as f32 / dw as f32,
        view.height as f32 / dh as f32,
    );
    Ok(run(det, &small)?
        .into_iter()
        .map(|mut d| {
            d.bbox = d.bbox.map(sx, sy, x as f32, y as f32);
            d
        })
        .collect())
}

/// A square of `side` pixels centred on `b`, moved inside a `w`x`h` picture where it fits,
/// else clipped to it.
fn square_around(b: &BBox, side: f32, w: f32, h: f32) -> BBox {
    let (cx, cy) = b.center();
    let place = |c: f32, n: f32| {
        let s = side.min(n);
        let a = (c - s / 2.0).clamp(0.0, n - s);
        (a, a + s)
    };
    let (x1, x2) = place(cx, w);
    let (y1, y2) = place(cy, h);
    BBox::new(x1, y1, x2, y2)
}

/// The region a face crop looks at around a box, as a multiple of the box's long side.
pub const CROP_REACH: f32 = 2.5;
/// The long side a tracked face is scaled to in its crop (CenterFace finds faces of 16 to a
/// few hundred pixels; small ones are scaled up, at most twice).
const CROP_FACE_PX: f32 = 64.0;

/// Runs a face detector on the region around `b` (frame pixels) of a decoded frame: a square
/// of [`CROP_REACH`] times the box's long side, scaled so the box is about 64 pixels long,
/// turned upright by `turn` quarter turns. Boxes come back in stored-frame pixels.
pub fn detect_around(
    det: &mut Detector,
    f: &frame::Video,
    b: &BBox,
    turn: u32,
    thresh: f32,
) -> Result<Vec<Detection>> {
    let (fw, fh) = (f.width() as f32, f.height() as f32);
    let long = b.width().max(b.height()).max(8.0);
    let side = (long * CROP_REACH).max(32.0);
    let sq = square_around(b, side, fw, fh);
    let (x0, x1, y0, y1) = (sq.x1, sq.x2, sq.y1, sq.y2);
    let scale = (CROP_FACE_PX / long).clamp(0.25, 2.0);
    let ow = (((x1 - x0) * scale).round() as usize).max(32);
    let oh = (((y1 - y0) * scale).round() as usize).max(32);
    let rgb = crate::decode::crop_rgb(f, (x0, y0, x1, y1), ow, oh);
    let turn = turn % 4;
    let (buf, uw, uh) = if turn == 0 {
        (rgb, ow, oh)
    } else {
        let t = turn_quarters(&rgb, ow, oh, ow * 3, turn);
        if turn % 2 == 1 {
            (t, oh, ow)
        } else {
            (t, ow, oh)
        }
    };
    let img = Rgb::new(uw, uh, uw * 3, &buf)?;
    let (kx, ky) = ((x1 - x0) / ow as f32, (y1 - y0) / oh as f32);
    Ok(det
        .detect(&img, thresh)?
        .into_iter()
        .map(|mut d| {
            let stored = unturn_box(&d.bbox, turn, ow as f32, oh as f32);
            d.bbox = stored.map(kx, ky, x0, y0).clip(fw, fh);
            d
        })
        .filter(|d| d.bbox.is_valid())
        .collect())
}

/// Whether a picture whose long side is `long` gets the tiled plate pass with tiles of `tile`
/// pixels (0: never).
pub fn needs_tiles(long: usize, tile: usize) -> bool {
    tile > 0 && 2 * long > 3 * tile
}

/// The parts of a large `w`x`h` frame the plate model looks at, each at the tiles' scale (a
/// `tile`-pixel square seen at 640), and whether they are [`plate_pieces`] (every sample looks
/// at all of them) rather than [`tile_grid`]'s tiles (a few a sample). Pieces need a model
/// that takes any input size.
pub fn plate_grid(w: usize, h: usize, tile: usize, dynamic: bool) -> (Vec<Rect>, bool) {
    match plate_pieces(w, h, tile).filter(|_| dynamic) {
        Some(pieces) => (pieces, true),
        None => (tile_grid(w, h, tile), false),
    }
}

/// A rectangle of a picture: `(x, y, w, h)`.
pub type Rect = (usize, usize, usize, usize);

/// At most two overlapping pieces, of at most 1.5 tiles a side, that hold the whole frame
/// (`None` where more are needed). A 1920x1080 frame is two 1080x1080 pieces, each a
/// 720x720 look: 1.04 million pixels for the whole frame at the tiles' scale, where three
/// 640x640 tiles (1.23 million) saw half of it.
pub fn plate_pieces(w: usize, h: usize, tile: usize) -> Option<Vec<Rect>> {
    let max = tile * 3 / 2;
    let overlap = tile / 4;
    let axis = |n: usize| -> Vec<(usize, usize)> {
        if n <= max {
            return vec![(0, n)];
        }
        let len = (n + overlap).div_ceil(2);
        vec![(0, len), (n - len, len)]
    };
    let (xs, ys) = (axis(w), axis(h));
    if tile == 0 || xs.len() * ys.len() > 2 || xs.iter().chain(&ys).any(|a| a.1 > max) {
        return None;
    }
    Some(
        ys.iter()
            .flat_map(|&(y, ph)| xs.iter().map(move |&(x, pw)| (x, y, pw, ph)))
            .collect(),
    )
}

/// Adds the plates found on the parts `which` of `grid` of `full` (each at the tiles' scale,
/// see [`tile_plates`]) to `found`, then merges everything into one box per plate across the
/// whole picture, the parts and the turned views.
pub fn add_tile_plates(
    det: &mut Detector,
    full: &Rgb,
    (grid, tile): (&[Rect], usize),
    which: impl Fn(usize) -> bool,
    looks: (f32, &[f32], bool),
    mut found: Vec<Detection>,
) -> Result<Vec<Detection>> {
    for (i, &rect) in grid.iter().enumerate() {
        if which(i) {
            found.extend(tile_plates(det, full, rect, tile, looks)?);
        }
    }
    Ok(nms(found, YOLO_NMS_IOU))
}

/// The plate model on one part `(x, y, w, h)` of `full`, at the scale that shows a
/// `tile`-pixel square at 640 (see [`plate_looks`]); boxes in `full` pixels.
pub fn tile_plates(
    det: &mut Detector,
    full: &Rgb,
    (x, y, tw, th): Rect,
    tile: usize,
    (thresh, angles, all_turns): (f32, &[f32], bool),
) -> Result<Vec<Detection>> {
    let view = full.crop(x, y, tw, th);
    let target = tw.max(th) * 640 / tile.max(1);
    let plates = detect_rgb_with(det, &view, target, |det, img| {
        plate_looks(det, img, thresh, angles, all_turns).map(|p| p.0)
    })?;
    Ok(plates
        .into_iter()
        .map(|mut d| {
            d.bbox = d.bbox.map(1.0, 1.0, x as f32, y as f32);
            d
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resizing_gives_the_image_crates_bytes() {
        // A noisy picture with a stride wider than its rows, cropped off-centre.
        let (w, h, stride) = (203, 117, 203 * 3 + 5);
        let data = crate::util::noise_bytes(7, stride * h);
        let full = Rgb::new(w, h, stride, &data).unwrap();
        for (src, (dw, dh)) in [
            (full, (135, 78)),
            (full, (64, 64)),
            (full, (400, 230)),
            (full.crop(17, 9, 150, 100), (100, 67)),
            (full.crop(17, 9, 150, 100), (150, 100)),
            (full.crop(0, 0, 1, 5), (3, 2)),
        ] {
            let mut packed = Vec::new();
            for y in 0..src.height {
                packed.extend_from_slice(src.row(y));
            }
            let img =
                image::RgbImage::from_raw(src.width as u32, src.height as u32, packed).unwrap();
            let want = image::imageops::resize(
                &img,
                dw as u32,
                dh as u32,
                image::imageops::FilterType::Triangle,
            );
            let got = resize_rgb(&src, dw, dh).unwrap();
            assert!(
                got == want.as_raw()[..],
                "{}x{} -> {dw}x{dh}",
                src.width,
                src.height
            );
        }
    }

    #[test]
    fn regions_around_candidates_stay_inside_and_are_not_repeated() {
        let a = BBox::new(100.0, 100.0, 140.0, 120.0);
        // Inside a's square (120 px around its centre): no second region.
        let b = BBox::new(110.0, 105.0, 130.0, 115.0);
        // Near the corner: its square is moved inside the picture, not cut.
        let c = BBox::new(620.0, 460.0, 640.0, 470.0);
        let r = regions_around(&[a, b, c], 3.0, 96.0, 640, 480);
        assert_eq!(r.len(), 2, "{r:?}");
        assert_eq!(r[0], BBox::new(60.0, 50.0, 180.0, 170.0));
        assert_eq!(r[1], BBox::new(544.0, 384.0, 640.0, 480.0));
        // A region never exceeds the picture, however large the box.
        let big = BBox::new(0.0, 0.0, 300.0, 200.0);
        assert_eq!(
            regions_around(&[big], 3.0, 96.0, 320, 240),
            vec![BBox::new(0.0, 0.0, 320.0, 240.0)]
        );
    }

    #[test]
    fn pieces_hold_the_frame_in_two_parts_or_none() {
        // 1080p: two 1080x1080 pieces overlapping by 240 px, each seen at 720 (960 -> 640).
        assert_eq!(
            plate_pieces(1920, 1080, 960),
            Some(vec![(0, 0, 1080, 1080), (840, 0, 1080, 1080)])
        );
        assert_eq!(
            plate_pieces(1080, 1920, 960),
            Some(vec![(0, 0, 1080, 1080), (0, 840, 1080, 1080)])
        );
        // Both sides too long for one piece, or one side too long for two: tiles.
        assert_eq!(plate_pieces(2560, 1920, 960), None);
        assert_eq!(plate_pieces(3840, 2160, 1280), None);
        assert_eq!(plate_pieces(2700, 1000, 960), None);
        assert_eq!(plate_pieces(1920, 1080, 0), None);
        // Pieces need a model that takes any size; a fixed one keeps the tiles.
        assert!(plate_grid(1920, 1080, 960, true).1);
        assert_eq!(
            plate_grid(1920, 1080, 960, false),
            (tile_grid(1920, 1080, 960), false)
        );
        assert_eq!(plate_grid(2560, 1920, 960, true).0.len(), 12);
        for (w, h) in [
            (1920usize, 1080usize),
            (1500, 1000),
            (2640, 1400),
            (1000, 2000),
        ] {
            let p = plate_pieces(w, h, 960).unwrap();
            let mut covered = vec![0u8; w * h];
            for &(x, y, pw, ph) in &p {
                assert!(
                    pw <= 1440 && ph <= 1440 && x + pw <= w && y + ph <= h,
                    "{w}x{h}: {p:?}"
                );
                for yy in y..y + ph {
                    for c in &mut covered[yy * w + x..yy * w + x + pw] {
                        *c += 1;
                    }
                }
            }
            assert!(covered.iter().all(|&c| c > 0), "{w}x{h}: {p:?}");
            // Two pieces overlap by at least a quarter tile.
            if let [a, b] = p[..] {
                let ov = if a.1 == b.1 {
                    a.0 + a.2 - b.0
                } else {
                    a.1 + a.3 - b.1
                };
                assert!(ov >= 240, "{w}x{h}: {p:?}");
            }
        }
    }

    #[test]
    fn tiles_cover_the_frame_with_overlap() {
        for (w, h, t) in [
            (2560usize, 1920usize, 960usize),
            (1920, 1080, 960),
            (3840, 2160, 1280),
            (800, 600, 960),
        ] {
            let g = tile_grid(w, h, t);
            let mut covered = vec![false; w * h];
            for &(x, y, tw, th) in &g {
                assert!(x + tw <= w && y + th <= h);
                for yy in y..y + th {
                    for xx in x..x + tw {
                        covered[yy * w + xx] = true;
                    }
                }
            }
            assert!(covered.iter().all(|&c| c), "{w}x{h} tile {t}");
        }
        assert_eq!(tile_grid(800, 600, 960), vec![(0, 0, 800, 600)]);
        // 4 columns x 3 rows keep neighbours overlapping by at least a quarter tile.
        assert_eq!(tile_grid(2560, 1920, 960).len(), 12);
        assert_eq!(tile_grid(1920, 1080, 960).len(), 6);
    }

    #[test]
    fn quarter_turns_round_trip_pixels_and_boxes() {
        let (w, h) = (7usize, 5usize);
        for turn in 0..4u32 {
            for (x, y) in [(0usize, 0usize), (6, 0), (2, 3), (6, 4)] {
                let mut img = vec![0u8; w * h * 3];
                img[(y * w + x) * 3] = 255;
                let rot = turn_quarters(&img, w, h, w * 3, turn);
                let nw = if turn % 2 == 1 { h } else { w };
                let p = rot.iter().step_by(3).position(|&v| v == 255).unwrap();
                let (u, v) = (p % nw, p / nw);
                let b = BBox::new(u as f32, v as f32, u as f32 + 1.0, v as f32 + 1.0);
                let back = unturn_box(&b, turn, w as f32, h as f32);
                assert_eq!(
                    back,
                    BBox::new(x as f32, y as f32, x as f32 + 1.0, y as f32 + 1.0),
                    "turn {turn} at ({x},{y})"
                );
            }
        }
        // FFmpeg reports an upright phone recording as -90 (stored 270): one clockwise turn.
        assert_eq!(upright_turns(270), 1);
        assert_eq!(upright_turns(-90), 1);
        assert_eq!(upright_turns(90), 3);
        assert_eq!(upright_turns(180), 2);
        assert_eq!(upright_turns(0), 0);
    }

    #[test]
    fn tiles_only_where_the_picture_is_large() {
        assert!(!needs_tiles(1280, 960));
        assert!(needs_tiles(1920, 960));
        assert!(!needs_tiles(4000, 0));
    }
}
