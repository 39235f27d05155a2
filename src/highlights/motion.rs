//! Camera and scene signals from small grey frames: global motion by phase correlation,
//! frame-difference energy, darkness and sharpness, and the cadence analysis that tells a
//! periodic running bob from broadband shake.

use std::sync::Arc;

use rustfft::num_complex::Complex32;
use rustfft::{Fft, FftPlanner};

/// Width and height of the analysis frames. Frames are scaled to this size whatever their
/// aspect ratio: motion is reported as a fraction of the frame, so the distortion cancels.
pub const AW: usize = 128;
pub const AH: usize = 96;

/// What one frame contributes.
#[derive(Debug, Clone, Copy, Default)]
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
}

/// Frame-to-frame motion estimator. Feed it grey frames of `AW`×`AH` in order.
pub struct MotionEstimator {
    fwd: Arc<dyn Fft<f32>>,
    inv: Arc<dyn Fft<f32>>,
    fwd_col: Arc<dyn Fft<f32>>,
    inv_col: Arc<dyn Fft<f32>>,
    window: Vec<f32>,
    prev_spec: Option<Vec<Complex32>>,
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
            // Normalised cross-power spectrum; its inverse peaks at the shift.
            let mut cross = std::mem::take(&mut self.scratch);
            for ((c, a), b) in cross.iter_mut().zip(&spec).zip(&prev) {
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
            m.dx = (wrap(px, AW) + sx) / AW as f32;
            m.dy = (wrap(py, AH) + sy) / AH as f32;
            m.confidence = (best / n).clamp(0.0, 1.0);
            self.scratch = cross;
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

/// Power spectrum of an evenly sampled series at the given frequencies (Hz), after removing
/// its mean and linear trend and applying a Hann window. `rate` is samples per second.
pub fn power_at(series: &[f32], rate: f64, freqs: &[f64]) -> Vec<f64> {
    let n = series.len();
    if n < 4 {
        return vec![0.0; freqs.len()];
    }
    // Least-squares line.
    let nf = n as f64;
    let mx = (nf - 1.0) / 2.0;
    let my = series.iter().map(|&v| v as f64).sum::<f64>() / nf;
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (i, &v) in series.iter().enumerate() {
        let dx = i as f64 - mx;
        sxy += dx * (v as f64 - my);
        sxx += dx * dx;
    }
    let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    let detr: Vec<f64> = series
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let w = 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / (nf - 1.0)).cos();
            (v as f64 - my - slope * (i as f64 - mx)) * w
        })
        .collect();
    freqs
        .iter()
        .map(|&f| {
            let w = 2.0 * std::f64::consts::PI * f / rate;
            let (mut re, mut im) = (0.0, 0.0);
            for (i, &v) in detr.iter().enumerate() {
                re += v * (w * i as f64).cos();
                im -= v * (w * i as f64).sin();
            }
            (re * re + im * im) / nf
        })
        .collect()
}

/// Cadence of a vertical-motion series: the strongest frequency in 0.7–8 Hz, the share of
/// the power that lies in the running band (2–3.5 Hz), and how peaked the spectrum is.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Cadence {
    pub peak_hz: f64,
    /// Power in 2–3.5 Hz over power in 0.7–8 Hz.
    pub band_share: f64,
    /// Peak power over mean power in 0.7–8 Hz: high for a rhythm, near 1–3 for noise.
    pub peakiness: f64,
    /// Root-mean-square amplitude of the series (same unit as the series).
    pub rms: f64,
}

pub const RUN_BAND: (f64, f64) = (2.0, 3.5);

/// Analyses an evenly sampled series (e.g. per-frame vertical position) for a running bob.
pub fn cadence(series: &[f32], rate: f64) -> Cadence {
    let nyq = rate / 2.0;
    let hi = 8.0f64.min(nyq * 0.95);
    let step = 0.1;
    let freqs: Vec<f64> = (0..)
        .map(|i| 0.7 + step * i as f64)
        .take_while(|&f| f <= hi)
        .collect();
    if freqs.is_empty() || series.len() < 8 {
        return Cadence::default();
    }
    let p = power_at(series, rate, &freqs);
    let total: f64 = p.iter().sum();
    let band: f64 = freqs
        .iter()
        .zip(&p)
        .filter(|(f, _)| **f >= RUN_BAND.0 && **f <= RUN_BAND.1)
        .map(|(_, v)| v)
        .sum();
    let (mut best, mut bf) = (0.0, 0.0);
    for (f, v) in freqs.iter().zip(&p) {
        if *v > best {
            best = *v;
            bf = *f;
        }
    }
    let mean = total / p.len() as f64;
    let m = series.iter().map(|&v| v as f64).sum::<f64>() / series.len() as f64;
    let rms =
        (series.iter().map(|&v| (v as f64 - m).powi(2)).sum::<f64>() / series.len() as f64).sqrt();
    Cadence {
        peak_hz: bf,
        band_share: if total > 0.0 { band / total } else { 0.0 },
        peakiness: if mean > 0.0 { best / mean } else { 0.0 },
        rms,
    }
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
    fn a_three_hertz_bob_gives_a_cadence_peak_at_three_hertz() {
        let fps = 30.0;
        let s: Vec<f32> = (0..120)
            .map(|i| (2.0 * std::f32::consts::PI * 3.0 * i as f32 / fps as f32).sin() * 5.0)
            .collect();
        let c = cadence(&s, fps);
        assert!((c.peak_hz - 3.0).abs() <= 0.15, "peak {}", c.peak_hz);
        assert!(c.band_share > 0.6, "share {}", c.band_share);
        assert!(c.peakiness > 5.0, "peakiness {}", c.peakiness);
    }

    #[test]
    fn broadband_noise_has_no_running_cadence() {
        // Deterministic pseudo-random walk steps.
        let mut x: u32 = 12345;
        let s: Vec<f32> = (0..120)
            .map(|_| {
                x = x.wrapping_mul(1664525).wrapping_add(1013904223);
                (x >> 8) as f32 / (1u32 << 24) as f32 - 0.5
            })
            .collect();
        let c = cadence(&s, 30.0);
        assert!(c.band_share < 0.45, "share {}", c.band_share);
        assert!(c.peakiness < 5.0, "peakiness {}", c.peakiness);
    }
}
