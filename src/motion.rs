//! The camera's global motion, measured once per decoded frame on a small grey copy and
//! shared by following (where to search for a track) and highlights (jerk, shake, running):
//! phase correlation, frame-difference energy, darkness and sharpness.

use std::sync::Arc;

use rustfft::num_complex::Complex32;
use rustfft::{Fft, FftPlanner};

/// Width and height of the analysis frames. Frames are scaled to this size whatever their
/// aspect ratio: motion is reported as a fraction of the frame, so the distortion cancels.
pub const AW: usize = 128;
pub const AH: usize = 96;

/// What one frame contributes.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct FrameMotion {
    /// Presentation time in seconds.
    pub t: f64,
    /// Global shift from the previous frame, as a fraction of the frame width / height.
    pub dx: f32,
    pub dy: f32,
    /// Peak of the normalised cross-power spectrum (0..1): how much one shift explains.
    pub confidence: f32,
    /// Mean absolute difference from the previous frame, 0..255.
    pub diff: f32,
    /// Mean luma, 0..255.
    pub luma: f32,
    /// Variance of the Laplacian: low means blurred or blocked.
    pub sharpness: f32,
    /// Global shift from the frame two before, as a fraction of the frame width / height, and
    /// its peak: across a frame a whip smeared, the frames either side are both sharp.
    pub skip_dx: f32,
    pub skip_dy: f32,
    pub skip_confidence: f32,
}

/// Frame-to-frame motion estimator. Feed it grey frames of `AW`×`AH` in order.
pub struct MotionEstimator {
    fwd: Arc<dyn Fft<f32>>,
    inv: Arc<dyn Fft<f32>>,
    fwd_col: Arc<dyn Fft<f32>>,
    inv_col: Arc<dyn Fft<f32>>,
    window: Vec<f32>,
    prev_spec: Option<Vec<Complex32>>,
    /// The spectrum of the frame before `prev_spec`'s.
    prev2_spec: Option<Vec<Complex32>>,
    prev_pix: Vec<u8>,
    scratch: Vec<Complex32>,
    col: Vec<Complex32>,
}

impl Default for MotionEstimator {
    fn default() -> Self {
        Self::new()
    }
}

impl MotionEstimator {
    pub fn new() -> Self {
        let mut planner = FftPlanner::new();
        let hann = |i: usize, n: usize| {
            0.5 - 0.5 * (2.0 * std::f32::consts::PI * i as f32 / (n - 1) as f32).cos()
        };
        let mut window = vec![0.0; AW * AH];
        for y in 0..AH {
            for x in 0..AW {
                window[y * AW + x] = hann(x, AW) * hann(y, AH);
            }
        }
        MotionEstimator {
            fwd: planner.plan_fft_forward(AW),
            inv: planner.plan_fft_inverse(AW),
            fwd_col: planner.plan_fft_forward(AH),
            inv_col: planner.plan_fft_inverse(AH),
            window,
            prev_spec: None,
            prev2_spec: None,
            prev_pix: Vec::new(),
            scratch: vec![Complex32::default(); AW * AH],
            col: vec![Complex32::default(); AH],
        }
    }

    fn fft2(&mut self, data: &mut [Complex32], inverse: bool) {
        let (row, col) = if inverse {
            (self.inv.clone(), self.inv_col.clone())
        } else {
            (self.fwd.clone(), self.fwd_col.clone())
        };
        for r in data.chunks_exact_mut(AW) {
            row.process(r);
        }
        for x in 0..AW {
            for y in 0..AH {
                self.col[y] = data[y * AW + x];
            }
            col.process(&mut self.col);
            for y in 0..AH {
                data[y * AW + x] = self.col[y];
            }
        }
    }

    /// The shift from the frame whose spectrum is `prev` to the one whose spectrum is `spec`,
    /// as a fraction of the frame, and the correlation peak (0..1), by phase correlation.
    fn correlate(&mut self, spec: &[Complex32], prev: &[Complex32]) -> (f32, f32, f32) {
        let n = (AW * AH) as f32;
        // Normalised cross-power spectrum; its inverse peaks at the shift.
        let mut cross = std::mem::take(&mut self.scratch);
        for ((c, a), b) in cross.iter_mut().zip(spec).zip(prev) {
            let v = a * b.conj();
            let mag = v.norm();
            *c = if mag > 1e-6 {
                v / mag
            } else {
                Complex32::default()
            };
        }
        self.fft2(&mut cross, true);
        let (mut best, mut bi) = (f32::MIN, 0usize);
        for (i, c) in cross.iter().enumerate() {
            if c.re > best {
                best = c.re;
                bi = i;
            }
        }
        let (px, py) = (bi % AW, bi / AW);
        let at = |x: isize, y: isize| {
            let x = x.rem_euclid(AW as isize) as usize;
            let y = y.rem_euclid(AH as isize) as usize;
            cross[y * AW + x].re
        };
        // Sub-pixel refinement by a parabola through the peak and its neighbours.
        let refine = |l: f32, c: f32, r: f32| {
            let d = l - 2.0 * c + r;
            if d.abs() < 1e-9 {
                0.0
            } else {
                (0.5 * (l - r) / d).clamp(-0.5, 0.5)
            }
        };
        let (xi, yi) = (px as isize, py as isize);
        let sx = refine(at(xi - 1, yi), best, at(xi + 1, yi));
        let sy = refine(at(xi, yi - 1), best, at(xi, yi + 1));
        let wrap = |p: usize, n: usize| {
            if p > n / 2 {
                p as f32 - n as f32
            } else {
                p as f32
            }
        };
        let found = (
            (wrap(px, AW) + sx) / AW as f32,
            (wrap(py, AH) + sy) / AH as f32,
            (best / n).clamp(0.0, 1.0),
        );
        self.scratch = cross;
        found
    }

    /// Adds the next frame, given as its full-size luma plane, shown at time `t`.
    pub fn push_luma(&mut self, luma: &Luma, t: f64) -> FrameMotion {
        self.push(&thumbnail(luma, AW, AH), t)
    }

    /// Adds the next frame (`AW`×`AH` grey, row-major) shown at time `t`.
    pub fn push(&mut self, pix: &[u8], t: f64) -> FrameMotion {
        assert_eq!(pix.len(), AW * AH, "analysis frames are AW x AH");
        let n = (AW * AH) as f32;
        let mean = pix.iter().map(|&p| p as f32).sum::<f32>() / n;
        let mut spec: Vec<Complex32> = pix
            .iter()
            .zip(&self.window)
            .map(|(&p, &w)| Complex32::new((p as f32 - mean) * w, 0.0))
            .collect();
        self.fft2(&mut spec, false);

        let mut m = FrameMotion {
            t,
            luma: mean,
            sharpness: laplacian_variance(pix),
            ..Default::default()
        };
        if let Some(prev) = self.prev_spec.take() {
            (m.dx, m.dy, m.confidence) = self.correlate(&spec, &prev);
            if let Some(prev2) = self.prev2_spec.take() {
                (m.skip_dx, m.skip_dy, m.skip_confidence) = self.correlate(&spec, &prev2);
            }
            self.prev2_spec = Some(prev);
            m.diff = pix
                .iter()
                .zip(&self.prev_pix)
                .map(|(&a, &b)| (a as i32 - b as i32).unsigned_abs() as f32)
                .sum::<f32>()
                / n;
        }
        self.prev_spec = Some(spec);
        self.prev_pix.clear();
        self.prev_pix.extend_from_slice(pix);
        m
    }
}

fn laplacian_variance(pix: &[u8]) -> f32 {
    let mut sum = 0.0f64;
    let mut sq = 0.0f64;
    let mut n = 0.0f64;
    for y in 1..AH - 1 {
        for x in 1..AW - 1 {
            let c = pix[y * AW + x] as f64;
            let l = pix[y * AW + x - 1] as f64
                + pix[y * AW + x + 1] as f64
                + pix[(y - 1) * AW + x] as f64
                + pix[(y + 1) * AW + x] as f64
                - 4.0 * c;
            sum += l;
            sq += l * l;
            n += 1.0;
        }
    }
    let m = sum / n;
    (sq / n - m * m) as f32
}

/// A borrowed 8-bit plane.
#[derive(Clone, Copy)]
pub struct Luma<'a> {
    pub data: &'a [u8],
    pub stride: usize,
    pub width: usize,
    pub height: usize,
}

/// A small grey copy (`w` x `h`, row-major) of a plane, each pixel the mean of a 4x4 grid of
/// samples in its footprint: input for the global motion estimate.
pub fn thumbnail(src: &Luma, w: usize, h: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(w * h);
    for v in 0..h {
        for u in 0..w {
            let mut acc = 0u32;
            for j in 0..4 {
                let y =
                    ((4 * v + j) * src.height / (4 * h) + src.height / (8 * h)).min(src.height - 1);
                let row = &src.data[y * src.stride..];
                for i in 0..4 {
                    let x = ((4 * u + i) * src.width / (4 * w) + src.width / (8 * w))
                        .min(src.width - 1);
                    acc += row[x] as u32;
                }
            }
            out.push((acc / 16) as u8);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texture(shift_x: f32, shift_y: f32) -> Vec<u8> {
        // A smooth random-ish texture sampled at a shifted position.
        let mut v = vec![0u8; AW * AH];
        for y in 0..AH {
            for x in 0..AW {
                let fx = x as f32 + shift_x;
                let fy = y as f32 + shift_y;
                let s = (fx * 0.21).sin() * (fy * 0.17).cos()
                    + (fx * 0.05 + fy * 0.11).sin()
                    + 0.5 * ((fx * 0.37 - fy * 0.29).sin());
                v[y * AW + x] = (128.0 + 50.0 * s).clamp(0.0, 255.0) as u8;
            }
        }
        v
    }

    #[test]
    fn phase_correlation_finds_a_known_shift() {
        let mut m = MotionEstimator::new();
        m.push(&texture(0.0, 0.0), 0.0);
        let r = m.push(&texture(-3.0, 2.0), 1.0 / 30.0);
        // Content moved by +3 px right and -2 px (up) in the frame.
        assert!(
            (r.dx * AW as f32 - 3.0).abs() < 0.6,
            "dx {}",
            r.dx * AW as f32
        );
        assert!(
            (r.dy * AH as f32 + 2.0).abs() < 0.6,
            "dy {}",
            r.dy * AH as f32
        );
        assert!(r.confidence > 0.1);
        // A still frame gives no motion.
        let r = m.push(&texture(-3.0, 2.0), 2.0 / 30.0);
        assert!(r.dx.abs() < 0.01 && r.dy.abs() < 0.01);
        assert_eq!(r.diff, 0.0);
    }

    #[test]
    fn the_shift_across_a_smeared_frame_is_measured_between_the_sharp_ones() {
        let mut m = MotionEstimator::new();
        m.push(&texture(0.0, 0.0), 0.0);
        // A whip: four ghosts of the picture along a 40-px move, averaged into one frame.
        let ghosts: Vec<Vec<u8>> = (0..4).map(|i| texture(-10.0 * i as f32, 0.0)).collect();
        let smeared: Vec<u8> = (0..AW * AH)
            .map(|i| (ghosts.iter().map(|g| g[i] as u32).sum::<u32>() / 4) as u8)
            .collect();
        let first = m.push(&smeared, 1.0 / 30.0);
        assert_eq!(first.skip_confidence, 0.0, "no frame two before");
        let r = m.push(&texture(-40.0, 0.0), 2.0 / 30.0);
        let across = r.skip_dx * AW as f32;
        assert!((across - 40.0).abs() < 1.0, "across {across}");
        assert!(r.skip_dy.abs() * (AH as f32) < 1.0);
        assert!(r.skip_confidence > 0.15, "{}", r.skip_confidence);
    }
}
