//! Redaction kernels. They work on 8-bit planes (the Y, U and V planes of a video frame, or a
//! packed RGB image), so video is redacted without a round trip through RGB.

use serde::{Deserialize, Serialize};

use ffmpeg_next as ffmpeg;

use crate::detect::{BBox, Class};
use crate::error::{InvalidSetting, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Style {
    /// Gaussian-like blur (three box passes) whose strength grows with the box.
    Blur,
    /// Pixelation into coarse cells.
    Mosaic,
    /// Solid black fill.
    Solid,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Shape {
    Ellipse,
    Box,
}

/// How to redact.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RedactConfig {
    pub style: Style,
    /// Shape for faces; plates are always redacted as boxes.
    pub face_shape: Shape,
    /// Each box is grown by this factor about its centre before redaction.
    pub mask_scale: f32,
}

impl Default for RedactConfig {
    fn default() -> Self {
        RedactConfig {
            style: Style::Blur,
            face_shape: Shape::Ellipse,
            mask_scale: 1.3,
        }
    }
}

impl RedactConfig {
    pub fn validate(&self) -> Result<()> {
        if !(1.0..=4.0).contains(&self.mask_scale) {
            return Err(InvalidSetting::out_of_range(
                "--mask-scale",
                self.mask_scale,
                "between 1.0 and 4.0",
            )
            .into());
        }
        Ok(())
    }

    /// The region actually redacted for a detected box (frame pixels, clipped).
    pub fn region(&self, class: Class, b: &BBox, w: f32, h: f32) -> (BBox, Shape) {
        let shape = match class {
            Class::Face => self.face_shape,
            Class::Plate | Class::Manual => Shape::Box,
        };
        // Plates are thin: grow them a little more in height so a tilt stays covered.
        let r = match class {
            Class::Face => b.scaled(self.mask_scale),
            Class::Plate => {
                let s = b.scaled(self.mask_scale);
                let extra = (s.height() * 0.15).max(2.0);
                BBox::new(s.x1 - extra, s.y1 - extra, s.x2 + extra, s.y2 + extra)
            }
            Class::Manual => *b,
        };
        // A face cut by the frame's edge shows only part of itself, and an ellipse fitted to
        // the visible part leaves its corners, at the edge, uncovered: a sliver of a face
        // entering or leaving (an ear, a cheek) would stay visible. It is redacted as a box;
        // so is one whose region comes within a tenth of its size of the edge, where the
        // face may reach past a box that lags it (held or followed through a zoom or a pan).
        let (mx, my) = (EDGE_NEAR * r.width(), EDGE_NEAR * r.height());
        let cut = r.x1 < mx || r.y1 < my || r.x2 > w - mx || r.y2 > h - my;
        let shape = if cut { Shape::Box } else { shape };
        (r.clip(w, h), shape)
    }
}

/// A face region this share of its size or nearer the frame's edge is redacted as a box (see
/// [`RedactConfig::region`]).
const EDGE_NEAR: f32 = 0.1;

/// A mutable 8-bit image plane with `channels` interleaved samples per pixel.
pub struct Plane<'a> {
    pub data: &'a mut [u8],
    pub stride: usize,
    pub width: usize,
    pub height: usize,
    pub channels: usize,
}

/// Integer pixel rectangle, half-open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rect {
    x0: usize,
    y0: usize,
    x1: usize,
    y1: usize,
}

/// Redacts `region` (in this plane's pixels) of `plane`. `fill` is the solid-fill value per
/// channel. Blur radius and mosaic cell grow with the region, so large faces are blurred as
/// hard as small ones.
pub fn redact_plane(
    plane: &mut Plane,
    region: &BBox,
    shape: Shape,
    style: Style,
    fill: &[u8],
    scratch: &mut Vec<u8>,
) {
    let Some(r) = to_rect(region, plane.width, plane.height) else {
        return;
    };
    let (rw, rh) = (r.x1 - r.x0, r.y1 - r.y0);
    let ch = plane.channels;
    // Work on a copy of the rectangle, then write back the pixels inside the shape.
    scratch.clear();
    scratch.reserve(rw * rh * ch);
    for y in r.y0..r.y1 {
        let o = y * plane.stride + r.x0 * ch;
        scratch.extend_from_slice(&plane.data[o..o + rw * ch]);
    }
    let size = rw.max(rh) as f32;
    match style {
        Style::Blur => {
            // Three box passes of radius r approximate a Gaussian of sigma ~ r.
            let radius = ((size / 5.0).round() as usize).max(2);
            match ch {
                1 => blur3::<1>(scratch, rw, rh, radius),
                3 => blur3::<3>(scratch, rw, rh, radius),
                _ => panic!("redaction works on 1 or 3 channels, not {ch}"),
            }
        }
        Style::Mosaic => {
            let cell = ((size / 6.0).round() as usize).max(3);
            mosaic(scratch, rw, rh, ch, cell);
        }
        Style::Solid => {
            for px in scratch.chunks_exact_mut(ch) {
                px.copy_from_slice(&fill[..ch]);
            }
        }
    }
    let (cx, cy) = ((region.x1 + region.x2) * 0.5, (region.y1 + region.y2) * 0.5);
    let (ax, ay) = (region.width() * 0.5, region.height() * 0.5);
    for y in r.y0..r.y1 {
        let src = &scratch[(y - r.y0) * rw * ch..(y - r.y0 + 1) * rw * ch];
        let o = y * plane.stride;
        match shape {
            Shape::Box => {
                plane.data[o + r.x0 * ch..o + r.x1 * ch].copy_from_slice(src);
            }
            Shape::Ellipse => {
                let dy = (y as f32 + 0.5 - cy) / ay.max(0.5);
                let k = 1.0 - dy * dy;
                if k < 0.0 {
                    continue;
                }
                let half = ax * k.sqrt();
                let xa = ((cx - half - 0.5).ceil().max(r.x0 as f32)) as usize;
                let xb = ((cx + half - 0.5).floor() + 1.0).min(r.x1 as f32).max(0.0) as usize;
                if xb > xa {
                    plane.data[o + xa * ch..o + xb * ch]
                        .copy_from_slice(&src[(xa - r.x0) * ch..(xb - r.x0) * ch]);
                }
            }
        }
    }
}

/// Redacts `boxes` (class, box in frame pixels) in a planar YUV frame in place, each plane at
/// its own resolution. The frame must be writable (`decode::make_writable`).
pub fn redact_frame(
    f: &mut ffmpeg::frame::Video,
    boxes: &[(Class, BBox)],
    cfg: &RedactConfig,
    scratch: &mut Vec<u8>,
) {
    let fmt = f.format();
    let (w, h) = (f.width() as usize, f.height() as usize);
    let (sx, sy) = crate::decode::chroma_shift(fmt);
    let full_range = matches!(
        fmt,
        ffmpeg::format::Pixel::YUVJ420P | ffmpeg::format::Pixel::YUVJ444P
    );
    let regions: Vec<(BBox, Shape)> = boxes
        .iter()
        .map(|(class, b)| cfg.region(*class, b, w as f32, h as f32))
        .collect();
    for (i, &(region, shape)) in regions.iter().enumerate() {
        // A region inside another one's shape (a partial detection inside a face) would be
        // blurred twice for nothing.
        let covered = regions.iter().enumerate().any(|(j, other)| {
            j != i && covers(other, &region) && (!covers(&(region, shape), &other.0) || j < i)
        });
        if covered {
            continue;
        }
        for plane_i in 0..3 {
            let (shift_x, shift_y) = if plane_i == 0 { (0, 0) } else { (sx, sy) };
            let (div_x, div_y) = ((1 << shift_x) as f32, (1 << shift_y) as f32);
            let fill = match (plane_i, full_range) {
                (0, true) => 0,
                (0, false) => 16,
                _ => 128,
            };
            let stride = f.stride(plane_i);
            let mut plane = Plane {
                data: f.data_mut(plane_i),
                stride,
                width: w.div_ceil(1 << shift_x),
                height: h.div_ceil(1 << shift_y),
                channels: 1,
            };
            let r = BBox::new(
                region.x1 / div_x,
                region.y1 / div_y,
                region.x2 / div_x,
                region.y2 / div_y,
            );
            redact_plane(&mut plane, &r, shape, cfg.style, &[fill], scratch);
        }
    }
}

/// Whether the pixels a region of shape `a` redacts include every pixel of `b`.
fn covers(a: &(BBox, Shape), b: &BBox) -> bool {
    let (r, shape) = a;
    match shape {
        Shape::Box => b.x1 >= r.x1 && b.y1 >= r.y1 && b.x2 <= r.x2 && b.y2 <= r.y2,
        Shape::Ellipse => {
            let (cx, cy) = ((r.x1 + r.x2) * 0.5, (r.y1 + r.y2) * 0.5);
            let (ax, ay) = ((r.width() * 0.5).max(0.5), (r.height() * 0.5).max(0.5));
            [(b.x1, b.y1), (b.x2, b.y1), (b.x1, b.y2), (b.x2, b.y2)]
                .iter()
                .all(|(x, y)| ((x - cx) / ax).powi(2) + ((y - cy) / ay).powi(2) <= 1.0)
        }
    }
}

fn to_rect(b: &BBox, w: usize, h: usize) -> Option<Rect> {
    if !b.is_valid() {
        return None;
    }
    let x0 = b.x1.floor().max(0.0) as usize;
    let y0 = b.y1.floor().max(0.0) as usize;
    let x1 = (b.x2.ceil().max(0.0) as usize).min(w);
    let y1 = (b.y2.ceil().max(0.0) as usize).min(h);
    (x1 > x0 && y1 > y0).then_some(Rect { x0, y0, x1, y1 })
}

/// Gaussian-like blur of radius `radius`: three box passes each way. Large radii are run on an
/// area-averaged copy (at most ~8 px radius there) and scaled back up bilinearly, which gives
/// the same smooth result at a fraction of the cost.
/// `CH` interleaved channels (a constant, so the per-pixel loops unroll).
fn blur3<const CH: usize>(buf: &mut [u8], w: usize, h: usize, radius: usize) {
    let s = (radius / 6).max(1);
    if s == 1 {
        blur3_direct::<CH>(buf, w, h, radius);
        return;
    }
    let (sw, sh) = (w.div_ceil(s), h.div_ceil(s));
    let mut small = vec![0u8; sw * sh * CH];
    let mut acc = vec![0u32; sw * CH];
    for sy in 0..sh {
        let (y0, y1) = (sy * s, ((sy + 1) * s).min(h));
        acc.iter_mut().for_each(|a| *a = 0);
        for y in y0..y1 {
            let row = &buf[y * w * CH..(y + 1) * w * CH];
            // Cell by cell (a division per pixel cost more than the sums).
            for (sx, cell) in row.chunks(s * CH).enumerate() {
                for px in cell.chunks_exact(CH) {
                    for c in 0..CH {
                        acc[sx * CH + c] += px[c] as u32;
                    }
                }
            }
        }
        for sx in 0..sw {
            let n = ((y1 - y0) * (((sx + 1) * s).min(w) - sx * s)) as u32;
            for c in 0..CH {
                small[(sy * sw + sx) * CH + c] = ((acc[sx * CH + c] + n / 2) / n) as u8;
            }
        }
    }
    blur3_direct::<CH>(&mut small, sw, sh, (radius / s).max(1));
    // Bilinear upscale, sample centres aligned; weights in 1/256 steps.
    let coords = |n: usize, sn: usize| -> Vec<(usize, usize, u32)> {
        (0..n)
            .map(|i| {
                let f = ((i as f32 + 0.5) / s as f32 - 0.5).clamp(0.0, (sn - 1) as f32);
                let i0 = f as usize;
                (i0, (i0 + 1).min(sn - 1), ((f - i0 as f32) * 256.0) as u32)
            })
            .collect()
    };
    let xs = coords(w, sw);
    let ys = coords(h, sh);
    let mut top = vec![0u32; sw * CH];
    for (y, &(y0, y1, ty)) in ys.iter().enumerate() {
        // Blend the two source rows once, then interpolate along x.
        for i in 0..sw * CH {
            let a = small[y0 * sw * CH + i] as u32;
            let b = small[y1 * sw * CH + i] as u32;
            top[i] = a * (256 - ty) + b * ty;
        }
        let row = &mut buf[y * w * CH..(y + 1) * w * CH];
        for (x, &(x0, x1, tx)) in xs.iter().enumerate() {
            for c in 0..CH {
                let a = top[x0 * CH + c];
                let b = top[x1 * CH + c];
                row[x * CH + c] = ((a * (256 - tx) + b * tx + 32768) >> 16) as u8;
            }
        }
    }
}

/// Three horizontal then three vertical box passes, edges clamped.
fn blur3_direct<const CH: usize>(buf: &mut [u8], w: usize, h: usize, radius: usize) {
    let mut line: Vec<u8> = Vec::with_capacity(w);
    let mut out: Vec<u8> = vec![0; w];
    for y in 0..h {
        for c in 0..CH {
            line.clear();
            line.extend((0..w).map(|x| buf[(y * w + x) * CH + c]));
            for _ in 0..3 {
                box_line(&line, &mut out, radius);
                line.copy_from_slice(&out);
            }
            for x in 0..w {
                buf[(y * w + x) * CH + c] = line[x];
            }
        }
    }
    // The vertical passes run down every column of a row at once (the same sums as
    // `box_line` down each column, without gathering columns).
    let mut other = vec![0u8; buf.len()];
    box_columns(buf, &mut other, w * CH, h, radius);
    box_columns(&other, buf, w * CH, h, radius);
    other.copy_from_slice(buf);
    box_columns(&other, buf, w * CH, h, radius);
}

/// [`box_line`] down each of the `rw` columns of `src` (`h` rows), into `dst`.
fn box_columns(src: &[u8], dst: &mut [u8], rw: usize, h: usize, r: usize) {
    if h == 0 || rw == 0 {
        return;
    }
    let r = r.min(h.saturating_sub(1).max(1)) as isize;
    let k = (2 * r + 1) as u32;
    let row = |y: isize| -> &[u8] {
        let y = y.clamp(0, h as isize - 1) as usize;
        &src[y * rw..(y + 1) * rw]
    };
    let mut sum = vec![0u32; rw];
    for dy in -r..=r {
        for (s, &v) in sum.iter_mut().zip(row(dy)) {
            *s += v as u32;
        }
    }
    for y in 0..h as isize {
        let d = &mut dst[y as usize * rw..(y as usize + 1) * rw];
        for (o, &s) in d.iter_mut().zip(&sum) {
            *o = ((s + k / 2) / k) as u8;
        }
        let (add, sub) = (row(y + r + 1), row(y - r));
        for ((s, &a), &b) in sum.iter_mut().zip(add).zip(sub) {
            *s = *s + a as u32 - b as u32;
        }
    }
}

/// Running-sum box filter of radius `r` over one line, edges clamped.
fn box_line(src: &[u8], dst: &mut [u8], r: usize) {
    let n = src.len();
    if n == 0 {
        return;
    }
    let r = r.min(n.saturating_sub(1).max(1));
    let k = (2 * r + 1) as u32;
    let at = |i: isize| -> u32 { src[i.clamp(0, n as isize - 1) as usize] as u32 };
    let mut sum: u32 = (-(r as isize)..=r as isize).map(at).sum();
    for (i, d) in dst.iter_mut().enumerate() {
        *d = ((sum + k / 2) / k) as u8;
        let i = i as isize;
        sum = sum + at(i + r as isize + 1) - at(i - r as isize);
    }
}

fn mosaic(buf: &mut [u8], w: usize, h: usize, ch: usize, cell: usize) {
    for cy in (0..h).step_by(cell) {
        for cx in (0..w).step_by(cell) {
            let (ey, ex) = ((cy + cell).min(h), (cx + cell).min(w));
            let n = ((ey - cy) * (ex - cx)) as u32;
            for c in 0..ch {
                let mut s = 0u32;
                for y in cy..ey {
                    for x in cx..ex {
                        s += buf[(y * w + x) * ch + c] as u32;
                    }
                }
                let v = ((s + n / 2) / n) as u8;
                for y in cy..ey {
                    for x in cx..ex {
                        buf[(y * w + x) * ch + c] = v;
                    }
                }
            }
        }
    }
}

/// The regions to redact for `boxes`: the boxes of one track that mostly overlap (its
/// gap-filled box and where following found it) become their union, redacted once.
pub fn merge_overlaps(boxes: &[(u32, Class, BBox)]) -> Vec<(Class, BBox)> {
    let mut out: Vec<(u32, Class, BBox)> = Vec::with_capacity(boxes.len());
    for &(id, class, b) in boxes {
        match out
            .iter_mut()
            .find(|(oid, _, o)| *oid == id && o.intersection(&b) >= 0.5 * o.area().min(b.area()))
        {
            Some(o) => o.2 = o.2.union(&b),
            None => out.push((id, class, b)),
        }
    }
    out.into_iter().map(|(_, c, b)| (c, b)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_face_cut_by_the_frame_edge_is_redacted_as_a_box() {
        let cfg = RedactConfig::default();
        let face =
            |x1, y1, x2, y2| cfg.region(Class::Face, &BBox::new(x1, y1, x2, y2), 640.0, 360.0);
        // Inside the frame: an ellipse.
        let (r, shape) = face(100.0, 100.0, 160.0, 180.0);
        assert_eq!(shape, Shape::Ellipse);
        assert_eq!(r, BBox::new(100.0, 100.0, 160.0, 180.0).scaled(1.3));
        // A face leaving on the left, 20 px of it in view: the ellipse inscribed in the visible
        // part would leave its corners at the edge; the box covers them.
        let (r, shape) = face(-40.0, 100.0, 20.0, 180.0);
        assert_eq!(shape, Shape::Box);
        assert_eq!((r.x1, r.y1), (0.0, 88.0));
        // Also at the bottom edge.
        let (_, shape) = face(100.0, 300.0, 160.0, 355.0);
        assert_eq!(shape, Shape::Box);
        // A region within a tenth of its size of the edge (a box lagging a face that reaches
        // past it): a box; a little further in, an ellipse.
        let (r, shape) = face(10.0, 100.0, 65.0, 173.0);
        assert!(r.x1 >= 0.0 && r.x1 < 0.1 * r.width());
        assert_eq!(shape, Shape::Box);
        let (r, shape) = face(20.0, 100.0, 75.0, 173.0);
        assert!(r.x1 > 0.1 * r.width());
        assert_eq!(shape, Shape::Ellipse);
    }

    #[test]
    fn regions_inside_another_ones_shape_are_covered_by_it() {
        let big = (BBox::new(0.0, 0.0, 100.0, 100.0), Shape::Ellipse);
        assert!(covers(&big, &BBox::new(40.0, 40.0, 60.0, 60.0)));
        // Inside the box but in its corner, outside the ellipse: not covered.
        assert!(!covers(&big, &BBox::new(0.0, 0.0, 15.0, 15.0)));
        let boxed = (BBox::new(0.0, 0.0, 100.0, 100.0), Shape::Box);
        assert!(covers(&boxed, &BBox::new(0.0, 0.0, 15.0, 15.0)));
        assert!(!covers(&boxed, &BBox::new(90.0, 90.0, 110.0, 110.0)));
    }

    fn checker(w: usize, h: usize) -> Vec<u8> {
        (0..w * h)
            .map(|i| {
                if ((i % w) / 2 + (i / w) / 2) % 2 == 0 {
                    0
                } else {
                    255
                }
            })
            .collect()
    }

    fn detail(data: &[u8], w: usize, x0: usize, y0: usize, x1: usize, y1: usize) -> f64 {
        let mut s = 0.0;
        for y in y0..y1 {
            for x in x0..x1 - 1 {
                s += (data[y * w + x] as f64 - data[y * w + x + 1] as f64).abs();
            }
        }
        s / ((y1 - y0) * (x1 - x0)) as f64
    }

    fn run(style: Style, shape: Shape) -> Vec<u8> {
        let (w, h) = (100, 80);
        let mut data = checker(w, h);
        let mut plane = Plane {
            data: &mut data,
            stride: w,
            width: w,
            height: h,
            channels: 1,
        };
        let mut scratch = Vec::new();
        redact_plane(
            &mut plane,
            &BBox::new(20.0, 20.0, 60.0, 60.0),
            shape,
            style,
            &[16],
            &mut scratch,
        );
        data
    }

    #[test]
    fn each_style_destroys_detail_inside_and_keeps_outside() {
        let orig = checker(100, 80);
        for style in [Style::Blur, Style::Mosaic, Style::Solid] {
            for shape in [Shape::Box, Shape::Ellipse] {
                let out = run(style, shape);
                let inside = detail(&out, 100, 30, 30, 50, 50);
                assert!(
                    inside < 0.1 * detail(&orig, 100, 30, 30, 50, 50),
                    "{style:?} {shape:?}: {inside}"
                );
                // Untouched outside the region.
                for y in 0..80 {
                    for x in 0..100 {
                        if !(20..60).contains(&x) || !(20..60).contains(&y) {
                            assert_eq!(out[y * 100 + x], orig[y * 100 + x]);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn ellipse_leaves_corners() {
        let orig = checker(100, 80);
        let out = run(Style::Solid, Shape::Ellipse);
        assert_eq!(out[20 * 100 + 20], orig[20 * 100 + 20]);
        assert_eq!(out[40 * 100 + 40], 16);
    }

    #[test]
    fn column_passes_equal_box_line_down_each_column() {
        let (w, h) = (7usize, 11usize);
        for ch in [1usize, 3] {
            let src: Vec<u8> = (0..w * h * ch)
                .map(|i| ((i * 97 + 13) % 251) as u8)
                .collect();
            for r in [1usize, 2, 5, 20] {
                let mut got = vec![0u8; src.len()];
                box_columns(&src, &mut got, w * ch, h, r);
                for col in 0..w * ch {
                    let line: Vec<u8> = (0..h).map(|y| src[y * w * ch + col]).collect();
                    let mut want = vec![0u8; h];
                    box_line(&line, &mut want, r);
                    let have: Vec<u8> = (0..h).map(|y| got[y * w * ch + col]).collect();
                    assert_eq!(have, want, "ch {ch} r {r} column {col}");
                }
            }
        }
    }

    #[test]
    fn box_line_is_mean() {
        let src = [0u8, 0, 90, 0, 0];
        let mut dst = [0u8; 5];
        box_line(&src, &mut dst, 1);
        assert_eq!(dst, [0, 30, 30, 30, 0]);
    }

    #[test]
    fn out_of_frame_region_is_ignored() {
        let (w, h) = (10, 10);
        let mut data = vec![7u8; w * h];
        let mut plane = Plane {
            data: &mut data,
            stride: w,
            width: w,
            height: h,
            channels: 1,
        };
        let mut s = Vec::new();
        for b in [
            BBox::new(-50.0, -50.0, -10.0, -10.0),
            BBox::new(20.0, 20.0, 30.0, 30.0),
            BBox::new(f32::NAN, 0.0, 5.0, 5.0),
        ] {
            redact_plane(&mut plane, &b, Shape::Box, Style::Solid, &[0], &mut s);
        }
        assert!(data.iter().all(|&v| v == 7));
    }

    #[test]
    fn a_tracks_overlapping_boxes_are_redacted_once_as_their_union() {
        let a = BBox::new(0.0, 0.0, 10.0, 10.0);
        let b = BBox::new(2.0, 1.0, 12.0, 11.0);
        let far = BBox::new(50.0, 50.0, 60.0, 60.0);
        let m = merge_overlaps(&[
            (1, Class::Face, a),
            (1, Class::Face, b),
            (1, Class::Face, far),
        ]);
        assert_eq!(
            m,
            vec![
                (Class::Face, BBox::new(0.0, 0.0, 12.0, 11.0)),
                (Class::Face, far)
            ]
        );
        // Boxes of two tracks stay apart, however much they overlap.
        assert_eq!(
            merge_overlaps(&[(1, Class::Face, a), (2, Class::Face, b)]).len(),
            2
        );
    }
}
