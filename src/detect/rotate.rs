//! Detection on rotated copies of an image (test-time augmentation).
//!
//! A body-worn or head-mounted camera rolls with the wearer, so plates (and faces) appear tilted
//! by tens of degrees; detectors trained on level pictures miss many of them. Running the model
//! again on the picture turned by ±`angle` levels those out. Boxes found on a turned copy are
//! mapped back as the axis-aligned box around the turned rectangle, which covers the object.

use super::{BBox, Detection, Detector, Rgb};
use crate::error::Result;

/// Grey that fills the corners a rotation uncovers (the YOLO letterbox value).
const FILL: u8 = 114;

/// Turns `src` by `deg` degrees (positive: counter-clockwise as seen) about its centre, into an
/// image of the same size (bilinear, uncovered corners grey). Returns packed RGB24.
pub fn rotate_rgb(src: &Rgb, deg: f32) -> Vec<u8> {
    let (w, h) = (src.width, src.height);
    let mut out = vec![FILL; w * h * 3];
    let (s, c) = deg.to_radians().sin_cos();
    let (cx, cy) = (w as f32 * 0.5, h as f32 * 0.5);
    for yo in 0..h {
        let dy = yo as f32 + 0.5 - cy;
        let row = &mut out[yo * w * 3..(yo + 1) * w * 3];
        for xo in 0..w {
            let dx = xo as f32 + 0.5 - cx;
            // Source point: the inverse turn of the output pixel's centre.
            let xs = cx + c * dx - s * dy - 0.5;
            let ys = cy + s * dx + c * dy - 0.5;
            if xs < 0.0 || ys < 0.0 || xs > (w - 1) as f32 || ys > (h - 1) as f32 {
                continue;
            }
            let (x0, y0) = (xs as usize, ys as usize);
            let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
            let (fx, fy) = (xs - x0 as f32, ys - y0 as f32);
            let (r0, r1) = (src.row(y0), src.row(y1));
            for ch in 0..3 {
                let a = r0[x0 * 3 + ch] as f32;
                let b = r0[x1 * 3 + ch] as f32;
                let cc = r1[x0 * 3 + ch] as f32;
                let d = r1[x1 * 3 + ch] as f32;
                let top = a + (b - a) * fx;
                let bot = cc + (d - cc) * fx;
                row[xo * 3 + ch] = (top + (bot - top) * fy + 0.5) as u8;
            }
        }
    }
    out
}

/// Where a point of the turned image (see [`rotate_rgb`]) lies in the original.
pub fn unrotate_point(x: f32, y: f32, deg: f32, w: f32, h: f32) -> (f32, f32) {
    let (s, c) = deg.to_radians().sin_cos();
    let (dx, dy) = (x - w * 0.5, y - h * 0.5);
    (w * 0.5 + c * dx - s * dy, h * 0.5 + s * dx + c * dy)
}

/// The axis-aligned box in the original around a box found on the turned image.
pub fn unrotate_box(b: &BBox, deg: f32, w: f32, h: f32) -> BBox {
    let corners = [(b.x1, b.y1), (b.x2, b.y1), (b.x1, b.y2), (b.x2, b.y2)];
    let mut out = BBox::new(f32::MAX, f32::MAX, f32::MIN, f32::MIN);
    for (x, y) in corners {
        let (px, py) = unrotate_point(x, y, deg, w, h);
        out.x1 = out.x1.min(px);
        out.y1 = out.y1.min(py);
        out.x2 = out.x2.max(px);
        out.y2 = out.y2.max(py);
    }
    out.clip(w, h)
}

/// One look a detector takes at a picture: turned by `angle` degrees (0: as it is), keeping
/// boxes scoring at least `thresh`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Look {
    pub angle: f32,
    pub thresh: f32,
}

impl Look {
    /// The picture as it is.
    pub fn upright(thresh: f32) -> Look {
        Look { angle: 0.0, thresh }
    }

    /// The picture as it is and turned by each of `angles`.
    pub fn all(thresh: f32, angles: &[f32]) -> Vec<Look> {
        std::iter::once(Look::upright(thresh))
            .chain(Look::turned(thresh, angles))
            .collect()
    }

    /// The picture turned by each of `angles` (not as it is).
    pub fn turned(thresh: f32, angles: &[f32]) -> impl Iterator<Item = Look> + '_ {
        angles
            .iter()
            .filter(|a| **a != 0.0)
            .map(move |&angle| Look { angle, thresh })
    }
}

/// Runs `det` on `img` for each look; boxes of the turned looks are mapped back as the
/// upright box around the turned one. Boxes are in `img` pixels.
pub fn detect_looks(det: &mut Detector, img: &Rgb, looks: &[Look]) -> Result<Vec<Detection>> {
    let (w, h) = (img.width as f32, img.height as f32);
    let mut found = Vec::new();
    for l in looks {
        if l.angle == 0.0 {
            found.extend(det.detect(img, l.thresh)?);
            continue;
        }
        let buf = rotate_rgb(img, l.angle);
        let turned = Rgb::new(img.width, img.height, img.width * 3, &buf)?;
        for mut d in det.detect(&turned, l.thresh)? {
            d.bbox = unrotate_box(&d.bbox, l.angle, w, h);
            if d.bbox.is_valid() {
                found.push(d);
            }
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A black image with one white pixel block at (x, y).
    fn dot(w: usize, h: usize, x: usize, y: usize) -> Vec<u8> {
        let mut v = vec![0u8; w * h * 3];
        for yy in y..y + 2 {
            for xx in x..x + 2 {
                v[(yy * w + xx) * 3..(yy * w + xx) * 3 + 3].copy_from_slice(&[255, 255, 255]);
            }
        }
        v
    }

    fn brightest(buf: &[u8], w: usize) -> (f32, f32) {
        // Centroid of the bright pixels.
        let (mut sx, mut sy, mut n) = (0.0, 0.0, 0.0);
        for (i, px) in buf.chunks_exact(3).enumerate() {
            if px[0] > 128 && px[1] > 128 {
                sx += (i % w) as f32 + 0.5;
                sy += (i / w) as f32 + 0.5;
                n += 1.0;
            }
        }
        (sx / n, sy / n)
    }

    #[test]
    fn a_point_found_on_the_turned_image_maps_back_to_where_it_was() {
        let (w, h) = (120, 80);
        let src = dot(w, h, 90, 20);
        let img = Rgb::new(w, h, w * 3, &src).unwrap();
        for deg in [15.0f32, -15.0, 30.0, 90.0] {
            let out = rotate_rgb(&img, deg);
            let (x, y) = brightest(&out, w);
            let (ox, oy) = unrotate_point(x, y, deg, w as f32, h as f32);
            assert!(
                (ox - 91.0).abs() < 1.0 && (oy - 21.0).abs() < 1.0,
                "{deg}: {ox},{oy}"
            );
        }
        // Positive angles turn counter-clockwise as seen: a point right of centre moves up.
        let (_, y) = brightest(&rotate_rgb(&img, 30.0), w);
        let (_, y_right) = brightest(&src, w);
        assert!(y < y_right - 5.0, "{y} vs {y_right}");
    }

    #[test]
    fn unturned_box_contains_the_turned_rectangle() {
        let b = BBox::new(50.0, 30.0, 70.0, 40.0);
        let u = unrotate_box(&b, 20.0, 120.0, 80.0);
        for (x, y) in [(50.0, 30.0), (70.0, 30.0), (50.0, 40.0), (70.0, 40.0)] {
            let (px, py) = unrotate_point(x, y, 20.0, 120.0, 80.0);
            assert!(
                px >= u.x1 - 1e-3 && px <= u.x2 + 1e-3 && py >= u.y1 - 1e-3 && py <= u.y2 + 1e-3
            );
        }
        assert!(u.area() > b.area());
        assert_eq!(unrotate_box(&b, 0.0, 120.0, 80.0), b);
    }
}
