//! When each detector runs. Detectors are the expensive part of a run (ONNX Runtime was 79% of
//! the CPU when every detector ran on every frame), and most frames add little: tracks and
//! following carry boxes from one frame to the next. So full-frame face detection runs on
//! keyframes, every `key` frames on a steady scene and more often as the camera moves faster;
//! between keyframes the face model looks only at crops around the live tracks. The small-face
//! pass and the plate model run at their own cadences, also shortened by camera motion. A scene
//! cut, a track that was lost, and the first frame force a keyframe. `--thorough` keeps the
//! every-frame schedule.

use serde::Serialize;

use crate::motion::FrameMotion;

/// How fast the camera moves, from the global motion between two frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Pace {
    Steady,
    Moving,
    /// Shake, a whip pan, or a picture the motion estimator cannot explain (blur, a cut).
    Fast,
}

/// Camera shift per frame, as a share of the frame, from which the camera is `Moving`.
pub const MOVING: f32 = 0.01;
/// ... and from which it is `Fast` (a 1280-px frame moving 51 px a frame).
pub const FAST: f32 = 0.04;
/// Below this phase-correlation peak one global shift does not explain the frame.
const UNSURE: f32 = 0.05;
/// A phase-correlation peak from which a frame with little shift is taken as at rest (see
/// [`at_rest`]).
const SETTLED_PEAK: f32 = 0.5;
/// Mean absolute luma difference (0..255) that marks a cut when no shift explains it.
const CUT_DIFF: f32 = 30.0;
/// Frames a `Fast` or `Moving` pace is kept after the motion that set it (a shake or a pan
/// goes on for a while, and its next frames are blurred).
const HOLD_S: f64 = 0.5;

/// Whether the camera is at rest onto this frame: it moved less than [`MOVING`], and one shift
/// explains the frame well. The first such frame after fast motion gets a plate sample (see
/// [`Scheduler::plan`]); a pass there can confirm or let go a track carried through the motion
/// (`pipeline::stage_camera::Unsure`).
pub fn at_rest(m: &FrameMotion) -> bool {
    m.dx.hypot(m.dy) < MOVING && m.confidence >= SETTLED_PEAK
}

/// Whether no single camera shift explains the change onto this frame: a whip too fast for
/// the motion estimator (the picture is smeared), heavy shake, or a cut.
pub fn unexplained(m: &FrameMotion) -> bool {
    m.confidence < UNSURE && m.diff > CUT_DIFF / 3.0
}

/// Frames between passes on a steady scene.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Cadence {
    /// Full-frame face detection.
    pub key: u32,
    /// The small-face pass (0: never).
    pub hires: u32,
    /// The plate model (0: never).
    pub plate: u32,
    /// Plate samples between full turned (±angle) passes; on the others, the turned passes
    /// run only where the upright pass found candidates (1: every sample).
    pub turns: u32,
    /// Face crops around live tracks between keyframes.
    pub crops: bool,
    /// The intervals shrink as the camera moves (off: a fixed schedule, as `--thorough`).
    pub adaptive: bool,
}

/// What runs on one frame.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Passes {
    /// Full-frame face detection.
    pub key: bool,
    /// The small-face pass (on keyframes only).
    pub hires: bool,
    /// Face detection on crops around live tracks (between keyframes).
    pub crops: bool,
    pub plates: bool,
    /// The plate model's turned views on the whole frame, not only around candidates.
    pub all_turns: bool,
    /// Which one of the plate model's turns (an index into them) the whole-frame look takes on
    /// this sample; `None`: every turn. A turned look costs as much as the upright one, and on
    /// a frame without tiles the whole-frame look is all the plate model sees, so it takes one
    /// side per sample, the other side on the next: looks turned everywhere alternate among
    /// themselves, and so do looks turned around candidates. Tiles keep every turn: there
    /// a weak plate seen turned one way only was lost (see README "Speed").
    pub whole_side: Option<usize>,
    /// A new scene (the first frame, a cut): the plate model looks at every tile.
    pub new_scene: bool,
}

/// Decides, frame by frame, which detectors run.
#[derive(Debug, Clone)]
pub struct Scheduler {
    steady: Cadence,
    hold: u32,
    pace: Pace,
    held: u32,
    since_key: u32,
    since_hires: u32,
    since_plate: u32,
    plate_samples: u64,
    /// Plate samples so far that turned everywhere, and that turned around candidates only.
    sides: [u64; 2],
    /// The last plate sample saw nothing plate-like (see [`Scheduler::plates_seen`]).
    quiet: bool,
    /// Whether the camera has come to rest since it last moved fast.
    settled: bool,
    frames: u64,
}

impl Scheduler {
    pub fn new(steady: Cadence, fps: f64) -> Scheduler {
        Scheduler {
            steady,
            hold: ((HOLD_S * fps).round() as u32).max(1),
            pace: Pace::Steady,
            held: 0,
            since_key: 0,
            since_hires: 0,
            since_plate: 0,
            plate_samples: 0,
            sides: [0; 2],
            quiet: false,
            settled: true,
            frames: 0,
        }
    }

    pub fn cadence(&self) -> Cadence {
        self.steady
    }

    /// What the last plate sample saw: `false` when it found no plate, no plate-like candidate
    /// and no live plate track. Until a sample sees something again, plates are sampled at
    /// twice the interval: a scene with nothing plate-like in it (indoors, a face filling a
    /// phone's frame) costs half. A plate that comes into view is found at most one doubled
    /// interval late, and followed back through the look-ahead window (three intervals long)
    /// to where it appeared, as a new face is between keyframes.
    pub fn plates_seen(&mut self, seen: bool) {
        self.quiet = !seen;
    }

    /// The pace of the camera onto this frame (with hold-over from recent frames).
    fn pace(&mut self, m: &FrameMotion) -> Pace {
        let speed = m.dx.hypot(m.dy);
        let now = if self.frames == 0 {
            Pace::Steady
        } else if speed >= FAST || unexplained(m) {
            Pace::Fast
        } else if speed >= MOVING {
            Pace::Moving
        } else {
            Pace::Steady
        };
        if now == Pace::Fast {
            self.settled = false;
        }
        if now >= self.pace {
            self.pace = now;
            self.held = self.hold;
        } else if self.held > 0 {
            self.held -= 1;
        } else {
            self.pace = now;
        }
        self.pace
    }

    /// The passes for the next frame. `lost` says a face track was seen on the frame before
    /// and neither following nor a crop found it on the last one.
    pub fn plan(&mut self, m: &FrameMotion, lost: bool) -> Passes {
        let first = self.frames == 0;
        let cut = !first && m.confidence < UNSURE && m.diff > CUT_DIFF;
        let pace = self.pace(m);
        self.frames += 1;
        let s = self.steady;
        // Under motion the intervals shrink: faces every third of the steady interval for a
        // moving camera and every frame for a fast one; plates at half their interval (the
        // plate model costs four face passes, and its tracks are followed between samples).
        let pace = if s.adaptive { pace } else { Pace::Steady };
        let (key_every, mut plate_every) = match pace {
            Pace::Steady => (s.key, s.plate),
            Pace::Moving => (s.key.div_ceil(3), s.plate.div_ceil(2)),
            Pace::Fast => (1, s.plate.div_ceil(2)),
        };
        if s.adaptive && self.quiet {
            plate_every *= 2;
        }
        self.since_key += 1;
        self.since_hires += 1;
        self.since_plate += 1;
        let key = first || cut || lost || self.since_key >= key_every.max(1);
        let hires = key && s.hires > 0 && (first || self.since_hires >= s.hires);
        // The first steady, sharp frame after a whip or a jolt: the plate tracks carried
        // through it by a shift that reads short on smeared frames may lag their plates, and
        // a plate that came into view during it has not been looked for; the next sample
        // finds them where the camera came to rest.
        let settling = s.adaptive && !self.settled && pace == Pace::Fast && at_rest(m);
        if settling {
            self.settled = true;
        }
        let plates =
            s.plate > 0 && (first || cut || settling || self.since_plate >= plate_every.max(1));
        if key {
            self.since_key = 0;
        }
        if hires {
            self.since_hires = 0;
        }
        let mut all_turns = false;
        let mut whole_side = None;
        if plates {
            self.since_plate = 0;
            all_turns = s.turns <= 1 || self.plate_samples % s.turns as u64 == 0;
            self.plate_samples += 1;
            if s.adaptive {
                let seen = &mut self.sides[usize::from(!all_turns)];
                whole_side = Some((*seen % 2) as usize);
                *seen += 1;
            }
        }
        Passes {
            key,
            hires,
            crops: !key && s.crops,
            plates,
            all_turns,
            whole_side,
            new_scene: first || cut,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn still() -> FrameMotion {
        FrameMotion {
            confidence: 0.5,
            ..Default::default()
        }
    }

    fn moving(speed: f32) -> FrameMotion {
        FrameMotion {
            dx: speed,
            confidence: 0.3,
            diff: 10.0,
            ..Default::default()
        }
    }

    const STEADY: Cadence = Cadence {
        key: 6,
        hires: 30,
        plate: 12,
        turns: 3,
        crops: true,
        adaptive: true,
    };

    #[test]
    fn a_steady_scene_gets_keyframes_at_the_steady_interval() {
        let mut s = Scheduler::new(STEADY, 30.0);
        let plans: Vec<Passes> = (0..60).map(|_| s.plan(&still(), false)).collect();
        let keys: Vec<usize> = (0..60).filter(|&i| plans[i].key).collect();
        assert_eq!(keys, [0, 6, 12, 18, 24, 30, 36, 42, 48, 54]);
        let plates: Vec<usize> = (0..60).filter(|&i| plans[i].plates).collect();
        assert_eq!(plates, [0, 12, 24, 36, 48]);
        let hires: Vec<usize> = (0..60).filter(|&i| plans[i].hires).collect();
        assert_eq!(hires, [0, 30]);
        // Full turned passes on every third plate sample.
        let turns: Vec<usize> = (0..60).filter(|&i| plans[i].all_turns).collect();
        assert_eq!(turns, [0, 36]);
        // The whole-frame look turns one way, then the other: those turned everywhere (0, 36)
        // and those turned around candidates (12, 24, 48) each alternate.
        let sides: Vec<Option<usize>> = plates.iter().map(|&i| plans[i].whole_side).collect();
        assert_eq!(sides, [Some(0), Some(0), Some(1), Some(1), Some(0)]);
        // Crops on every frame that is not a keyframe.
        assert!(plans.iter().all(|p| p.crops != p.key));
    }

    #[test]
    fn detection_gets_denser_as_the_camera_moves_faster() {
        let count = |m: FrameMotion| {
            let mut s = Scheduler::new(STEADY, 30.0);
            s.plan(&still(), false);
            (0..60).filter(|_| s.plan(&m, false).key).count()
        };
        let (steady, moving, fast) = (count(still()), count(moving(0.02)), count(moving(0.08)));
        assert!(steady < moving && moving < fast, "{steady} {moving} {fast}");
        assert_eq!(fast, 60, "a whip pan is detected on every frame");
    }

    #[test]
    fn fast_motion_is_held_for_half_a_second_after_it_stops() {
        let mut s = Scheduler::new(STEADY, 30.0);
        s.plan(&still(), false);
        s.plan(&moving(0.1), false);
        let keys = (0..15).filter(|_| s.plan(&still(), false).key).count();
        assert_eq!(keys, 15);
        let keys = (0..30).filter(|_| s.plan(&still(), false).key).count();
        assert!(keys <= 6, "{keys}");
    }

    #[test]
    fn plates_are_sampled_where_the_camera_comes_to_rest_after_a_whip() {
        let mut s = Scheduler::new(STEADY, 30.0);
        let sharp = FrameMotion {
            confidence: 0.9,
            ..Default::default()
        };
        let mut plates = Vec::new();
        for i in 0..60 {
            // A whip on frames 20-22; a blurred frame 23, still reading low; at rest from 24.
            let m = match i {
                20..=22 => moving(0.2),
                23 => FrameMotion {
                    confidence: 0.3,
                    ..Default::default()
                },
                _ => sharp,
            };
            if s.plan(&m, false).plates {
                plates.push(i);
            }
        }
        // The interval (12, halved to 6 from the whip on), and one more sample on the first
        // sharp frame at rest (24), once: the interval runs on from there.
        assert_eq!(plates[..3], [0, 12, 20], "{plates:?}");
        assert_eq!(plates[3], 24, "{plates:?}");
        assert!(
            plates.windows(2).skip(3).all(|w| w[1] - w[0] >= 6),
            "{plates:?}"
        );
        // Without the whip, none there.
        let mut s = Scheduler::new(STEADY, 30.0);
        let calm: Vec<usize> = (0..30).filter(|_| s.plan(&sharp, false).plates).collect();
        assert_eq!(calm, [0, 12, 24]);
    }

    #[test]
    fn a_cut_or_a_lost_track_forces_a_keyframe_and_plates_on_a_cut() {
        let mut s = Scheduler::new(STEADY, 30.0);
        s.plan(&still(), false);
        s.plan(&still(), false);
        let cut = FrameMotion {
            confidence: 0.01,
            diff: 60.0,
            ..Default::default()
        };
        let p = s.plan(&cut, false);
        assert!(p.key && p.plates);
        let mut s = Scheduler::new(STEADY, 30.0);
        s.plan(&still(), false);
        assert!(s.plan(&still(), true).key);
    }

    #[test]
    fn plates_are_sampled_half_as_often_while_nothing_plate_like_is_seen() {
        let mut s = Scheduler::new(STEADY, 30.0);
        let mut samples = Vec::new();
        for i in 0..120 {
            if s.plan(&still(), false).plates {
                samples.push(i);
                // Nothing plate-like until frame 60, something from then on.
                s.plates_seen(i >= 60);
            }
        }
        assert_eq!(samples, [0, 24, 48, 72, 84, 96, 108]);
        // A fixed schedule (`--thorough`) ignores it.
        let mut every = STEADY;
        every.adaptive = false;
        let mut s = Scheduler::new(every, 30.0);
        let n = (0..120)
            .filter(|_| {
                let p = s.plan(&still(), false).plates;
                s.plates_seen(false);
                p
            })
            .count();
        assert_eq!(n, 10);
    }

    #[test]
    fn thorough_cadence_detects_faces_on_every_frame() {
        let every = Cadence {
            key: 1,
            hires: 4,
            plate: 6,
            turns: 1,
            crops: false,
            adaptive: false,
        };
        let mut s = Scheduler::new(every, 30.0);
        // Whatever the camera does: the schedule is fixed.
        let plans: Vec<Passes> = (0..24)
            .map(|i| s.plan(&if i % 2 == 0 { still() } else { moving(0.1) }, false))
            .collect();
        assert!(plans.iter().all(|p| p.key && !p.crops));
        assert_eq!(plans.iter().filter(|p| p.hires).count(), 6);
        assert_eq!(plans.iter().filter(|p| p.plates).count(), 4);
        assert!(plans.iter().filter(|p| p.plates).all(|p| p.all_turns));
        assert!(plans.iter().all(|p| p.whole_side.is_none()));
    }
}
