//! The voice over time: how long a loud sound lasts, and a sustained rise of the voice level
//! (rising tension) with the moment it began.

use super::second::{median, Second};
use super::thresholds::*;

/// Sets each second's `loud_run_s`: the length of the run of consecutive seconds with
/// loudness at or over `level` that holds it.
pub(super) fn mark_loud_runs(secs: &mut [Second], level: f32) {
    let mut i = 0;
    while i < secs.len() {
        if secs[i].has_audio && secs[i].loudness >= level {
            let start = i;
            while i < secs.len() && secs[i].has_audio && secs[i].loudness >= level {
                i += 1;
            }
            for s in &mut secs[start..i] {
                s.loud_run_s = (i - start) as f32;
            }
        } else {
            secs[i].loud_run_s = 0.0;
            i += 1;
        }
    }
}

/// A sustained rise of the voice level up to one second.
#[derive(Debug, Clone, Copy)]
pub struct Tension {
    /// dB over the lowest point 30–90 s back.
    pub rise_db: f32,
    /// dB over the file's speech level.
    pub over_db: f32,
    /// When the rise began, seconds.
    pub from: f64,
}

/// Per second, its loudness when it sounds like a voice: VAD speech whose level moves, with no
/// steady pitch (a siren or a horn that the VAD takes for speech does not count).
fn voice_levels(secs: &[Second]) -> Vec<Option<f32>> {
    secs.iter()
        .map(|s| {
            (s.has_audio && s.speech >= 0.5 && s.env_mod >= SHOUT_MIN_ENV_DB && !s.tone)
                .then_some(s.loudness)
        })
        .collect()
}

/// The voice-level trend: per second, the median of the voice levels in the
/// `TENSION_SMOOTH_S` window around it (`None` with fewer than a quarter of them voiced).
fn voice_trend(voice: &[Option<f32>]) -> Vec<Option<f32>> {
    let half = TENSION_SMOOTH_S / 2;
    (0..voice.len())
        .map(|i| {
            let mut w: Vec<f32> = voice[i.saturating_sub(half)..(i + half + 1).min(voice.len())]
                .iter()
                .flatten()
                .copied()
                .collect();
            if w.len() * 4 < TENSION_SMOOTH_S {
                return None;
            }
            median(&mut w)
        })
        .collect()
}

/// Per second, the rise of the voice trend over its lowest point `TENSION_MIN_S`..
/// `TENSION_MAX_S` seconds back, and when that rise began.
pub fn tensions(secs: &[Second], speech_level: f32) -> Vec<Option<Tension>> {
    let voice = voice_levels(secs);
    let trend = voice_trend(&voice);
    (0..secs.len())
        .map(|i| {
            let now = trend[i]?;
            if i < TENSION_MIN_S {
                return None;
            }
            let lo = i.saturating_sub(TENSION_MAX_S);
            let (at, low) = (lo..=i - TENSION_MIN_S)
                .filter_map(|j| trend[j].map(|v| (j, v)))
                .min_by(|a, b| a.1.total_cmp(&b.1))?;
            // Where no break point fits (too few voiced seconds), from the lowest point.
            let from = hinge(&voice[lo..=i]).map_or(at as f64, |k| (lo + k) as f64);
            Some(Tension {
                rise_db: now - low,
                over_db: now - speech_level,
                from: secs[0].t + from,
            })
        })
        .collect()
}

/// Where a flat level turns into a steady climb: the break point of the least-squares fit of
/// `level = a + b·max(0, t − k)` to the voiced seconds of `levels` (index into it).
fn hinge(levels: &[Option<f32>]) -> Option<usize> {
    let pts: Vec<(f32, f32)> = levels
        .iter()
        .enumerate()
        .filter_map(|(t, v)| v.map(|v| (t as f32, v)))
        .collect();
    if pts.len() < 16 {
        return None;
    }
    let mut best: Option<(f32, usize)> = None;
    // At least 8 voiced seconds on each side of the break: a level is not read from fewer.
    let first = pts.get(7).map_or(levels.len(), |p| p.0 as usize);
    let last = pts.len().checked_sub(8).map_or(0, |i| pts[i].0 as usize);
    for k in first..last.max(first) {
        // Regress level on x = max(0, t − k).
        let n = pts.len() as f32;
        let xs: Vec<f32> = pts.iter().map(|p| (p.0 - k as f32).max(0.0)).collect();
        let mx = xs.iter().sum::<f32>() / n;
        let my = pts.iter().map(|p| p.1).sum::<f32>() / n;
        let sxx: f32 = xs.iter().map(|x| (x - mx).powi(2)).sum();
        if sxx <= 0.0 {
            continue;
        }
        let sxy: f32 = xs
            .iter()
            .zip(&pts)
            .map(|(x, p)| (x - mx) * (p.1 - my))
            .sum();
        let b = sxy / sxx;
        let a = my - b * mx;
        let sse: f32 = xs
            .iter()
            .zip(&pts)
            .map(|(x, p)| (p.1 - a - b * x).powi(2))
            .sum();
        if b > 0.0 && best.map_or(true, |(e, _)| sse < e) {
            best = Some((sse, k));
        }
    }
    best.map(|(_, k)| k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rise_with_too_few_voiced_seconds_for_a_break_point_is_timed_from_its_lowest_point() {
        // Eight voiced seconds at 20..28 s, then a louder voice from 60 s: on second 62 the
        // 90 s before hold 11 voiced seconds, too few to fit where the climb began.
        let secs: Vec<Second> = (0..120)
            .map(|i| {
                let voiced = (20..28).contains(&i) || i >= 60;
                Second {
                    t: i as f64,
                    has_audio: true,
                    loudness: if i >= 60 { -20.0 } else { -30.0 },
                    speech: if voiced { 0.9 } else { 0.0 },
                    env_mod: 4.0,
                    ..Default::default()
                }
            })
            .collect();
        let t = tensions(&secs, -30.0)[62].expect("a rise on second 62");
        assert!(t.rise_db >= 7.0, "{t:?}");
        // Not from the window's start (0 s) but from the first second the low level is read.
        assert!((10.0..=28.0).contains(&t.from), "{t:?}");
    }
}
