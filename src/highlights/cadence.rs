//! Cadence analysis of the camera's vertical motion: tells a periodic running bob from
//! broadband shake.

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
