//! The README's table of highlight thresholds and the constants the code uses must agree: each
//! row of the table has to quote every constant of its kind, formatted as below.

use veil::highlights::fusion::*;

fn readme_row(readme: &str, kind: &str) -> String {
    let start = format!("| `{kind}` |");
    readme
        .lines()
        .find(|l| l.starts_with(&start))
        .unwrap_or_else(|| panic!("README has no row for {kind}"))
        .to_string()
}

fn pct(x: f64) -> String {
    format!("{:.1}", 100.0 * x)
        .trim_end_matches('0')
        .trim_end_matches('.')
        .to_string()
}

#[test]
fn the_readme_quotes_every_threshold_the_code_uses() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let want: Vec<(&str, String)> = vec![
        ("shouting", format!("at least **{SHOUT_LOUD_DB} dB** over the file's speech level")),
        ("shouting", format!("mean peak autocorrelation ≥ {SHOUT_MIN_VOICING}")),
        ("shouting", format!("Raised pitch (×{SHOUT_PITCH_RATIO})")),
        ("shouting", format!("midpoint {SHOUT_VOICING_MID}")),
        (
            "shouting",
            format!("within {SHOUT_RUN_BELOW_DB} dB of a shout's loudness for {SHOUT_STEADY_RUN_S} s or longer"),
        ),
        ("shouting", format!("mean hop-to-hop level change ≥ {SHOUT_MIN_ENV_DB} dB")),
        (
            "shouting",
            format!(
                "{}% of them within {SHOUT_STEADY_PITCH_OCT} octave",
                pct(SHOUT_TONE_SHARE as f64)
            ),
        ),
        (
            "shouting",
            format!(
                "{}% of them with a 300–4000 Hz spectrum at least {SHOUT_HELD_SPECTRUM} alike",
                pct(SHOUT_HELD_SHARE as f64)
            ),
        ),
        ("loud_impulse", format!("a 10 ms level ≥ {IMPULSE_JUMP_DB} dB over the previous second")),
        (
            "loud_impulse",
            format!("≥ {IMPULSE_OVER_SPEECH_DB} dB over the file's speech peak level"),
        ),
        ("loud_impulse", format!("+{IMPULSE_SPEECH_PENALTY_DB} dB per unit of VAD speech")),
        (
            "loud_impulse",
            format!(
                "−{IMPULSE_CLIPPING_CREDIT_DB} dB when more than {}% of samples",
                pct(IMPULSE_CLIPPED_SHARE as f64)
            ),
        ),
        ("loud_impulse", format!("decaying ≥ {IMPULSE_DECAY_DB} dB")),
        ("struggle", format!("camera jerk ≥ {SHAKE_Z} robust SDs")),
        (
            "struggle",
            format!("leaves out its {SHAKE_DROP_FRAMES} largest frame-to-frame changes"),
        ),
        ("struggle", format!("≥ {}% of the frame per frame", pct(SHAKE_MIN_JERK as f64))),
        ("running", format!("peak at ≥ {RUN_MIN_HZ} Hz")),
        ("running", format!("≥ {}% of its power", pct(RUN_BAND_SHARE))),
        ("running", format!("≥ {}% of frame height", pct(RUN_MIN_RMS))),
        ("rising_tension", format!("a {TENSION_SMOOTH_S} s running median")),
        (
            "rising_tension",
            format!(
                "≥ {TENSION_RISE_DB} dB over its lowest point {TENSION_MIN_S}–{TENSION_MAX_S} s earlier"
            ),
        ),
        ("rising_tension", format!("≥ {TENSION_OVER_DB} dB over the file's speech level")),
    ];
    let mut missing = Vec::new();
    for (kind, text) in &want {
        if !readme_row(&readme, kind).contains(text.as_str()) {
            missing.push(format!("{kind}: \"{text}\""));
        }
    }
    // The hysteresis and merging paragraph.
    for text in [
        format!("An event starts at score {ON_SCORE}"),
        format!("events closer than {MERGE_GAP_S} s merge"),
        format!("a {PRE_ROLL_S} s\npre-roll and a {POST_ROLL_S} s post-roll"),
    ] {
        if !readme.contains(&text) {
            missing.push(format!("paragraph: \"{text}\""));
        }
    }
    assert!(
        missing.is_empty(),
        "README.md and src/highlights/thresholds.rs disagree; the README lacks:\n{}",
        missing.join("\n")
    );
    // Every kind has its row.
    for k in Kind::ALL {
        readme_row(&readme, k.name());
    }
}
