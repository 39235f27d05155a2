//! Fusion: per-second signals → per-kind scores (0..1) → events with hysteresis → highlights
//! with pre-roll and post-roll.
//!
//! Every threshold is a named constant below. They were set on the project's synthetic event
//! set (`scripts/make-event-clips.sh`) and are meant to be conservative on calm footage; the
//! `sensitivity` knob moves the trigger level for all kinds at once.

use serde::Serialize;

use super::audio::AudioHop;
use super::cadence::cadence;
use crate::motion::FrameMotion;

/// The kinds of highlight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Shouting,
    LoudImpulse,
    Struggle,
    Running,
    RisingTension,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Shouting,
        Kind::LoudImpulse,
        Kind::Struggle,
        Kind::Running,
        Kind::RisingTension,
    ];
    pub fn name(self) -> &'static str {
        match self {
            Kind::Shouting => "shouting",
            Kind::LoudImpulse => "loud_impulse",
            Kind::Struggle => "struggle",
            Kind::Running => "running",
            Kind::RisingTension => "rising_tension",
        }
    }
    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == s)
    }
    pub fn label(self) -> &'static str {
        match self {
            Kind::Shouting => "Shouting",
            Kind::LoudImpulse => "Loud impulse",
            Kind::Struggle => "Struggle",
            Kind::Running => "Running / pursuit",
            Kind::RisingTension => "Rising tension",
        }
    }
}

// ---- Documented constants -------------------------------------------------------------

/// Shouting: momentary loudness this many dB over the file's median speech loudness is the
/// midpoint of the loudness term (a raised voice is ~+6 dB, a shout +10 dB or more).
pub const SHOUT_LOUD_DB: f32 = 9.0;
/// Shouting: pitch this many times the median speech pitch adds evidence of vocal effort.
pub const SHOUT_PITCH_RATIO: f32 = 1.25;
/// Impulse: a 10 ms level at least this many dB over the median of the previous second…
pub const IMPULSE_JUMP_DB: f32 = 18.0;
/// …that also peaks this many dB over the file's median speech peak level…
pub const IMPULSE_OVER_SPEECH_DB: f32 = 6.0;
/// …and has fallen by this many dB 300 ms later (a bang decays; a shout is sustained).
pub const IMPULSE_DECAY_DB: f32 = 8.0;
/// Extra dB over speech an impulse needs per unit of VAD speech probability around it: the
/// onset of a word after a pause is also a fast rise, but the VAD calls it speech.
pub const IMPULSE_SPEECH_PENALTY_DB: f32 = 10.0;
/// Struggle: frame-to-frame jerk, in robust z-scores over the file, at the midpoint.
pub const SHAKE_Z: f32 = 5.0;
/// Struggle: and at least this much jerk in absolute terms (fraction of the frame per frame).
pub const SHAKE_MIN_JERK: f32 = 0.012;
/// Running: share of 0.7–8 Hz vertical-motion power in the 2–3.5 Hz band, at the midpoint.
pub const RUN_BAND_SHARE: f64 = 0.45;
/// Running: spectral peak over mean (a rhythm, not noise), at the midpoint.
pub const RUN_PEAKINESS: f64 = 6.0;
/// Running: vertical-motion RMS floor (fraction of frame height per frame). Walking with a
/// chest camera bobs ~1–2% of the frame at ~2 Hz (about 0.004 here); running bobs 3–6% at
/// 2.5–3.5 Hz (0.012–0.03).
pub const RUN_MIN_RMS: f64 = 0.008;
/// Running: the cadence peak must be at least this fast (walking steps are 1.6–2.1 Hz).
pub const RUN_MIN_HZ: f64 = 2.2;
/// Cadence window, seconds.
pub const CADENCE_WINDOW_S: f64 = 4.0;
/// Rising tension: slope of speech loudness over the trend window, dB per minute.
pub const TENSION_SLOPE_DB_PER_MIN: f32 = 8.0;
/// Rising tension: trend window, seconds (30–90 s per the spec).
pub const TENSION_WINDOW_S: usize = 60;
/// Score that starts an event at sensitivity 0.5 (the default).
pub const ON_SCORE: f32 = 0.6;
/// Score below which an event ends (hysteresis).
pub const OFF_GAP: f32 = 0.25;
/// Events closer than this (seconds) merge into one highlight.
pub const MERGE_GAP_S: f64 = 4.0;
/// Lead-up shown before the onset, seconds.
pub const PRE_ROLL_S: f64 = 10.0;
/// Shown after the event ends, seconds.
pub const POST_ROLL_S: f64 = 5.0;
/// Darkness: mean luma below this marks low evidence.
pub const DARK_LUMA: f32 = 30.0;
/// Blur or blocking: Laplacian variance below this marks low evidence.
pub const BLUR_VAR: f32 = 15.0;

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

fn median(v: &mut [f32]) -> Option<f32> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f32::total_cmp);
    Some(v[v.len() / 2])
}

/// Robust centre and spread (median, 1.4826·MAD) with a floor on the spread.
fn robust(v: &[f32], floor: f32) -> (f32, f32) {
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
    pub clipped: f32,
    /// Mean motion speed, fraction of the frame per frame.
    pub speed: f32,
    /// Mean jerk (change of motion between frames), fraction of the frame per frame.
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
    // Speech reference levels: peak 10 ms levels (approximated by rms + impulse) on hops the
    // VAD calls speech.
    let speech_hops: Vec<&AudioHop> = hops.iter().filter(|h| h.speech >= 0.5).collect();
    let mut speech_rms: Vec<f32> = speech_hops.iter().map(|h| h.rms_db).collect();
    let mut all_rms: Vec<f32> = hops.iter().map(|h| h.rms_db).collect();
    let speech_rms_med = median(&mut speech_rms)
        .or_else(|| median(&mut all_rms))
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
        // Impulse: fast rise, far over speech, and decaying.
        if h.impulse_db >= IMPULSE_JUMP_DB * 0.5 {
            let later = hops
                .get(k + 3)
                .map(|l| l.rms_db)
                .unwrap_or(super::audio::FLOOR_DB);
            let decay = h.rms_db - later;
            let over = h.rms_db - speech_rms_med;
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
        let mut p: Vec<f32> = sec_hops
            .iter()
            .map(|h| h.pitch_hz)
            .filter(|&p| p > 0.0)
            .collect();
        // A voice is pitched for a good part of a second; a stray pitched hop is not one.
        if p.len() >= 3 {
            s.pitch_hz = median(&mut p).unwrap_or(0.0);
        }
    }
    // Video.
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
    for (k, f) in frames.iter().enumerate() {
        let i = (f.t.max(0.0) as usize).min(n - 1);
        let s = &mut out[i];
        s.has_video = true;
        counts[i] += 1;
        s.speed += (f.dx * f.dx + f.dy * f.dy).sqrt();
        if k >= 2 {
            let p = &frames[k - 1];
            s.jerk += ((f.dx - p.dx).powi(2) + (f.dy - p.dy).powi(2)).sqrt();
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
            s.jerk /= c;
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
    out
}

/// One reason a kind scored.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Reason {
    pub signal: String,
    pub value: f64,
    pub text: String,
}

fn reason(signal: &str, value: f64, text: String) -> Reason {
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

/// Per-kind scores for one second, with the reasons behind each.
pub fn score(s: &Second, b: &Baseline, trend_slope: Option<f32>) -> Vec<(Kind, f32, Vec<Reason>)> {
    let mut out = Vec::new();
    if s.has_audio {
        let over = s.loudness - b.speech_loudness;
        let pitch_ratio = if b.speech_pitch_hz > 0.0 && s.pitch_hz > 0.0 {
            s.pitch_hz / b.speech_pitch_hz
        } else {
            1.0
        };
        let bright = s.high_share - b.speech_high_share;
        // A shout is a voice: the VAD says speech, or the second has a clear pitch (screams
        // can fall outside what the VAD calls speech). Bangs and noise have neither.
        let voiced = s.speech.max(if s.pitch_hz > 0.0 { 0.8 } else { 0.0 });
        let x = (over - SHOUT_LOUD_DB) / 2.0
            + 1.5 * ((pitch_ratio - SHOUT_PITCH_RATIO) / 0.3).clamp(-1.0, 1.0)
            + 1.0 * (bright / 0.1).clamp(-1.0, 1.0);
        let sc = sigmoid(x) * voiced.clamp(0.0, 1.0);
        out.push((
            Kind::Shouting,
            sc,
            vec![
                reason(
                    "loudness_over_speech_db",
                    over as f64,
                    format!("voice {over:+.1} dB over the file's speech level"),
                ),
                reason(
                    "pitch_ratio",
                    pitch_ratio as f64,
                    format!("pitch {:.0} Hz ({pitch_ratio:.2}x usual)", s.pitch_hz),
                ),
                reason(
                    "high_band_share",
                    s.high_share as f64,
                    format!(
                        "high-band share {:.2} (usual {:.2})",
                        s.high_share, b.speech_high_share
                    ),
                ),
                reason(
                    "speech",
                    s.speech as f64,
                    format!("speech probability {:.2}", s.speech),
                ),
            ],
        ));
        let need = IMPULSE_OVER_SPEECH_DB + IMPULSE_SPEECH_PENALTY_DB * s.impulse_speech;
        let imp = sigmoid((s.impulse_db - IMPULSE_JUMP_DB) / 2.0)
            * sigmoid((s.impulse_over_speech_db - need) / 2.0);
        // Clipping supports an impulse but cannot trigger one alone (a loud voice clips too).
        let clip = if s.clipped > 0.002 { 0.5 } else { 0.0 };
        out.push((
            Kind::LoudImpulse,
            imp.max(clip * sigmoid(s.impulse_db - 10.0)),
            vec![
                reason(
                    "impulse_db",
                    s.impulse_db as f64,
                    format!("level jumped {:.1} dB in 10 ms", s.impulse_db),
                ),
                reason(
                    "impulse_over_speech_db",
                    s.impulse_over_speech_db as f64,
                    format!("{:+.1} dB over the speech level", s.impulse_over_speech_db),
                ),
                reason(
                    "impulse_speech",
                    s.impulse_speech as f64,
                    format!("speech probability {:.2} around it", s.impulse_speech),
                ),
                reason(
                    "clipped_share",
                    s.clipped as f64,
                    format!("{:.2}% of samples at full scale", 100.0 * s.clipped),
                ),
            ],
        ));
        if let Some(slope) = trend_slope {
            let sc = sigmoid((slope - TENSION_SLOPE_DB_PER_MIN) / 2.0)
                * sigmoid((over - 3.0) / 1.5)
                * voiced.clamp(0.0, 1.0).sqrt();
            out.push((
                Kind::RisingTension,
                sc,
                vec![reason(
                    "loudness_slope_db_per_min",
                    slope as f64,
                    format!("speech level rising {slope:.1} dB/min over {TENSION_WINDOW_S} s"),
                )],
            ));
        }
    }
    if s.has_video {
        let z = (s.jerk - b.jerk_median) / b.jerk_spread;
        let periodic = (s.band_share > RUN_BAND_SHARE && s.peakiness > RUN_PEAKINESS) as i32 as f32;
        let sc = sigmoid((z - SHAKE_Z) / 1.5)
            * sigmoid((s.jerk - SHAKE_MIN_JERK) / (SHAKE_MIN_JERK * 0.25))
            * (1.0 - 0.7 * periodic);
        out.push((
            Kind::Struggle,
            sc,
            vec![
                reason(
                    "jerk_z",
                    z as f64,
                    format!("camera jerk {z:.1} robust SDs over usual"),
                ),
                reason(
                    "jerk",
                    s.jerk as f64,
                    format!("{:.1}% of the frame per frame", 100.0 * s.jerk),
                ),
                reason(
                    "frame_diff",
                    s.diff as f64,
                    format!("frame difference {:.1}", s.diff),
                ),
            ],
        ));
        let fast = if s.cadence_hz >= RUN_MIN_HZ { 1.0 } else { 0.0 };
        let run = fast
            * sigmoid(((s.band_share - RUN_BAND_SHARE) / 0.08) as f32)
            * sigmoid(((s.peakiness - RUN_PEAKINESS) / 1.5) as f32)
            * sigmoid(((s.bob_rms - RUN_MIN_RMS) / (RUN_MIN_RMS * 0.25)) as f32);
        out.push((
            Kind::Running,
            run,
            vec![
                reason(
                    "cadence_hz",
                    s.cadence_hz,
                    format!("vertical bob at {:.1} Hz", s.cadence_hz),
                ),
                reason(
                    "band_share",
                    s.band_share,
                    format!("{:.0}% of the bob in 2–3.5 Hz", 100.0 * s.band_share),
                ),
                reason(
                    "bob_rms",
                    s.bob_rms,
                    format!("bob {:.2}% of frame height", 100.0 * s.bob_rms),
                ),
            ],
        ));
    }
    out
}

/// Least-squares slope (per minute) of speech loudness over the `TENSION_WINDOW_S` seconds
/// ending at each second; `None` until the window is full or when too little of it is speech.
pub fn tension_slopes(secs: &[Second]) -> Vec<Option<f32>> {
    (0..secs.len())
        .map(|i| {
            if i + 1 < TENSION_WINDOW_S {
                return None;
            }
            let w = &secs[i + 1 - TENSION_WINDOW_S..=i];
            let pts: Vec<(f32, f32)> = w
                .iter()
                .filter(|s| s.has_audio && s.speech >= 0.5)
                .map(|s| (s.t as f32, s.loudness))
                .collect();
            if pts.len() < TENSION_WINDOW_S / 3 {
                return None;
            }
            let n = pts.len() as f32;
            let mx = pts.iter().map(|p| p.0).sum::<f32>() / n;
            let my = pts.iter().map(|p| p.1).sum::<f32>() / n;
            let sxy: f32 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
            let sxx: f32 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
            (sxx > 0.0).then(|| sxy / sxx * 60.0)
        })
        .collect()
}

/// A detected event of one kind, before merging.
#[derive(Debug, Clone)]
pub struct Event {
    pub kind: Kind,
    pub onset: f64,
    pub end: f64,
    pub peak: f64,
    pub score: f32,
    pub reasons: Vec<Reason>,
    pub low_evidence: bool,
}

/// A highlight as written to highlights.json.
#[derive(Debug, Clone, Serialize)]
pub struct Highlight {
    pub id: usize,
    pub kind: Kind,
    /// Other kinds that fired within this highlight.
    pub also: Vec<Kind>,
    pub start: f64,
    pub onset: f64,
    pub peak: f64,
    pub end: f64,
    pub score: f32,
    pub reasons: Vec<Reason>,
    /// The picture was too dark, blurred or blocked for the video signals to be trusted.
    pub low_evidence: bool,
}

/// Trigger level for a sensitivity in 0..1 (0.5 is the default).
pub fn on_threshold(sensitivity: f32) -> f32 {
    (ON_SCORE + 0.4 * (0.5 - sensitivity.clamp(0.0, 1.0))).clamp(0.2, 0.95)
}

/// Per-kind score tracks (one value per second) and the events found in them.
pub struct Fused {
    pub scores: Vec<(Kind, Vec<f32>)>,
    pub events: Vec<Event>,
    pub baseline: Baseline,
}

/// A score track: kind, name, one score and its reasons per second.
type Track = (Kind, String, Vec<f32>, Vec<Vec<Reason>>);

/// Scores every second, plus any extra per-second signals, and finds events with hysteresis.
pub fn fuse(secs: &[Second], extra: &[(Kind, String, Vec<f32>)], sensitivity: f32) -> Fused {
    let b = baseline(secs);
    let slopes = tension_slopes(secs);
    let per_sec: Vec<Vec<(Kind, f32, Vec<Reason>)>> = secs
        .iter()
        .zip(&slopes)
        .map(|(s, sl)| score(s, &b, *sl))
        .collect();
    let on = on_threshold(sensitivity);
    let off = (on - OFF_GAP).max(0.05);
    let mut scores = Vec::new();
    let mut events = Vec::new();
    let mut tracks: Vec<Track> = Vec::new();
    for kind in Kind::ALL {
        let mut v = vec![0.0f32; secs.len()];
        let mut r = vec![Vec::new(); secs.len()];
        for (i, list) in per_sec.iter().enumerate() {
            for (k, sc, rs) in list {
                if *k == kind {
                    v[i] = *sc;
                    r[i] = rs.clone();
                }
            }
        }
        tracks.push((kind, kind.name().to_string(), v, r));
    }
    // An extra signal joins the track of its kind: each second takes the stronger score and
    // its reason.
    for (kind, name, ev) in extra {
        if let Some((_, _, v, r)) = tracks.iter_mut().find(|t| t.0 == *kind) {
            for (i, x) in ev.iter().enumerate().take(v.len()) {
                if *x > v[i] {
                    v[i] = *x;
                    r[i] = vec![reason(name, *x as f64, format!("{name} scored {x:.2}"))];
                }
            }
        }
    }
    for (kind, _name, v, r) in &tracks {
        let mut i = 0;
        while i < v.len() {
            if v[i] >= on {
                let start = i;
                let mut peak = i;
                while i < v.len() && v[i] >= off {
                    if v[i] > v[peak] {
                        peak = i;
                    }
                    i += 1;
                }
                let span = &secs[start..i];
                let low = span.iter().filter(|s| s.low_evidence).count() * 2 > span.len();
                // Impulses are timed to 10 ms; other kinds to the second.
                let onset = if *kind == Kind::LoudImpulse && secs[start].impulse_db > 0.0 {
                    secs[start].impulse_t
                } else {
                    secs[start].t
                };
                events.push(Event {
                    kind: *kind,
                    onset,
                    end: secs[i - 1].t + 1.0,
                    peak: secs[peak].t + 0.5,
                    score: v[peak],
                    reasons: r[peak].clone(),
                    low_evidence: low && matches!(kind, Kind::Struggle | Kind::Running),
                });
            } else {
                i += 1;
            }
        }
        scores.push((*kind, v.clone()));
    }
    events.sort_by(|a, b| a.onset.total_cmp(&b.onset));
    Fused {
        scores,
        events,
        baseline: b,
    }
}

/// Rounds to the millisecond.
fn ms(t: f64) -> f64 {
    (t * 1000.0).round() / 1000.0
}

/// Merges events closer than `MERGE_GAP_S` and adds pre-roll and post-roll.
pub fn highlights(events: &[Event], duration: f64) -> Vec<Highlight> {
    let mut groups: Vec<Vec<&Event>> = Vec::new();
    for e in events {
        match groups.last_mut() {
            Some(g) if e.onset - g.iter().map(|x| x.end).fold(f64::MIN, f64::max) < MERGE_GAP_S => {
                g.push(e)
            }
            _ => groups.push(vec![e]),
        }
    }
    groups
        .into_iter()
        .enumerate()
        .map(|(i, g)| {
            let best = g
                .iter()
                .max_by(|a, b| a.score.total_cmp(&b.score))
                .expect("groups are never empty");
            let onset = g.iter().map(|e| e.onset).fold(f64::MAX, f64::min);
            let end = g.iter().map(|e| e.end).fold(f64::MIN, f64::max);
            let mut also: Vec<Kind> = g
                .iter()
                .map(|e| e.kind)
                .filter(|k| *k != best.kind)
                .collect();
            also.sort();
            also.dedup();
            let mut reasons = best.reasons.clone();
            for e in &g {
                if e.kind != best.kind {
                    reasons.extend(e.reasons.iter().take(1).cloned());
                }
            }
            Highlight {
                id: i + 1,
                kind: best.kind,
                also,
                start: ms((onset - PRE_ROLL_S).max(0.0)),
                onset: ms(onset),
                peak: ms(best.peak.min(duration)),
                end: ms((end + POST_ROLL_S).min(duration.max(end))),
                score: (best.score * 1000.0).round() / 1000.0,
                reasons,
                low_evidence: g.iter().all(|e| e.low_evidence),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calm(n: usize) -> Vec<Second> {
        (0..n)
            .map(|i| Second {
                t: i as f64,
                has_audio: true,
                has_video: true,
                loudness: -30.0 + (i % 3) as f32,
                speech: 0.8,
                high_share: 0.3,
                pitch_hz: 150.0,
                jerk: 0.002,
                luma: 100.0,
                sharpness: 200.0,
                ..Default::default()
            })
            .collect()
    }

    #[test]
    fn calm_footage_gives_no_highlights() {
        let s = calm(120);
        let f = fuse(&s, &[], 0.5);
        assert!(f.events.is_empty(), "{:?}", f.events);
    }

    #[test]
    fn a_shout_becomes_one_highlight_with_pre_roll() {
        let mut s = calm(120);
        for sec in &mut s[40..44] {
            sec.loudness = -16.0;
            sec.pitch_hz = 230.0;
            sec.high_share = 0.45;
        }
        let f = fuse(&s, &[], 0.5);
        let h = highlights(&f.events, 120.0);
        assert_eq!(h.len(), 1, "{h:?}");
        assert_eq!(h[0].kind, Kind::Shouting);
        assert_eq!(h[0].onset, 40.0);
        assert_eq!(h[0].start, 30.0);
        assert!(h[0].end >= 44.0 + POST_ROLL_S - 1e-9);
        assert!(h[0]
            .reasons
            .iter()
            .any(|r| r.signal == "loudness_over_speech_db"));
    }

    #[test]
    fn nearby_events_merge_and_far_ones_do_not() {
        let mut s = calm(200);
        for i in [50, 52, 150] {
            s[i].loudness = -14.0;
            s[i].pitch_hz = 240.0;
        }
        let f = fuse(&s, &[], 0.5);
        let h = highlights(&f.events, 200.0);
        assert_eq!(h.len(), 2, "{h:?}");
        assert_eq!(h[0].onset, 50.0);
        assert_eq!(h[1].onset, 150.0);
    }

    #[test]
    fn walking_bob_is_not_running_but_a_run_is() {
        let b = baseline(&calm(60));
        let mut walk = calm(1)[0];
        walk.cadence_hz = 1.9;
        walk.band_share = 0.5;
        walk.peakiness = 12.0;
        walk.bob_rms = 0.004;
        let run_score = |s: &Second| {
            score(s, &b, None)
                .into_iter()
                .find(|k| k.0 == Kind::Running)
                .map(|k| k.1)
                .unwrap()
        };
        assert!(run_score(&walk) < 0.1);
        let mut run = walk;
        run.cadence_hz = 2.8;
        run.band_share = 0.85;
        run.peakiness = 16.0;
        run.bob_rms = 0.016;
        assert!(run_score(&run) > 0.9);
    }

    #[test]
    fn a_voice_rising_for_a_minute_is_rising_tension() {
        let mut s = calm(200);
        // From 60 s the voice rises 0.2 dB/s (12 dB/min) for 60 s.
        for (i, sec) in s.iter_mut().enumerate().skip(60).take(60) {
            sec.loudness += 0.2 * (i - 60) as f32;
        }
        let f = fuse(&s, &[], 0.5);
        let t = f
            .events
            .iter()
            .find(|e| e.kind == Kind::RisingTension)
            .expect("rising tension found");
        assert!(t.onset > 60.0 && t.onset < 120.0, "onset {}", t.onset);
        // A flat minute does not trigger it.
        let f = fuse(&calm(200), &[], 0.5);
        assert!(f.events.iter().all(|e| e.kind != Kind::RisingTension));
    }

    #[test]
    fn sensitivity_moves_the_trigger() {
        assert!(on_threshold(1.0) < on_threshold(0.5));
        assert!(on_threshold(0.0) > on_threshold(0.5));
        assert_eq!(on_threshold(0.5), ON_SCORE);
    }
}
