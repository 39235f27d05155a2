//! Audio signals on 16 kHz mono samples, per 100 ms hop: loudness (EBU R128 momentary, via
//! the `ebur128` crate), RMS level, high-band energy share, pitch, impulses and clipping.

use rustfft::num_complex::Complex32;
use rustfft::{Fft, FftPlanner};
use std::sync::Arc;

/// Analysis sample rate.
pub const RATE: u32 = 16_000;
/// Samples per hop (100 ms).
pub const HOP: usize = 1_600;
/// Loudness reported for silence, in LUFS / dBFS: a floor, not minus infinity.
pub const FLOOR_DB: f32 = -90.0;

/// What one 100 ms hop contributes.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct AudioHop {
    /// Start of the hop in seconds.
    pub t: f64,
    /// EBU R128 momentary loudness (400 ms window ending at this hop), LUFS.
    pub loudness: f32,
    /// RMS of the hop, dBFS.
    pub rms_db: f32,
    /// Share of the 100–4000 Hz energy above 1 kHz: vocal effort flattens the spectrum.
    pub high_share: f32,
    /// Fundamental frequency in Hz of the hop's strongest voiced frame, 0 when unvoiced.
    pub pitch_hz: f32,
    /// Largest rise of a 10 ms level over the median of the previous second, dB.
    pub impulse_db: f32,
    /// Offset of that 10 ms block from the hop's start, seconds.
    pub impulse_at: f32,
    /// Loudest 10 ms level in the hop, dBFS.
    pub peak_db: f32,
    /// Share of samples at or beyond full scale.
    pub clipped: f32,
    /// Speech probability from the VAD (filled in later), 0..1.
    pub speech: f32,
    /// Peak normalised autocorrelation of the strongest 40 ms frame (0..1): how periodic the
    /// sound is. A voice stays below a siren or a ringtone, which are near 1.
    pub voicing: f32,
    /// How alike this hop's 300–4000 Hz magnitude spectrum is to the hop before's (cosine
    /// similarity, 0..1): a horn or a ring holds its spectrum from one 100 ms to the next
    /// (about 0.95), a voice moves its harmonics and formants (a shout or a scream 0.1–0.7).
    pub spectrum_hold: f32,
}

/// Streaming audio analyser: push 16 kHz mono samples, get one [`AudioHop`] per 100 ms.
pub struct AudioAnalyzer {
    meter: ebur128::EbuR128,
    pending: Vec<f32>,
    hops: Vec<AudioHop>,
    /// 10 ms levels of the last second, for the impulse baseline.
    recent_levels: std::collections::VecDeque<f32>,
    fft: Arc<dyn Fft<f32>>,
    spec: Vec<Complex32>,
    /// The last hop's 300–4000 Hz magnitude spectrum (see [`AudioHop::spectrum_hold`]).
    held: Vec<f32>,
    t0: f64,
}

const FFT_N: usize = 2048;

fn db(power: f64) -> f32 {
    if power <= 1e-12 {
        FLOOR_DB
    } else {
        ((10.0 * power.log10()) as f32).max(FLOOR_DB)
    }
}

impl Default for AudioAnalyzer {
    fn default() -> Self {
        Self::new()
    }
}

impl AudioAnalyzer {
    pub fn new() -> Self {
        let meter = ebur128::EbuR128::new(1, RATE, ebur128::Mode::M)
            .expect("mono 16 kHz is a valid EBU R128 configuration");
        AudioAnalyzer {
            meter,
            pending: Vec::with_capacity(HOP * 2),
            hops: Vec::new(),
            recent_levels: std::collections::VecDeque::with_capacity(128),
            fft: FftPlanner::new().plan_fft_forward(FFT_N),
            spec: vec![Complex32::default(); FFT_N],
            held: Vec::new(),
            t0: 0.0,
        }
    }

    /// Sets the time of the first sample (the audio stream's start time), before any push.
    pub fn set_start(&mut self, t0: f64) {
        self.t0 = t0;
    }

    pub fn push(&mut self, samples: &[f32]) {
        self.pending.extend_from_slice(samples);
        let mut start = 0;
        while self.pending.len() - start >= HOP {
            let hop: Vec<f32> = self.pending[start..start + HOP].to_vec();
            self.analyse_hop(&hop);
            start += HOP;
        }
        self.pending.drain(..start);
    }

    /// Flushes a final partial hop (zero-padded) and returns the hops.
    pub fn finish(mut self) -> Vec<AudioHop> {
        if !self.pending.is_empty() {
            let mut hop = std::mem::take(&mut self.pending);
            hop.resize(HOP, 0.0);
            self.analyse_hop(&hop);
        }
        self.hops
    }

    fn analyse_hop(&mut self, hop: &[f32]) {
        let t = self.t0 + self.hops.len() as f64 * HOP as f64 / RATE as f64;
        let _ = self.meter.add_frames_f32(hop);
        let loudness = self
            .meter
            .loudness_momentary()
            .map(|l| (l as f32).max(FLOOR_DB))
            .unwrap_or(FLOOR_DB);
        let power = hop.iter().map(|&s| (s as f64) * (s as f64)).sum::<f64>() / hop.len() as f64;
        let clipped = hop.iter().filter(|s| s.abs() >= 0.999).count() as f32 / hop.len() as f32;

        // Impulse: 10 ms levels against the median of the previous second.
        let mut impulse = 0.0f32;
        let mut impulse_at = 0.0f32;
        let mut peak_db = FLOOR_DB;
        for (k, sub) in hop.chunks(RATE as usize / 100).enumerate() {
            let p = sub.iter().map(|&s| (s as f64).powi(2)).sum::<f64>() / sub.len() as f64;
            let l = db(p);
            peak_db = peak_db.max(l);
            if self.recent_levels.len() >= 50 {
                let mut v: Vec<f32> = self.recent_levels.iter().copied().collect();
                v.sort_by(f32::total_cmp);
                let med = v[v.len() / 2];
                if l - med > impulse {
                    impulse = l - med;
                    impulse_at = k as f32 * 0.01;
                }
            }
            self.recent_levels.push_back(l);
            if self.recent_levels.len() > 100 {
                self.recent_levels.pop_front();
            }
        }

        // Spectrum of the hop (zero-padded to FFT_N, Hann window).
        let n = hop.len();
        for (i, c) in self.spec.iter_mut().enumerate() {
            *c = if i < n {
                let w = 0.5 - 0.5 * (2.0 * std::f32::consts::PI * i as f32 / (n - 1) as f32).cos();
                Complex32::new(hop[i] * w, 0.0)
            } else {
                Complex32::default()
            };
        }
        self.fft.process(&mut self.spec);
        let bin_hz = RATE as f32 / FFT_N as f32;
        let (mut low, mut high) = (0.0f64, 0.0f64);
        let mut shape = Vec::with_capacity(self.held.len());
        for (i, c) in self.spec[..FFT_N / 2].iter().enumerate() {
            let f = i as f32 * bin_hz;
            let e = c.norm_sqr() as f64;
            if (100.0..1000.0).contains(&f) {
                low += e;
            } else if (1000.0..4000.0).contains(&f) {
                high += e;
            }
            if (SHAPE_LOW_HZ..4000.0).contains(&f) {
                shape.push(c.norm());
            }
        }
        let spectrum_hold = cosine(&shape, &self.held);
        self.held = shape;
        let (pitch_hz, voicing) = pitch_and_voicing(hop);
        let high_share = if low + high > 1e-9 {
            (high / (low + high)) as f32
        } else {
            0.0
        };

        self.hops.push(AudioHop {
            t,
            loudness,
            rms_db: db(power),
            high_share,
            pitch_hz,
            voicing,
            impulse_db: impulse,
            impulse_at,
            peak_db,
            clipped,
            speech: 0.0,
            spectrum_hold,
        });
    }
}

/// Lowest frequency of the spectrum compared from hop to hop (under it lie hum and the
/// rumble of traffic and wind).
const SHAPE_LOW_HZ: f32 = 300.0;

/// Cosine similarity of two magnitude spectra (0 when either is silent or they differ in
/// length).
fn cosine(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() || a.is_empty() {
        return 0.0;
    }
    let (mut ab, mut aa, mut bb) = (0.0f64, 0.0f64, 0.0f64);
    for (&x, &y) in a.iter().zip(b) {
        ab += x as f64 * y as f64;
        aa += x as f64 * x as f64;
        bb += y as f64 * y as f64;
    }
    if aa <= 1e-18 || bb <= 1e-18 {
        return 0.0;
    }
    (ab / (aa.sqrt() * bb.sqrt())) as f32
}

/// Fundamental frequency (70–600 Hz) of the strongest 40 ms frame in a hop, by normalised
/// autocorrelation (0 when no frame is clearly periodic), and the peak normalised
/// autocorrelation it was found at (its periodicity; 0 when silent).
pub fn pitch_and_voicing(hop: &[f32]) -> (f32, f32) {
    let frame = (RATE as usize) * 40 / 1000;
    let (min_lag, max_lag) = ((RATE / 600) as usize, (RATE / 70) as usize);
    // Only the strongest frame is examined: it carries the voice when there is one.
    let mut best = None;
    let mut start = 0;
    while start + frame + max_lag <= hop.len() {
        let e: f32 = hop[start..start + frame].iter().map(|v| v * v).sum();
        if best.map(|(be, _)| e > be).unwrap_or(true) {
            best = Some((e, start));
        }
        start += frame / 2;
    }
    let Some((e0, start)) = best else {
        return (0.0, 0.0);
    };
    if e0 < 1e-6 {
        return (0.0, 0.0);
    }
    let x = &hop[start..start + frame];
    let rs: Vec<f32> = (min_lag..=max_lag)
        .map(|lag| {
            let y = &hop[start + lag..start + lag + frame];
            let (mut xy, mut yy) = (0.0f32, 0.0f32);
            for (a, b) in x.iter().zip(y) {
                xy += a * b;
                yy += b * b;
            }
            xy / (e0 * yy).sqrt().max(1e-9)
        })
        .collect();
    let max_r = rs.iter().copied().fold(0.0f32, f32::max);
    if max_r < 0.6 {
        return (0.0, max_r.max(0.0));
    }
    // The first local maximum close to the best (multiples of the period score as high) that
    // rises out of a valley: low-pass noise correlates at short lags without any period.
    let mut valley = rs[0];
    for i in 1..rs.len().saturating_sub(1) {
        valley = valley.min(rs[i]);
        if rs[i] >= 0.85 * max_r
            && rs[i] >= rs[i - 1]
            && rs[i] >= rs[i + 1]
            && rs[i] - valley >= 0.3
        {
            return (RATE as f32 / (min_lag + i) as f32, rs[i]);
        }
    }
    (0.0, max_r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(freq: f32, amp: f32, secs: f32) -> Vec<f32> {
        (0..(secs * RATE as f32) as usize)
            .map(|i| amp * (2.0 * std::f32::consts::PI * freq * i as f32 / RATE as f32).sin())
            .collect()
    }

    #[test]
    fn a_tone_at_a_known_level_gives_the_right_loudness() {
        // A 1 kHz sine at -20 dBFS peak has an RMS of -23 dBFS; K-weighting adds about +0.7 dB
        // at 1 kHz, and mono R128 loudness is -0.691 + 10 log10(mean square): -23.0 LUFS.
        let amp = 10f32.powf(-20.0 / 20.0);
        let mut a = AudioAnalyzer::new();
        a.push(&tone(1000.0, amp, 3.0));
        let hops = a.finish();
        let last = hops[hops.len() - 2];
        assert!(
            (last.loudness - (-23.0)).abs() < 0.3,
            "loudness {}",
            last.loudness
        );
        assert!((last.rms_db - (-23.01)).abs() < 0.1, "rms {}", last.rms_db);
        assert_eq!(last.clipped, 0.0);
        // 10 dB quieter input reads 10 dB lower.
        let mut b = AudioAnalyzer::new();
        b.push(&tone(1000.0, amp / 10f32.powf(0.5), 3.0));
        let hb = b.finish();
        assert!((last.loudness - hb[hb.len() - 2].loudness - 10.0).abs() < 0.2);
    }

    #[test]
    fn a_held_tone_holds_its_spectrum_and_a_gliding_voice_does_not() {
        // A ring: two fixed tones with harmonics, hop after hop.
        let ring: Vec<f32> = (0..RATE as usize)
            .map(|i| {
                let t = i as f32 / RATE as f32;
                let w = |f: f32| (2.0 * std::f32::consts::PI * f * t).sin();
                0.2 * (w(410.0) + w(500.0)) + 0.1 * (w(820.0) + w(1000.0))
            })
            .collect();
        let mut a = AudioAnalyzer::new();
        a.push(&ring);
        let hops = a.finish();
        assert_eq!(hops[0].spectrum_hold, 0.0, "no hop before the first");
        assert!(
            hops[1..].iter().all(|h| h.spectrum_hold > 0.95),
            "{:?}",
            hops.iter().map(|h| h.spectrum_hold).collect::<Vec<_>>()
        );
        // A voice: its pitch glides (here 180 -> 330 Hz over the second) and every harmonic
        // with it, so one 100 ms does not have the spectrum of the one before.
        let mut phase = 0.0f32;
        let voice: Vec<f32> = (0..RATE as usize)
            .map(|i| {
                let f0 = 180.0 + 150.0 * i as f32 / RATE as f32;
                phase += 2.0 * std::f32::consts::PI * f0 / RATE as f32;
                (1..12)
                    .map(|k| (k as f32 * phase).sin() / k as f32)
                    .sum::<f32>()
                    * 0.1
            })
            .collect();
        let mut b = AudioAnalyzer::new();
        b.push(&voice);
        let hops = b.finish();
        let held = hops.iter().filter(|h| h.spectrum_hold >= 0.9).count();
        assert_eq!(
            held,
            0,
            "{:?}",
            hops.iter().map(|h| h.spectrum_hold).collect::<Vec<_>>()
        );
    }

    #[test]
    fn pitch_of_a_harmonic_tone() {
        let mut x = tone(220.0, 0.3, 0.1);
        for (i, v) in tone(440.0, 0.15, 0.1).iter().enumerate() {
            x[i] += v;
        }
        let f0 = pitch_and_voicing(&x).0;
        assert!((f0 - 220.0).abs() < 5.0, "f0 {f0}");
        let mut x: u32 = 2463534242;
        let noise: Vec<f32> = (0..HOP)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                (x as f32 / u32::MAX as f32 - 0.5) * 0.3
            })
            .collect();
        assert_eq!(pitch_and_voicing(&noise).0, 0.0);
        // Low-pass noise (a leaky integral of white noise) correlates at short lags but has
        // no period either.
        let mut acc = 0.0f32;
        let brown: Vec<f32> = noise
            .iter()
            .map(|v| {
                acc = 0.95 * acc + v;
                acc
            })
            .collect();
        assert_eq!(pitch_and_voicing(&brown).0, 0.0);
    }

    #[test]
    fn a_bang_after_quiet_reads_as_an_impulse_and_full_scale_as_clipping() {
        let mut x = tone(300.0, 0.01, 2.0);
        x.extend(std::iter::repeat(1.0f32).take(400));
        x.extend(tone(300.0, 0.01, 0.5));
        let mut a = AudioAnalyzer::new();
        a.push(&x);
        let hops = a.finish();
        let max_imp = hops.iter().map(|h| h.impulse_db).fold(0.0, f32::max);
        assert!(max_imp > 30.0, "impulse {max_imp}");
        assert!(hops.iter().any(|h| h.clipped > 0.0));
        // The steady part before the bang shows none.
        assert!(hops[12].impulse_db < 3.0);
    }

    #[test]
    fn high_share_rises_with_brighter_spectra() {
        let mut a = AudioAnalyzer::new();
        a.push(&tone(300.0, 0.3, 0.2));
        let mut b = AudioAnalyzer::new();
        b.push(&tone(2500.0, 0.3, 0.2));
        let ha = a.finish();
        let hb = b.finish();
        assert!(ha[1].high_share < 0.1 && hb[1].high_share > 0.9);
    }
}
