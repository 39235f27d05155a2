//! Per-second signals: the audio hops and the camera's motion summed up second by second,
//! and the file-level references (baseline) that the scores are relative to.

use serde::Serialize;

use super::audio::{AudioHop, FLOOR_DB};
use super::cadence::cadence;
use super::thresholds::*;
use crate::motion::FrameMotion;

pub(super) fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

pub(super) fn median(v: &mut [f32]) -> Option<f32> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f32::total_cmp);
    Some(v[v.len() / 2])
}

/// Robust centre and spread (median, 1.4826·MAD) with a floor on the spread.
pub(super) fn robust(v: &[f32], floor: f32) -> (f32, f32) {
    let mut a: Vec<f32> = v.to_vec();
    let Some(m) = median(&mut a) else {
        return (0.0, floor);
    };
    let mut d: Vec<f32> = v.iter().map(|x| (x - m).abs()).collect();
    let mad = median(&mut d).unwrap_or(0.0);
    (m, (1.4826 * mad).max(floor))
}

/// Signals for one second of footage.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Second {
    pub t: f64,
    pub has_audio: bool,
    pub has_video: bool,
    /// Max momentary loudness, LUFS.
    pub loudness: f32,
    /// Mean VAD speech probability.
    pub speech: f32,
    /// Mean high-band share over the loudest hops.
    pub high_share: f32,
    /// Median voiced pitch, Hz (0 when none).
    pub pitch_hz: f32,
    /// Strongest impulse that passes the decay test, dB over the preceding second.
    pub impulse_db: f32,
    /// Level of the hop holding that impulse over the speech median, dB.
    pub impulse_over_speech_db: f32,
    /// When that impulse happened, seconds.
    pub impulse_t: f64,
    /// VAD speech probability around that impulse (its hop and the next).
    pub impulse_speech: f32,
    /// Mean periodicity (peak normalised autocorrelation) of the louder half of the hops.
    pub voicing: f32,
    /// Mean hop-to-hop change of the 100 ms level over the 3 s around this second, dB.
    pub env_mod: f32,
    /// The loud hops around this second hold one or two pitches, or one spectrum from hop to
    /// hop: a tone, not a voice.
    pub tone: bool,
    /// Length in seconds of the run of seconds at least `SHOUT_LOUD_DB − SHOUT_RUN_BELOW_DB`
    /// over the speech level that holds this one (0 when it is not that loud); set by [`fuse`].
    pub loud_run_s: f32,
    pub clipped: f32,
    /// Mean motion speed, fraction of the frame per frame.
    pub speed: f32,
    /// Mean jerk (change of motion between frames) over the second's frames but the
    /// `SHAKE_DROP_FRAMES` largest, fraction of the frame per frame.
    pub jerk: f32,
    pub diff: f32,
    pub luma: f32,
    pub sharpness: f32,
    pub band_share: f64,
    pub peakiness: f64,
    pub cadence_hz: f64,
    pub bob_rms: f64,
    pub low_evidence: bool,
}

/// Builds per-second signals from audio hops and frame motion. `duration` in seconds.
pub fn seconds(hops: &[AudioHop], frames: &[FrameMotion], duration: f64) -> Vec<Second> {
    let n = duration.ceil().max(1.0) as usize;
    let mut out: Vec<Second> = (0..n)
        .map(|i| Second {
            t: i as f64,
            ..Default::default()
        })
        .collect();
    // The speech peak level: the median over the hops the VAD calls speech of their loudest
    // 10 ms (all hops when none is speech).
    let mut speech_peaks: Vec<f32> = hops
        .iter()
        .filter(|h| h.speech >= 0.5)
        .map(|h| h.peak_db)
        .collect();
    let mut all_peaks: Vec<f32> = hops.iter().map(|h| h.peak_db).collect();
    let speech_peak = median(&mut speech_peaks)
        .or_else(|| median(&mut all_peaks))
        .unwrap_or(-40.0);
    for (k, h) in hops.iter().enumerate() {
        // A hop belongs to the second its impulse (if any) or its middle falls in.
        let at = if h.impulse_db >= IMPULSE_JUMP_DB * 0.5 {
            h.t + h.impulse_at as f64
        } else {
            h.t + 0.05
        };
        let i = (at.max(0.0) as usize).min(n - 1);
        let s = &mut out[i];
        if !s.has_audio {
            s.has_audio = true;
            s.loudness = h.loudness;
        }
        s.loudness = s.loudness.max(h.loudness);
        s.speech += h.speech / 10.0;
        s.clipped = s.clipped.max(h.clipped);
        // Impulse: fast rise, far over speech, and decaying (within 300 ms for a shot or a
        // slam, within 1 s for an explosion's rumble).
        if h.impulse_db >= IMPULSE_JUMP_DB * 0.5 {
            let later = |j: usize| hops.get(k + j).map(|l| l.rms_db).unwrap_or(FLOOR_DB);
            let decay = h.rms_db - later(3).min(later(10));
            let over = h.peak_db - speech_peak;
            if decay >= IMPULSE_DECAY_DB && h.impulse_db > s.impulse_db {
                s.impulse_db = h.impulse_db;
                s.impulse_over_speech_db = over;
                s.impulse_t = h.t + h.impulse_at as f64;
                s.impulse_speech = h
                    .speech
                    .max(hops.get(k + 1).map(|n| n.speech).unwrap_or(0.0));
            }
        }
    }
    // High share and pitch from the louder half of each second's hops.
    for s in out.iter_mut() {
        let lo = (s.t * 10.0) as usize;
        let sec_hops: Vec<&AudioHop> = hops
            .iter()
            .skip(lo.saturating_sub(2))
            .take(14)
            .filter(|h| h.t >= s.t && h.t < s.t + 1.0)
            .collect();
        if sec_hops.is_empty() {
            continue;
        }
        let mut levels: Vec<f32> = sec_hops.iter().map(|h| h.rms_db).collect();
        let mid = median(&mut levels).unwrap_or(0.0);
        let loud: Vec<&&AudioHop> = sec_hops.iter().filter(|h| h.rms_db >= mid).collect();
        s.high_share = loud.iter().map(|h| h.high_share).sum::<f32>() / loud.len() as f32;
        s.voicing = loud.iter().map(|h| h.voicing).sum::<f32>() / loud.len() as f32;
        let mut p: Vec<f32> = sec_hops
            .iter()
            .map(|h| h.pitch_hz)
            .filter(|&p| p > 0.0)
            .collect();
        // A voice is pitched for a good part of a second; a stray pitched hop is not one.
        if p.len() >= 3 {
            s.pitch_hz = median(&mut p).unwrap_or(0.0);
        }
        let around: Vec<&AudioHop> = hops
            .iter()
            .skip(lo.saturating_sub(12))
            .take(34)
            .filter(|h| h.t >= s.t - 1.0 && h.t < s.t + 2.0)
            .collect();
        s.env_mod = level_movement(&around);
        // The pitch of what is loud around the second: the hops of the 3 s within 4 dB of the
        // loudest.
        let top = around.iter().map(|h| h.rms_db).fold(f32::MIN, f32::max);
        let loudest: Vec<&AudioHop> = around
            .iter()
            .filter(|h| h.rms_db >= top - 4.0)
            .copied()
            .collect();
        s.tone = steady_pitch(&loudest) || held_spectrum(&loudest);
    }
    add_video(&mut out, frames, n);
    out
}

/// Adds the camera's motion to the seconds: speed, jerk (without its largest frames),
/// frame difference, luma, sharpness and the running cadence.
fn add_video(out: &mut [Second], frames: &[FrameMotion], n: usize) {
    let fps = if frames.len() >= 2 {
        let span = frames[frames.len() - 1].t - frames[0].t;
        if span > 0.0 {
            (frames.len() - 1) as f64 / span
        } else {
            30.0
        }
    } else {
        30.0
    };
    let mut counts = vec![0usize; n];
    let mut jerks: Vec<Vec<f32>> = vec![Vec::new(); n];
    for (k, f) in frames.iter().enumerate() {
        let i = (f.t.max(0.0) as usize).min(n - 1);
        let s = &mut out[i];
        s.has_video = true;
        counts[i] += 1;
        s.speed += (f.dx * f.dx + f.dy * f.dy).sqrt();
        if k >= 2 {
            let p = &frames[k - 1];
            jerks[i].push(((f.dx - p.dx).powi(2) + (f.dy - p.dy).powi(2)).sqrt());
        }
        s.diff += f.diff;
        s.luma += f.luma;
        s.sharpness += f.sharpness;
    }
    let dy: Vec<f32> = frames.iter().map(|f| f.dy).collect();
    let half = (CADENCE_WINDOW_S * fps / 2.0) as usize;
    let mut fi = 0usize;
    for (i, s) in out.iter_mut().enumerate() {
        let c = counts[i] as f32;
        if c > 0.0 {
            s.speed /= c;
            // The mean over the second's frames but its SHAKE_DROP_FRAMES largest: a struggle
            // shakes the camera frame after frame; a person crossing close to the lens, who
            // drags the global estimate on and off, makes one or two jumps.
            s.jerk = trimmed_mean(&mut jerks[i], SHAKE_DROP_FRAMES);
            s.diff /= c;
            s.luma /= c;
            s.sharpness /= c;
            s.low_evidence = s.luma < DARK_LUMA || s.sharpness < BLUR_VAR;
            // Cadence over a window centred on this second.
            while fi < frames.len() && frames[fi].t < s.t + 0.5 {
                fi += 1;
            }
            let lo = fi.saturating_sub(half);
            let hi = (fi + half).min(dy.len());
            let cd = cadence(&dy[lo..hi], fps);
            s.band_share = cd.band_share;
            s.peakiness = cd.peakiness;
            s.cadence_hz = cd.peak_hz;
            s.bob_rms = cd.rms;
        }
    }
}

/// The mean of `v` without its `drop` largest values (all of them when fewer than 3 would
/// remain).
fn trimmed_mean(v: &mut [f32], drop: usize) -> f32 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f32::total_cmp);
    let keep = if v.len() >= drop + 3 {
        &v[..v.len() - drop]
    } else {
        &v[..]
    };
    keep.iter().sum::<f32>() / keep.len() as f32
}

/// How a stretch of hops moves: the mean hop-to-hop level change (dB) over the span from the
/// first to the last hop within 20 dB of the loudest (one hop more each side, levels floored 25
/// dB under the loudest). Measured over the loud span so that a short scream in a quiet window
/// counts its own rise and fall, not the quiet.
pub(super) fn level_movement(hops: &[&AudioHop]) -> f32 {
    let peak = hops.iter().map(|h| h.rms_db).fold(f32::MIN, f32::max);
    let floor = peak - 25.0;
    let loud = |h: &&&AudioHop| h.rms_db >= peak - 20.0;
    let first = hops.iter().position(|h| loud(&h)).unwrap_or(0);
    let last = hops.iter().rposition(|h| loud(&h)).unwrap_or(0);
    let span = &hops[first.saturating_sub(1)..(last + 2).min(hops.len())];
    if span.len() < 2 {
        return 0.0;
    }
    span.windows(2)
        .map(|w| (w[1].rms_db.max(floor) - w[0].rms_db.max(floor)).abs())
        .sum::<f32>()
        / (span.len() - 1) as f32
}

/// True when at least 4 `hops` are given and `SHOUT_HELD_SHARE` of them hold their spectrum
/// from the hop before (see [`AudioHop::spectrum_hold`]): a horn or a ring whose pitch the
/// tracker reads as several notes (two simultaneous tones, octave and subharmonic errors) still
/// holds one spectrum.
pub(super) fn held_spectrum(hops: &[&AudioHop]) -> bool {
    if hops.len() < 4 {
        return false;
    }
    let held = hops
        .iter()
        .filter(|h| h.spectrum_hold >= SHOUT_HELD_SPECTRUM)
        .count();
    held as f32 >= SHOUT_HELD_SHARE * hops.len() as f32
}

/// True when the voiced hops hold one or two fixed pitches (a horn, a ring, a two-tone
/// alarm): at least 4 voiced hops, and `SHOUT_TONE_SHARE` of them within 2% (octave errors of
/// the tracker forgiven) of one of their two most common pitches. A voice, a shout or a scream
/// glides through many.
pub(super) fn steady_pitch(hops: &[&AudioHop]) -> bool {
    let p: Vec<f32> = hops
        .iter()
        .map(|h| h.pitch_hz)
        .filter(|&p| p > 0.0)
        .collect();
    if p.len() < 4 {
        return false;
    }
    let near = |a: f32, b: f32| {
        let d = (a / b).log2().abs();
        (d - d.round()).abs() < SHOUT_STEADY_PITCH_OCT
    };
    let support = |c: f32| p.iter().filter(|&&x| near(x, c)).count();
    let best = p.iter().copied().max_by_key(|&c| support(c)).unwrap_or(0.0);
    let rest: Vec<f32> = p.iter().copied().filter(|&x| !near(x, best)).collect();
    let second = rest
        .iter()
        .copied()
        .max_by_key(|&c| rest.iter().filter(|&&x| near(x, c)).count());
    let held = p
        .iter()
        .filter(|&&x| near(x, best) || second.is_some_and(|c| near(x, c)))
        .count();
    held as f32 >= SHOUT_TONE_SHARE * p.len() as f32
}

/// One reason a kind scored.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Reason {
    pub signal: String,
    pub value: f64,
    pub text: String,
}

pub(super) fn reason(signal: &str, value: f64, text: String) -> Reason {
    Reason {
        signal: signal.into(),
        value: (value * 1000.0).round() / 1000.0,
        text,
    }
}

/// File-level references the scores are relative to.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Baseline {
    pub speech_loudness: f32,
    pub speech_pitch_hz: f32,
    pub speech_high_share: f32,
    pub jerk_median: f32,
    pub jerk_spread: f32,
}

pub fn baseline(secs: &[Second]) -> Baseline {
    let speechy: Vec<&Second> = secs
        .iter()
        .filter(|s| s.has_audio && s.speech >= 0.3)
        .collect();
    let pick = |f: &dyn Fn(&Second) -> f32, fallback: &dyn Fn(&Second) -> bool| {
        let mut v: Vec<f32> = speechy
            .iter()
            .map(|s| f(s))
            .filter(|x| *x > -80.0)
            .collect();
        if v.len() < 3 {
            v = secs
                .iter()
                .filter(|s| fallback(s))
                .map(f)
                .filter(|x| *x > -80.0)
                .collect();
        }
        median(&mut v)
    };
    let speech_loudness = pick(&|s| s.loudness, &|s| s.has_audio).unwrap_or(-30.0);
    let mut pitches: Vec<f32> = speechy
        .iter()
        .map(|s| s.pitch_hz)
        .filter(|&p| p > 0.0)
        .collect();
    let speech_pitch_hz = median(&mut pitches).unwrap_or(0.0);
    let speech_high_share = pick(&|s| s.high_share, &|s| s.has_audio).unwrap_or(0.3);
    let jerks: Vec<f32> = secs
        .iter()
        .filter(|s| s.has_video)
        .map(|s| s.jerk)
        .collect();
    let (jerk_median, jerk_spread) = robust(&jerks, 0.002);
    Baseline {
        speech_loudness,
        speech_pitch_hz,
        speech_high_share,
        jerk_median,
        jerk_spread,
    }
}
