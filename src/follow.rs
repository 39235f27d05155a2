//! Following a tracked box by its appearance from one frame to the next.
//!
//! Detectors miss objects for stretches of frames (a plate at a steep angle, a face turning
//! away, motion blur), and the plate model only runs on sampled frames. Between and after
//! detections a track is carried by template matching on the luma plane: the patch under the
//! track's box in the previous frame is looked for around the same place in the current frame,
//! by zero-mean normalised cross-correlation (ZNCC), coarse to fine on area-averaged copies.
//! A match below [`MIN_SCORE`], or a patch with too little texture to match reliably, ends the
//! chain; the track then relies on its detections, gap filling and extensions as before.

use crate::detect::BBox;
pub use crate::motion::Luma;

/// The larger side of the template, in working pixels (the box is area-averaged down to it).
const WORK: f32 = 32.0;
/// The search reaches this many box sizes beyond the box on every side.
const REACH: f32 = 0.75;
/// Smallest ZNCC that counts as the same object.
pub const MIN_SCORE: f32 = 0.6;
/// Smallest standard deviation (grey levels) of a template worth matching.
const MIN_STD: f32 = 4.0;

/// A float image in working pixels.
struct Img {
    w: usize,
    h: usize,
    px: Vec<f32>,
}

/// Area-averages the integer region [x0, x1) x [y0, y1) of `src` into `ow` x `oh` pixels.
/// Each output pixel is the mean of its cell's integer sum: the cell's rows are summed per
/// column once for each band of rows, then each cell's columns, so the work follows the
/// region's pixels and no buffer grows with it (a whole-region integral image did: tens of
/// megabytes, and page faults, for a large face's search region).
fn resample(src: &Luma, x0: usize, y0: usize, x1: usize, y1: usize, ow: usize, oh: usize) -> Img {
    let (rw, rh) = (x1 - x0, y1 - y0);
    let cols: Vec<(usize, usize)> = (0..ow)
        .map(|u| {
            let xa = u * rw / ow;
            (xa, ((u + 1) * rw / ow).max(xa + 1))
        })
        .collect();
    // Per-column sums over the current band of rows (at most 255 x the frame's height).
    let mut sums = vec![0u32; rw];
    let mut band = None;
    let mut px = Vec::with_capacity(ow * oh);
    for v in 0..oh {
        let ya = v * rh / oh;
        let yb = ((v + 1) * rh / oh).max(ya + 1);
        if band != Some((ya, yb)) {
            sums.fill(0);
            for y in ya..yb {
                let o = (y0 + y) * src.stride;
                for (s, &p) in sums.iter_mut().zip(&src.data[o + x0..o + x1]) {
                    *s += p as u32;
                }
            }
            band = Some((ya, yb));
        }
        for &(xa, xb) in &cols {
            let s: u64 = sums[xa..xb].iter().map(|&c| c as u64).sum();
            px.push(s as f32 / ((xb - xa) * (yb - ya)) as f32);
        }
    }
    Img { w: ow, h: oh, px }
}

/// Halves an image (2x2 means; an odd last row or column is dropped).
fn halve(img: &Img) -> Img {
    let (w, h) = ((img.w / 2).max(1), (img.h / 2).max(1));
    let mut px = Vec::with_capacity(w * h);
    for y in 0..h {
        for x in 0..w {
            let at = |xx: usize, yy: usize| img.px[yy.min(img.h - 1) * img.w + xx.min(img.w - 1)];
            px.push(
                0.25 * (at(2 * x, 2 * y)
                    + at(2 * x + 1, 2 * y)
                    + at(2 * x, 2 * y + 1)
                    + at(2 * x + 1, 2 * y + 1)),
            );
        }
    }
    Img { w, h, px }
}

/// Zero-mean template values and their norm; None when the template is too flat.
fn centred(t: &Img) -> Option<(Vec<f32>, f32)> {
    let n = t.px.len() as f32;
    let mean = t.px.iter().sum::<f32>() / n;
    let c: Vec<f32> = t.px.iter().map(|v| v - mean).collect();
    let ss: f32 = c.iter().map(|v| v * v).sum();
    if (ss / n).sqrt() < MIN_STD {
        return None;
    }
    Some((c, ss.sqrt()))
}

/// ZNCC of the centred template at offset (ox, oy) of `s`.
fn zncc(tc: &[f32], tnorm: f32, tw: usize, th: usize, s: &Img, ox: usize, oy: usize) -> f32 {
    let n = (tw * th) as f32;
    let (mut sum, mut sum2, mut dot) = (0.0f32, 0.0f32, 0.0f32);
    for y in 0..th {
        let srow = &s.px[(oy + y) * s.w + ox..(oy + y) * s.w + ox + tw];
        let trow = &tc[y * tw..(y + 1) * tw];
        for (a, b) in srow.iter().zip(trow) {
            sum += a;
            sum2 += a * a;
            dot += a * b;
        }
    }
    let var = (sum2 - sum * sum / n).max(0.0);
    if var <= 1e-6 {
        return 0.0;
    }
    dot / (tnorm * var.sqrt())
}

/// The best offset of `t` in `s` within the given window of offsets.
fn best_offset(
    t: &Img,
    s: &Img,
    xs: std::ops::RangeInclusive<i64>,
    ys: std::ops::RangeInclusive<i64>,
) -> Option<(usize, usize, f32)> {
    if t.w > s.w || t.h > s.h {
        return None;
    }
    let (tc, tnorm) = centred(t)?;
    let (mx, my) = ((s.w - t.w) as i64, (s.h - t.h) as i64);
    let mut best: Option<(usize, usize, f32)> = None;
    for oy in (*ys.start()).max(0)..=(*ys.end()).min(my) {
        for ox in (*xs.start()).max(0)..=(*xs.end()).min(mx) {
            let v = zncc(&tc, tnorm, t.w, t.h, s, ox as usize, oy as usize);
            if best.map_or(true, |b| v > b.2) {
                best = Some((ox as usize, oy as usize, v));
            }
        }
    }
    best
}

/// Where the content of `b` in `prev` is in `cur`, and the match score; None when it cannot be
/// followed (too small, too flat, out of the frame, or no match above [`MIN_SCORE`]). `hint` is
/// the expected shift of the content in pixels (the camera's global motion), searched around.
pub fn follow(prev: &Luma, cur: &Luma, b: &BBox, hint: (f32, f32)) -> Option<(BBox, f32)> {
    follow_sized(prev, cur, b, hint, false)
}

/// [`follow`], and where `resize` says so, the box also takes the size the object's content
/// matches best at (see [`rescaled`]): faces, which a camera nears or leaves. (A plate's thin
/// template matches a wider or narrower box about as well, so plates keep their size.)
pub fn follow_sized(
    prev: &Luma,
    cur: &Luma,
    b: &BBox,
    hint: (f32, f32),
    resize: bool,
) -> Option<(BBox, f32)> {
    let (fw, fh) = (prev.width.min(cur.width), prev.height.min(cur.height));
    if fw < 8 || fh < 8 {
        return None;
    }
    let c = b.clip(fw as f32, fh as f32);
    // Most of the box must be inside the frame: a box leaving the picture stops here.
    if !c.is_valid() || c.area() < 0.5 * b.area() || c.width() < 4.0 || c.height() < 4.0 {
        return None;
    }
    let (tx0, ty0) = (c.x1.floor() as usize, c.y1.floor() as usize);
    let (tx1, ty1) = (
        (c.x2.ceil() as usize).min(fw),
        (c.y2.ceil() as usize).min(fh),
    );
    let (bw, bh) = ((tx1 - tx0) as f32, (ty1 - ty0) as f32);
    // Long side to WORK pixels, but the short side kept at 8 or more (thin plates).
    let s = (WORK / bw.max(bh)).max(8.0 / bw.min(bh)).min(1.0);
    let (tw, th) = (
        ((bw * s).round() as usize).max(4),
        ((bh * s).round() as usize).max(4),
    );
    // Reach: a share of the box, and at least 1% of the frame for small boxes.
    let m = (REACH * bw.max(bh)).max(0.01 * fw.max(fh) as f32).ceil() as i64 + 2;
    let (hx, hy) = (hint.0.round() as i64, hint.1.round() as i64);
    let clampi = |v: i64, hi: usize| v.clamp(0, hi as i64) as usize;
    let (sx0, sy0) = (
        clampi(tx0 as i64 + hx - m, fw),
        clampi(ty0 as i64 + hy - m, fh),
    );
    let (sx1, sy1) = (
        clampi(tx1 as i64 + hx + m, fw),
        clampi(ty1 as i64 + hy + m, fh),
    );
    if sx1 < sx0 + (tx1 - tx0) || sy1 < sy0 + (ty1 - ty0) {
        return None;
    }
    // The search region at the template's scale.
    let sw = (((sx1 - sx0) as f32 * tw as f32 / bw).round() as usize).max(tw);
    let sh = (((sy1 - sy0) as f32 * th as f32 / bh).round() as usize).max(th);
    let t = resample(prev, tx0, ty0, tx1, ty1, tw, th);
    let sr = resample(cur, sx0, sy0, sx1, sy1, sw, sh);
    let (kx, ky) = (
        sw as f32 / (sx1 - sx0) as f32,
        sh as f32 / (sy1 - sy0) as f32,
    );
    // Coarse: every offset at half resolution; fine: +/- 2 working pixels around it.
    let (t2, s2) = (halve(&t), halve(&sr));
    let (cx, cy, _) = if t2.w >= 3 && t2.h >= 3 {
        best_offset(&t2, &s2, 0..=i64::MAX, 0..=i64::MAX)?
    } else {
        let ex = ((tx0 as f32 + hint.0 - sx0 as f32) * kx / 2.0).max(0.0) as usize;
        let ey = ((ty0 as f32 + hint.1 - sy0 as f32) * ky / 2.0).max(0.0) as usize;
        (ex, ey, 0.0)
    };
    let (fx, fy) = (2 * cx as i64, 2 * cy as i64);
    let (ox, oy, score) = best_offset(&t, &sr, fx - 2..=fx + 2, fy - 2..=fy + 2)?;
    if score < MIN_SCORE {
        return None;
    }
    let nx = sx0 as f32 + ox as f32 / kx;
    let ny = sy0 as f32 + oy as f32 / ky;
    // The whole box moves with its matched part (a box partly outside the frame keeps its size).
    let moved = b.map(1.0, 1.0, nx - tx0 as f32, ny - ty0 as f32);
    // A box wholly in view may also change size: the object came nearer or went away.
    if resize && c.area() >= b.area() - 0.5 && score >= SCALE_MIN_SCORE {
        let size = (tx1 - tx0, ty1 - ty0);
        if let Some((better, v)) = rescaled(&t, size, cur, &moved, (fw, fh)) {
            // The match's strength is the translation's, which passed; the other size only
            // matched better.
            return Some((better, v.max(score)));
        }
    }
    Some((moved, score))
}

/// The sizes, relative to the box followed at its old size, that [`rescaled`] tries: an object
/// the camera nears (an officer walking up to a person, about 1–3% a frame at 30 fps) or a
/// zoom grows its box from frame to frame, which the matched offset alone does not follow.
const SCALES: [f32; 5] = [1.0, 0.93, 0.965, 1.035, 1.07];
/// How well (ZNCC) the box must match at its old size for another size to be tried: a
/// blurred or changing patch can match a larger box better without the object having neared.
const SCALE_MIN_SCORE: f32 = 0.8;
/// How much better (ZNCC) another size must match than the old one to be taken.
const SCALE_GAIN: f32 = 0.02;

/// The box `at` (where the template `t`, sampled from a `size` pixel region, matched) at
/// another size from [`SCALES`], about its centre and re-placed within a working pixel, where
/// the template matches that size's region clearly better than the old size's placed the same
/// way; None where none does, or where a box would leave the `fw`x`fh` frame.
fn rescaled(
    t: &Img,
    size: (usize, usize),
    cur: &Luma,
    at: &BBox,
    (fw, fh): (usize, usize),
) -> Option<(BBox, f32)> {
    // A large box is looked at on a reduced copy of the region its sizes and placements
    // reach, about three of the copy's pixels a working pixel: the 45 looks then cost little
    // whatever the face's size.
    let f = (3.0 * t.w.max(t.h) as f32 / size.0.max(size.1) as f32).min(1.0);
    if f >= 1.0 {
        return rescaled_in(t, size, cur, at, (fw, fh));
    }
    let reach = at.scaled(1.25);
    let (x0, y0) = (
        reach.x1.floor().max(0.0) as usize,
        reach.y1.floor().max(0.0) as usize,
    );
    let (x1, y1) = (
        (reach.x2.ceil().max(0.0) as usize).min(fw),
        (reach.y2.ceil().max(0.0) as usize).min(fh),
    );
    if x1 < x0 + 8 || y1 < y0 + 8 {
        return None;
    }
    let (sw, sh) = (
        (((x1 - x0) as f32 * f).round() as usize).max(4),
        (((y1 - y0) as f32 * f).round() as usize).max(4),
    );
    let copy = resample(cur, x0, y0, x1, y1, sw, sh);
    let px: Vec<u8> = copy.px.iter().map(|v| v.round() as u8).collect();
    let small = Luma {
        data: &px,
        stride: sw,
        width: sw,
        height: sh,
    };
    let (kx, ky) = (sw as f32 / (x1 - x0) as f32, sh as f32 / (y1 - y0) as f32);
    let local = at.map(kx, ky, -(x0 as f32) * kx, -(y0 as f32) * ky);
    let lsize = (
        ((size.0 as f32 * kx).round() as usize).max(4),
        ((size.1 as f32 * ky).round() as usize).max(4),
    );
    let (b, v) = rescaled_in(t, lsize, &small, &local, (sw, sh))?;
    Some((b.map(1.0 / kx, 1.0 / ky, x0 as f32, y0 as f32), v))
}

/// [`rescaled`] on `cur` as it is.
fn rescaled_in(
    t: &Img,
    size: (usize, usize),
    cur: &Luma,
    at: &BBox,
    (fw, fh): (usize, usize),
) -> Option<(BBox, f32)> {
    let (cx, cy) = at.center();
    let mut same: Option<f32> = None;
    let mut best: Option<(BBox, f32)> = None;
    for k in SCALES {
        let (w, h) = (
            ((size.0 as f32 * k).round() as i64).max(4),
            ((size.1 as f32 * k).round() as i64).max(4),
        );
        // Half a working pixel, in frame pixels, at least one.
        let (sx, sy) = (
            ((w as f32 / t.w as f32) * 0.5).round().max(1.0) as i64,
            ((h as f32 / t.h as f32) * 0.5).round().max(1.0) as i64,
        );
        let (x, y) = (
            (cx - w as f32 / 2.0).round() as i64,
            (cy - h as f32 / 2.0).round() as i64,
        );
        let mut top: Option<(i64, i64, f32)> = None;
        for (dx, dy) in (-1..=1).flat_map(|dy| (-1..=1).map(move |dx| (dx, dy))) {
            let (x0, y0) = (x + dx * sx, y + dy * sy);
            if x0 < 0 || y0 < 0 || x0 + w > fw as i64 || y0 + h > fh as i64 {
                continue;
            }
            let (ux, uy) = (x0 as usize, y0 as usize);
            let region = resample(cur, ux, uy, ux + w as usize, uy + h as usize, t.w, t.h);
            let v = best_offset(t, &region, 0..=0, 0..=0).map_or(0.0, |b| b.2);
            if top.map_or(true, |b| v > b.2) {
                top = Some((x0, y0, v));
            }
        }
        let Some((x0, y0, v)) = top else {
            // The old size first: without it there is nothing to compare with.
            same?;
            continue;
        };
        let Some(base) = same else {
            same = Some(v);
            continue;
        };
        if v < base + SCALE_GAIN || best.is_some_and(|b| v <= b.1) {
            continue;
        }
        let (rw, rh) = (w as f32 / size.0 as f32, h as f32 / size.1 as f32);
        let (mx, my) = (x0 as f32 + w as f32 / 2.0, y0 as f32 + h as f32 / 2.0);
        let (bw, bh) = (at.width() * rw, at.height() * rh);
        best = Some((
            BBox::new(mx - bw / 2.0, my - bh / 2.0, mx + bw / 2.0, my + bh / 2.0),
            v,
        ));
    }
    best
}

/// Whether a box moving by `step` a frame is heading out of the `w`x`h` frame and is already
/// near its edge (within two steps), so following it further is bound to fail.
pub fn edge_bound(b: &BBox, (dx, dy): (f32, f32), w: f32, h: f32) -> bool {
    let near = |lo: f32, hi: f32, d: f32, n: f32| {
        (d < 0.0 && lo + 2.0 * d < 0.0) || (d > 0.0 && hi + 2.0 * d > n)
    };
    near(b.x1, b.x2, dx, w) || near(b.y1, b.y2, dy, h)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Value noise at (x, y): hashed lattice values, bilinearly interpolated, two octaves.
    fn noise(x: f32, y: f32) -> f32 {
        let lattice = |i: i64, j: i64| {
            let mut h = (i.wrapping_mul(73_856_093) ^ j.wrapping_mul(19_349_663)) as u64;
            h ^= h >> 13;
            h = h.wrapping_mul(0x5bd1_e995);
            h ^= h >> 15;
            (h & 0xff) as f32
        };
        let octave = |x: f32, y: f32| {
            let (xi, yi) = (x.floor(), y.floor());
            let (fx, fy) = (x - xi, y - yi);
            let (i, j) = (xi as i64, yi as i64);
            let top = lattice(i, j) * (1.0 - fx) + lattice(i + 1, j) * fx;
            let bot = lattice(i, j + 1) * (1.0 - fx) + lattice(i + 1, j + 1) * fx;
            top * (1.0 - fy) + bot * fy
        };
        0.6 * octave(x / 9.0, y / 9.0) + 0.4 * octave(x / 3.0 + 100.0, y / 3.0)
    }

    /// Aperiodic smooth texture, its content shifted by (dx, dy).
    fn texture(w: usize, h: usize, dx: f32, dy: f32) -> Vec<u8> {
        let mut v = vec![0u8; w * h];
        for y in 0..h {
            for x in 0..w {
                v[y * w + x] = noise(x as f32 - dx, y as f32 - dy).clamp(0.0, 255.0) as u8;
            }
        }
        v
    }

    fn luma(v: &[u8], w: usize, h: usize) -> Luma<'_> {
        Luma {
            data: v,
            stride: w,
            width: w,
            height: h,
        }
    }

    #[test]
    fn resampling_averages_each_cell_exactly() {
        let (w, h) = (97, 61);
        let v = texture(w, h, 0.0, 0.0);
        let src = luma(&v, w, h);
        // Down (uneven cells), up (repeated pixels) and mixed, on an offset region.
        for (x0, y0, x1, y1, ow, oh) in [
            (5, 3, 90, 58, 13, 7),
            (10, 20, 16, 25, 20, 11),
            (0, 0, 97, 61, 40, 90),
        ] {
            let got = resample(&src, x0, y0, x1, y1, ow, oh);
            let (rw, rh) = (x1 - x0, y1 - y0);
            for yo in 0..oh {
                let ya = yo * rh / oh;
                let yb = ((yo + 1) * rh / oh).max(ya + 1);
                for xo in 0..ow {
                    let xa = xo * rw / ow;
                    let xb = ((xo + 1) * rw / ow).max(xa + 1);
                    let sum: u64 = (ya..yb)
                        .flat_map(|y| (xa..xb).map(move |x| (x, y)))
                        .map(|(x, y)| v[(y0 + y) * w + x0 + x] as u64)
                        .sum();
                    let want = sum as f32 / ((xb - xa) * (yb - ya)) as f32;
                    assert_eq!(got.px[yo * ow + xo], want, "({xo},{yo}) of {ow}x{oh}");
                }
            }
        }
    }

    #[test]
    fn a_shifted_patch_is_found_where_it_moved() {
        let (w, h) = (400, 300);
        let a = texture(w, h, 0.0, 0.0);
        for (dx, dy, bw) in [(7.0, -5.0, 40.0), (-20.0, 12.0, 90.0), (3.0, 2.0, 20.0)] {
            let b = texture(w, h, dx, dy);
            let bx = BBox::new(150.0, 120.0, 150.0 + bw, 120.0 + bw * 0.6);
            let (got, score) =
                follow(&luma(&a, w, h), &luma(&b, w, h), &bx, (0.0, 0.0)).expect("followed");
            let tol = (bw / WORK).max(1.0) + 0.5;
            assert!(
                (got.x1 - (bx.x1 + dx)).abs() <= tol && (got.y1 - (bx.y1 + dy)).abs() <= tol,
                "moved by ({dx},{dy}): {got:?} score {score}"
            );
            assert!(score > 0.9, "{score}");
            assert!((got.width() - bx.width()).abs() < 1e-3);
        }
    }

    #[test]
    fn a_nearing_object_is_followed_at_its_new_size() {
        let (w, h) = (400, 300);
        // The picture grows 5% about (200, 150) and moves 6 px right: the face the box holds
        // comes nearer. A small face, looked at as it is, and a large one (its texture as
        // coarse for its size), looked at on a reduced copy.
        let (cx, cy, k) = (200.0, 150.0, 1.05);
        for half in [30.0, 90.0] {
            let grain = half / 30.0;
            let (mut a, mut b) = (vec![0u8; w * h], vec![0u8; w * h]);
            for y in 0..h {
                for x in 0..w {
                    let (sx, sy) = ((x as f32 - 6.0 - cx) / k + cx, (y as f32 - cy) / k + cy);
                    a[y * w + x] = noise(x as f32 / grain, y as f32 / grain) as u8;
                    b[y * w + x] = noise(sx / grain, sy / grain).clamp(0.0, 255.0) as u8;
                }
            }
            let bx = BBox::new(cx - half, cy - half, cx + half, cy + half);
            let (got, score) =
                follow_sized(&luma(&a, w, h), &luma(&b, w, h), &bx, (0.0, 0.0), true)
                    .expect("followed");
            assert!(got.width() > 2.0 * half * 1.025, "{got:?} score {score}");
            let (gx, gy) = got.center();
            let tol = 2.5 * half / 30.0;
            assert!(
                (gx - 206.0).abs() <= tol && (gy - 150.0).abs() <= tol,
                "{got:?}"
            );
            // And going away, it shrinks.
            let (back, _) = follow_sized(&luma(&b, w, h), &luma(&a, w, h), &got, (0.0, 0.0), true)
                .expect("followed");
            assert!(back.width() < got.width() * 0.975, "{back:?} from {got:?}");
            // Without resizing (plates), the size stays.
            let (kept, _) =
                follow(&luma(&a, w, h), &luma(&b, w, h), &bx, (0.0, 0.0)).expect("followed");
            assert_eq!(kept.width(), bx.width());
        }
    }

    #[test]
    fn flat_or_changed_content_is_not_followed() {
        let (w, h) = (200, 200);
        let flat = vec![120u8; w * h];
        let b = BBox::new(50.0, 50.0, 90.0, 80.0);
        assert!(follow(&luma(&flat, w, h), &luma(&flat, w, h), &b, (0.0, 0.0)).is_none());
        // The content under the box is replaced by unrelated noise in the next frame.
        let a = texture(w, h, 0.0, 0.0);
        let noise = crate::util::noise_bytes(12345, w * h);
        assert!(follow(&luma(&a, w, h), &luma(&noise, w, h), &b, (0.0, 0.0)).is_none());
    }

    #[test]
    fn a_box_leaving_the_frame_stops() {
        let (w, h) = (200, 200);
        let a = texture(w, h, 0.0, 0.0);
        let b = BBox::new(180.0, 50.0, 240.0, 80.0);
        assert!(follow(&luma(&a, w, h), &luma(&a, w, h), &b, (0.0, 0.0)).is_none());
    }

    #[test]
    fn a_camera_move_beyond_the_reach_is_found_with_the_motion_hint() {
        let (w, h) = (600, 400);
        let a = texture(w, h, 0.0, 0.0);
        // The whole picture moved 70 px down and 40 left: more than the box's reach.
        let b = texture(w, h, -40.0, 70.0);
        let bx = BBox::new(300.0, 150.0, 342.0, 181.0);
        let (got, _) = follow(&luma(&a, w, h), &luma(&b, w, h), &bx, (-36.0, 64.0)).expect("hint");
        assert!(
            (got.x1 - 260.0).abs() <= 1.5 && (got.y1 - 220.0).abs() <= 1.5,
            "{got:?}"
        );
    }

    #[test]
    fn only_boxes_heading_out_near_an_edge_are_carried_on() {
        let b = BBox::new(10.0, 100.0, 110.0, 200.0);
        assert!(edge_bound(&b, (-20.0, 0.0), 640.0, 480.0));
        assert!(!edge_bound(&b, (20.0, 0.0), 640.0, 480.0));
        assert!(!edge_bound(
            &BBox::new(300.0, 100.0, 400.0, 200.0),
            (-20.0, 0.0),
            640.0,
            480.0
        ));
        assert!(edge_bound(
            &BBox::new(300.0, 400.0, 400.0, 470.0),
            (0.0, 10.0),
            640.0,
            480.0
        ));
    }
}
