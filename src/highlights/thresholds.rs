//! Every documented threshold of the highlight detectors, in one place. The README's table
//! quotes them, and a test (tests/highlight_thresholds.rs) checks that the two agree.

/// Shouting: momentary loudness at least this many dB over the file's median speech loudness.
/// A gate: no second below it is shouting, whatever its pitch or brightness (a raised voice is
/// ~+6 dB, a shout +10 dB or more).
pub const SHOUT_LOUD_DB: f32 = 9.0;
/// Shouting: a sound that stays within this many dB of a shout's loudness…
pub const SHOUT_RUN_BELOW_DB: f32 = 6.0;
/// …for this many seconds or longer…
pub const SHOUT_STEADY_RUN_S: f32 = 4.0;
/// …must move like syllables: the mean change of the 100 ms level from hop
/// to hop, over the 3 s around the second, at least this many dB (over a floor 25 dB under the
/// loudest hop). A siren, an alarm, a crowd or wind is steadier.
pub const SHOUT_MIN_ENV_DB: f32 = 2.0;
/// Shouting: a second whose louder hops are this periodic on average (peak normalised
/// autocorrelation) is voiced even when the VAD and the pitch tracker miss it (a scream).
pub const SHOUT_MIN_VOICING: f32 = 0.7;
/// Shouting: the midpoint of the periodicity a shout needs (vocal effort makes a voice more
/// periodic; laughter and breathy bursts are less).
pub const SHOUT_VOICING_MID: f32 = 0.55;
/// Shouting: pitches within this many octaves (about 2%) count as one note…
pub const SHOUT_STEADY_PITCH_OCT: f32 = 0.03;
/// …and when this share of the voiced hops among the loud ones of the 3 s around a second
/// hold one or two notes, the sound is a tone (a horn, a ring, a two-tone alarm), not a voice.
pub const SHOUT_TONE_SHARE: f32 = 0.8;
/// Shouting: a 100 ms hop whose 300–4000 Hz spectrum is at least this alike (cosine) to the
/// hop before's holds its spectrum…
pub const SHOUT_HELD_SPECTRUM: f32 = 0.9;
/// …and when this share of the loud hops of the 3 s around a second hold it, the sound is a
/// tone (a horn, a ring), not a voice: a voice moves its harmonics and formants from one
/// 100 ms to the next. No second of a shout or a scream in the realistic sets had a loud hop
/// that held; the horns and rings read as shouting held 0.39–0.78 of them (README).
pub const SHOUT_HELD_SHARE: f32 = 0.3;
/// Shouting: pitch this many times the median speech pitch adds evidence of vocal effort.
pub const SHOUT_PITCH_RATIO: f32 = 1.25;
/// Impulse: a 10 ms level at least this many dB over the median of the previous second…
pub const IMPULSE_JUMP_DB: f32 = 18.0;
/// …whose 10 ms peak is also this many dB over the file's speech peak level (the median of
/// the loudest 10 ms of each speech hop): a bang is far louder than the scene. A door closing
/// in the same room peaked up to 13.6 dB over the speech peaks (with the VAD hearing speech
/// around it), a shot or a blast 13.6–23 dB (scripts/REAL-SOUND.md)…
pub const IMPULSE_OVER_SPEECH_DB: f32 = 10.0;
/// A second with more than this share of samples at full scale is clipping…
pub const IMPULSE_CLIPPED_SHARE: f32 = 0.002;
/// …and an impulse in it needs this many dB less over the speech peak level.
pub const IMPULSE_CLIPPING_CREDIT_DB: f32 = 4.0;
/// …and has fallen by this many dB 300 ms (or 1 s) later (a bang decays; a shout is
/// sustained).
pub const IMPULSE_DECAY_DB: f32 = 8.0;
/// Extra dB over speech an impulse needs per unit of VAD speech probability around it: the
/// onset of a word after a pause is also a fast rise, but the VAD calls it speech.
pub const IMPULSE_SPEECH_PENALTY_DB: f32 = 10.0;
/// Struggle: frame-to-frame jerk, in robust z-scores over the file, at the midpoint.
pub const SHAKE_Z: f32 = 5.0;
/// Struggle: a second's jerk leaves out its this many largest frame-to-frame changes (a person
/// crossing close to the lens drags the motion estimate in one or two jumps; a shake jerks
/// every frame).
pub const SHAKE_DROP_FRAMES: usize = 2;
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
/// Rising tension: the voice level (a 31 s running median of the seconds that sound like a
/// voice: VAD speech whose level moves, with no steady pitch) at least this many dB over its
/// lowest point 30–90 s earlier…
pub const TENSION_RISE_DB: f32 = 7.0;
/// …and at least this many dB over the file's speech level.
pub const TENSION_OVER_DB: f32 = 3.0;
/// Rising tension: running-median window, seconds (one loud line or a close voice does not
/// move it).
pub const TENSION_SMOOTH_S: usize = 31;
/// Rising tension: the rise is measured from the lowest point between this many seconds…
pub const TENSION_MIN_S: usize = 30;
/// …and this many seconds back.
pub const TENSION_MAX_S: usize = 90;
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
