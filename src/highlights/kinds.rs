//! Per-kind scores (0..1) for one second, each with the reasons behind it.

use super::kind::Kind;
use super::second::{reason, sigmoid, Baseline, Reason, Second};
use super::thresholds::*;
use super::voice::Tension;

/// A kind's score for one second and the reasons behind it.
pub type Scored = (Kind, f32, Vec<Reason>);

/// Per-kind scores for one second, with the reasons behind each.
pub fn score(s: &Second, b: &Baseline, tension: Option<Tension>) -> Vec<Scored> {
    let mut out = Vec::new();
    if s.has_audio {
        out.push(shouting(s, b));
        out.push(loud_impulse(s));
        if let Some(t) = tension {
            out.push(rising_tension(t));
        }
    }
    if s.has_video {
        out.push(struggle(s, b));
        out.push(running(s));
    }
    out
}

/// Shouting: a voice at least `SHOUT_LOUD_DB` over the speech level that moves like one.
fn shouting(s: &Second, b: &Baseline) -> Scored {
    let over = s.loudness - b.speech_loudness;
    // No pitch in the tracker's range (a scream can be above it): no evidence either way.
    let pitch_ratio = if b.speech_pitch_hz > 0.0 && s.pitch_hz > 0.0 {
        s.pitch_hz / b.speech_pitch_hz
    } else {
        SHOUT_PITCH_RATIO
    };
    let bright = s.high_share - b.speech_high_share;
    // A shout is a voice: the VAD says speech, or the second is clearly periodic (screams
    // can fall outside what the VAD calls speech and above the pitch tracker's range).
    let periodic = s.pitch_hz > 0.0 || s.voicing >= SHOUT_MIN_VOICING;
    // Vocal effort makes a voice more periodic, not less: laughter and breathy bursts are
    // loud but weakly periodic.
    let strong = sigmoid((s.voicing - SHOUT_VOICING_MID) / 0.05);
    let voiced = s.speech.max(if periodic { 0.9 } else { 0.0 });
    let x = (over - SHOUT_LOUD_DB) / 2.0
        + 1.5 * ((pitch_ratio - SHOUT_PITCH_RATIO) / 0.3).clamp(-1.0, 1.0)
        + 1.0 * (bright / 0.1).clamp(-1.0, 1.0);
    // A voice moves: syllables make its level rise and fall, and its pitch glides. A
    // siren, an alarm or a crowd stays loud and steady for seconds; a horn or a ring holds
    // one or two notes.
    let moving = if s.loud_run_s >= SHOUT_STEADY_RUN_S {
        sigmoid((s.env_mod - SHOUT_MIN_ENV_DB) / 0.4)
    } else {
        1.0
    };
    let tone = if s.tone { 0.2 } else { 1.0 };

    let gate = if over >= SHOUT_LOUD_DB { 1.0 } else { 0.0 };
    let sc = gate * sigmoid(x) * voiced.clamp(0.0, 1.0) * strong * moving * tone;
    (
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
            reason(
                "level_movement_db",
                s.env_mod as f64,
                format!(
                    "level moves {:.1} dB per 100 ms{}",
                    s.env_mod,
                    if s.tone { ", a held tone" } else { "" }
                ),
            ),
        ],
    )
}

/// A bang: a fast rise far over the speech peaks that decays.
fn loud_impulse(s: &Second) -> Scored {
    // A bang that drives the microphone into clipping needs less headroom over speech.
    let clipping = if s.clipped > IMPULSE_CLIPPED_SHARE {
        IMPULSE_CLIPPING_CREDIT_DB
    } else {
        0.0
    };
    let need = IMPULSE_OVER_SPEECH_DB + IMPULSE_SPEECH_PENALTY_DB * s.impulse_speech - clipping;
    let imp =
        sigmoid((s.impulse_db - IMPULSE_JUMP_DB) / 2.0) * sigmoid(s.impulse_over_speech_db - need);
    // Clipping supports an impulse but cannot trigger one alone (a loud voice clips too).
    let clip = if s.clipped > IMPULSE_CLIPPED_SHARE {
        0.5
    } else {
        0.0
    };
    (
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
    )
}

/// Rising tension: the voice level up `TENSION_RISE_DB` over where it was 30–90 s before.
fn rising_tension(t: Tension) -> Scored {
    let sc = sigmoid((t.rise_db - TENSION_RISE_DB) / 0.75)
        * sigmoid((t.over_db - TENSION_OVER_DB) / 1.0);
    (
        Kind::RisingTension,
        sc,
        vec![reason(
            "voice_level_rise_db",
            t.rise_db as f64,
            format!(
                "voice level up {:.1} dB since {:.0} s, {:+.1} dB over the file's speech level",
                t.rise_db, t.from, t.over_db
            ),
        )],
    )
}

/// Struggle: the camera jerks (as far as its own motion explains the picture's change).
fn struggle(s: &Second, b: &Baseline) -> Scored {
    let z = (s.jerk - b.jerk_median) / b.jerk_spread;
    let periodic = (s.band_share > RUN_BAND_SHARE && s.peakiness > RUN_PEAKINESS) as i32 as f32;
    let sc = sigmoid((z - SHAKE_Z) / 1.5)
        * sigmoid((s.jerk - SHAKE_MIN_JERK) / (SHAKE_MIN_JERK * 0.25))
        * (1.0 - 0.7 * periodic);
    (
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
    )
}

/// Running: a fast, regular vertical bob.
fn running(s: &Second) -> Scored {
    let fast = if s.cadence_hz >= RUN_MIN_HZ { 1.0 } else { 0.0 };
    let run = fast
        * sigmoid(((s.band_share - RUN_BAND_SHARE) / 0.08) as f32)
        * sigmoid(((s.peakiness - RUN_PEAKINESS) / 1.5) as f32)
        * sigmoid(((s.bob_rms - RUN_MIN_RMS) / (RUN_MIN_RMS * 0.25)) as f32);
    (
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
    )
}
