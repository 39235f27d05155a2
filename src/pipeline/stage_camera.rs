//! The detect stage's view of the camera: its measured shift per frame, following tracks
//! forward and back with it, and covering what fast motion smears.

use ffmpeg_next::frame;

use super::DetectStage;
use crate::decode::luma;
use crate::detect::{BBox, Class};
use crate::motion::FrameMotion;
use crate::track::{Track, Tracker};
use std::collections::{BTreeSet, VecDeque};
use std::time::Instant;

/// Below this phase-correlation peak a fast camera's shift is a jolt's (see [`Jolts`]).
const JOLT_SURE: f32 = 0.25;
/// Frames after a jolt on which boxes stay grown.
const JOLT_HOLD: u64 = 2;

/// Jolts of the camera: a fast shift, after a slower frame, that one shift explains poorly.
/// Blur smears the picture, the estimate falls short of the real shift (a 110-pixel jolt read
/// as 28 on the motion set), and following lags the objects by the difference for a few frames.
/// Only the onset counts: in a steady shake following keeps up.
#[derive(Debug, Default)]
pub(in crate::pipeline) struct Jolts {
    /// (frame, the camera's shift onto it in pixels).
    onsets: VecDeque<(u64, (f32, f32))>,
    last_speed: f32,
}

impl Jolts {
    /// Records the camera's motion onto frame `index` of a `w`x`h` video.
    pub(super) fn record(&mut self, index: u64, m: &FrameMotion, (w, h): (f32, f32)) {
        let speed = m.dx.hypot(m.dy);
        if index > 0
            && speed >= crate::schedule::FAST
            && m.confidence < JOLT_SURE
            && self.last_speed < crate::schedule::FAST / 2.0
        {
            self.onsets.push_back((index, (m.dx * w, m.dy * h)));
        }
        self.last_speed = speed;
    }

    /// How far a box not detected on frame `index` reaches along a jolt there or on the
    /// [`JOLT_HOLD`] frames before it, as shares of its width and height (signed: the larger
    /// component of the jolt gets the box's whole size); `None`: no jolt. Frames must be asked
    /// in order.
    pub(super) fn reach_at(&mut self, index: u64) -> Option<(f32, f32)> {
        while self.onsets.front().is_some_and(|j| j.0 + JOLT_HOLD < index) {
            self.onsets.pop_front();
        }
        let &(_, (jx, jy)) = self.onsets.front().filter(|j| j.0 <= index)?;
        let top = jx.abs().max(jy.abs()).max(f32::EPSILON);
        Some((jx / top, jy / top))
    }
}

/// The id of the region that redacts a frame whole (see [`BlindEnds`]).
pub(super) const WHOLE_FRAME: u32 = u32::MAX;
/// Why, as the audit record gives it.
pub(super) const WHOLE_FRAME_REASON: &str =
    "first or last frame smeared by fast camera motion: no frame beyond it shows where its objects are";

/// The first and last frames of a video when a whip or a jolt smeared them: no sharp frame on
/// their far side tells where the smear's objects are (a smeared frame in the middle takes the
/// hull of where its tracks were on the frames either side), and the detectors rarely find
/// an object in its ghosts. Such a frame is redacted whole (fail closed).
#[derive(Debug, Default)]
pub(in crate::pipeline) struct BlindEnds {
    /// Frame 0 was smeared, judged from frame 1.
    first: bool,
    /// The video's last frame, once the stream has ended.
    last: Option<u64>,
    /// Where the smeared frames that run up to a last frame redacted whole begin: none of
    /// them has a sharp frame after it either.
    tail: Option<u64>,
    /// The latest frame and whether the camera moved fast onto it.
    fast: (u64, bool),
}

impl BlindEnds {
    /// Records the camera's motion `m` onto frame `index`; `before`: the sharpness of the
    /// frame before. Frame 0 has no frame before to judge it by, so frame 1 does: much sharper
    /// with the picture changed, changed in a way no shift explains, or the camera moving fast
    /// onto it (a whip does not begin on a video's first frame).
    pub(super) fn record(&mut self, index: u64, m: &FrameMotion, before: f32) {
        let fast = m.dx.hypot(m.dy) >= crate::schedule::FAST;
        if index == 1
            && (crate::schedule::unexplained(m)
                || fast
                || (m.diff > 10.0 && before < 0.5 * m.sharpness))
        {
            self.first = true;
        }
        self.fast = (index, fast);
    }

    /// The stream ended on frame `last` (`None`: no frame); `blind`: the smeared frames still
    /// to be redacted.
    pub(in crate::pipeline) fn ended(&mut self, last: Option<u64>, blind: &VecDeque<u64>) {
        self.last = last;
        let Some(last) = last else { return };
        if self.whole(last, blind.contains(&last)) {
            let mut from = last;
            while from > 1 && blind.contains(&(from - 1)) {
                from -= 1;
            }
            self.tail = Some(from);
        }
    }

    /// Whether frame `index` is redacted whole; `blind`: it is a smeared frame.
    pub(super) fn whole(&self, index: u64, blind: bool) -> bool {
        let fast = self.fast == (index, true);
        (index == 0 && self.first)
            || ((blind || fast) && self.last == Some(index) && index > 0)
            || self.tail.is_some_and(|t| index >= t)
    }
}

/// A face track is dropped only when its face is at least this tall at the full-frame
/// pass's scale, where the face model finds a frontal face on a sharp frame; a smaller face
/// (which only crops or the small-face pass may find) is followed on.
pub(super) const CONFIRM_MIN_PX: f32 = 48.0;
/// The same for a plate track, at the whole-frame plate look's scale (640 px on the long side).
/// Without it a 23x50-px plate at 1080p, 17 px tall in that look and missed by one sample after
/// a jolt, was let go and leaked.
pub(super) const PLATE_CONFIRM_MIN_PX: f32 = 24.0;
/// A match (ZNCC) under this, onto a smeared frame, leaves a track unsure (see [`Unsure`]).
const SMEARED_MATCH: f32 = 0.8;
/// A face track not confirmed since its last detection is let go after this many trusted
/// passes in a row have not found it (the first steady frame after a whip can still be too
/// blurred for a face that is there).
const UNCONFIRMED_MISSES: u8 = 2;
/// A plate track found only once is no longer followed after this many steady, sharp plate
/// samples have not found it again.
const ONCE_MISSES: u8 = 2;

/// Whether a full-frame pass finding objects `min_height` tall (frame pixels) or more would
/// find track `t` with its box at `b` on a frame of `size`: its largest detection is that
/// tall, and the box is mostly in view (a box mostly outside the frame holds too little of its
/// object for the pass to find).
fn findable(t: &Track, b: Option<BBox>, min_height: f32, size: Option<(f32, f32)>) -> bool {
    let tall = t.dets.iter().map(|d| d.1.height()).fold(0.0, f32::max) >= min_height;
    let in_view = match (b, size) {
        (Some(b), Some((w, h))) => b.clip(w, h).area() >= 0.5 * b.area(),
        _ => true,
    };
    tall && in_view
}

/// Tracks that the camera's shift alone carried (blur or a whip defeated the appearance
/// match), and whether they are still followed. Carried by a wrong shift, a track lands on the
/// background, and following would then hold a box on it for up to `--follow` seconds. So the
/// next pass of its detector over the whole frame (a face keyframe, a plate sample) on a
/// steady, sharp frame decides: a track it finds is confirmed; one it does not find, if it is
/// large enough to be found there, is no longer followed (it keeps its boxes up to there, and
/// a later detection that lands where it is links to it and makes it followed again).
#[derive(Debug, Default)]
pub(in crate::pipeline) struct Unsure {
    carried: BTreeSet<u32>,
    unfollowed: BTreeSet<u32>,
    /// How many passes in a row have not found a plate track found once (steady, sharp
    /// samples) or an unconfirmed face track (trusted passes).
    misses: std::collections::BTreeMap<u32, u8>,
    /// Tracks found by a pass on a steady, sharp frame.
    confirmed: BTreeSet<u32>,
    /// Recent frames with a pass of a class's detector over the whole frame (a face keyframe,
    /// a plate sample): the height (frame pixels) an object must have for that pass to find it
    /// where the pass was trusted ([`Unsure::after_pass`]), `None` where it was not.
    passes: std::collections::BTreeMap<(u64, Class), Option<f32>>,
}

impl Unsure {
    /// Track `id` was carried by the camera's shift alone.
    pub(super) fn carried(&mut self, id: u32) {
        self.carried.insert(id);
    }

    /// Whether track `id` is followed.
    pub(super) fn follows(&self, id: u32) -> bool {
        !self.unfollowed.contains(&id)
    }

    /// After a pass of the detector of `tracks` over the whole of frame `index`, whose camera
    /// motion was `m`; `sharp`: the frame is not smeared; `min_height`: how tall (in frame
    /// pixels) a track's object must be for that pass to find it, and so to be let go. Returns
    /// the faces only ever found on moving or smeared frames that the pass did not find (let
    /// go, and seen missing on this frame), and whether the pass is trusted to show what is
    /// not there.
    pub(super) fn after_pass(
        &mut self,
        tracks: &Tracker,
        index: u64,
        (m, sharp): (&FrameMotion, bool),
        min_height: f32,
    ) -> (Vec<u32>, bool) {
        // A pass can confirm or let go a track only where the camera is at rest (and the frame
        // is sharp).
        let steady = crate::schedule::at_rest(m);
        let large = |t: &Track| findable(t, t.seen_at(index), min_height, tracks.frame_size());
        // The pass is trusted to show what is not there only where it found every confirmed
        // track that following still sees on the frame: right after a jolt the detector can
        // miss faces on a frame the shift calls steady.
        let trusted = steady
            && sharp
            && !tracks.tracks().iter().any(|t| {
                self.confirmed.contains(&t.id)
                    && !t.detected_at(index)
                    && t.seen_at(index).is_some()
                    && large(t)
            });
        let mut missed = Vec::new();
        for t in tracks.tracks() {
            let large = large(t);
            if t.detected_at(index) {
                self.carried.remove(&t.id);
                self.unfollowed.remove(&t.id);
                self.misses.remove(&t.id);
                // Found on a moving or smeared frame, the detection may be a ghost that the
                // track linked to: confirmed again only on a steady, sharp frame.
                if steady && sharp {
                    self.confirmed.insert(t.id);
                } else {
                    self.confirmed.remove(&t.id);
                }
            } else if !(steady && sharp && large) {
                continue;
            } else if trusted
                && t.class == Class::Face
                && !self.confirmed.contains(&t.id)
                && self.missed_again(t.id, UNCONFIRMED_MISSES)
            {
                // A face only ever found on moving or smeared frames (a whip's ghost copies
                // look like faces to the detector), not found on a steady, sharp frame: it is
                // not there.
                self.carried.remove(&t.id);
                self.unfollowed.insert(t.id);
                missed.push(t.id);
            } else if self.carried.remove(&t.id)
                || (t.class == Class::Plate
                    && t.dets.len() == 1
                    && self.missed_again(t.id, ONCE_MISSES))
            {
                // Carried by the shift, or a plate found once missed again: let go.
                self.unfollowed.insert(t.id);
            }
        }
        (missed, trusted)
    }

    /// Counts a pass that did not find track `id`; whether that makes `limit` in a row.
    fn missed_again(&mut self, id: u32, limit: u8) -> bool {
        let n = self.misses.entry(id).or_insert(0);
        *n = n.saturating_add(1);
        *n >= limit
    }

    /// Whether track `id` was found by a pass on a steady, sharp frame.
    pub(super) fn confirmed(&self, id: u32) -> bool {
        self.confirmed.contains(&id)
    }

    /// A pass of `class`'s detector over the whole of frame `index` ran: trusted, finding
    /// objects at least `min_height` tall (`Some`), or not trusted (`None`).
    pub(super) fn pass(&mut self, class: Class, index: u64, trusted_min_height: Option<f32>) {
        self.passes.insert((index, class), trusted_min_height);
    }

    /// What the pass of `class`'s detector on frame `index` was, if one ran (recent frames
    /// only: see [`Unsure::forget_before`]): `Some(Some(h))` trusted for objects `h` px tall
    /// or more.
    pub(super) fn pass_at(&self, class: Class, index: u64) -> Option<Option<f32>> {
        self.passes.get(&(index, class)).copied()
    }

    /// Frames before `index` are finished.
    pub(super) fn forget_before(&mut self, index: u64) {
        while self
            .passes
            .first_key_value()
            .is_some_and(|(&(f, _), _)| f < index)
        {
            self.passes.pop_first();
        }
    }

    /// Track `id` is done.
    pub(super) fn retire(&mut self, id: u32) {
        self.carried.remove(&id);
        self.unfollowed.remove(&id);
        self.confirmed.remove(&id);
        self.misses.remove(&id);
    }
}

/// `b` reaching `(kx, ky)` of its own width and height further (see [`Jolts::reach_at`]).
fn reach(b: BBox, (kx, ky): (f32, f32)) -> BBox {
    let (ex, ey) = (b.width() * kx, b.height() * ky);
    BBox::new(
        b.x1 + ex.min(0.0),
        b.y1 + ey.min(0.0),
        b.x2 + ex.max(0.0),
        b.y2 + ey.max(0.0),
    )
}

/// The boxes of `from` moved by the camera's move `(dx, dy)` that the move takes across the
/// edge of a frame of `size` (see `motion_cover`: the other end of a smear).
fn moved_across_edge(
    from: &[(u32, Class, BBox)],
    (dx, dy): (f32, f32),
    (w, h): (f32, f32),
) -> Vec<(u32, Class, BBox)> {
    from.iter()
        .map(|&(id, c, b)| (id, c, b.map(1.0, 1.0, dx, dy)))
        .filter(|m| m.2.clip(w, h).area() < m.2.area() - 0.5)
        .collect()
}

/// Following a new track back: where a pass of its detector over the whole frame ends it.
/// - A face first found on a moving or smeared frame may be a whip's ghost (`unconfirmed`):
///   a trusted face pass before it that found nothing there is where it ends (a real face
///   there would have been found, or linked to its track). Only for a track born on a
///   full-frame pass that was not trusted (one born on a crop was not looked for over the
///   whole frame).
/// - A plate followed back through a jolt or a smear (carried by the camera's shift alone,
///   or onto a smeared frame) may have been carried onto the background: the shift read there
///   is often short, or wrong (`doubtful`). A trusted plate sample before that which found
///   nothing where the box is ends it. Before the jolt following was sound, and on a steady
///   camera a sample's miss is not held against a plate (the model misses some on one sample
///   and finds them on the next).
///
/// Either only where the track would have been found: as tall as that pass finds, and mostly
/// in view.
struct BackFollow {
    class: Class,
    unconfirmed: bool,
    doubtful: bool,
}

impl BackFollow {
    fn new(class: Class, unconfirmed: bool) -> Self {
        BackFollow {
            class,
            unconfirmed,
            doubtful: false,
        }
    }

    /// Whether following ends before a frame whose pass (see [`Unsure::pass_at`]) was `pass`,
    /// with the track `t` at `b` on the frame after it, in a frame of `size`.
    fn ends(&self, pass: Option<Option<f32>>, t: &Track, b: BBox, size: (f32, f32)) -> bool {
        (self.unconfirmed || self.doubtful)
            && matches!(pass, Some(Some(h)) if findable(t, Some(b), h, Some(size)))
    }

    /// Following goes on onto a frame, `smeared` or not.
    fn onto(&mut self, smeared: bool) {
        self.doubtful |= self.class == Class::Plate && smeared;
    }

    /// The box was carried onto the frame by the camera's shift alone.
    fn carried_alone(&mut self) {
        self.doubtful |= self.class == Class::Plate;
    }
}

/// Whether box `b` of a track of `class` and another track's detection `d` on the same frame
/// are one object: they overlap (IoU 0.3), or, for plates (never one inside another), one lies
/// mostly inside the other.
fn same_object(class: Class, b: &BBox, d: &BBox) -> bool {
    b.iou(d) >= 0.3 || (class == Class::Plate && b.intersection(d) >= 0.5 * b.area().min(d.area()))
}

/// A followed face's box is kept at least this share of the width and height of the detection
/// it was followed from: resizing follows a face that nears or leaves, but a chain of small
/// shrinks on noise would leave part of the face out; a box too large only costs picture.
const MIN_FOLLOWED_SIZE: f32 = 0.7;

/// `b` grown about its centre, where needed, to [`MIN_FOLLOWED_SIZE`] of `det`'s size.
fn no_smaller(b: BBox, det: &BBox) -> BBox {
    let k = (MIN_FOLLOWED_SIZE * det.width() / b.width().max(1e-3))
        .max(MIN_FOLLOWED_SIZE * det.height() / b.height().max(1e-3));
    if k > 1.0 {
        b.scaled(k)
    } else {
        b
    }
}

/// The shift onto the frame after a smeared one that makes the shifts read onto both (`so_far`
/// onto the smeared frame, `read` onto this one) add up to the move measured `across` both
/// from the sharp frame before; None where that measurement is not to be trusted over them:
/// ghosts make a smeared frame's shift read short, never long nor the other way, so the move
/// across must point the way the two read (a move over half the frame wraps round to the
/// other way in the correlation; a burnt-in overlay pulls it to none) and be at least as long.
fn rest_of_move(so_far: (f32, f32), read: (f32, f32), across: (f32, f32)) -> Option<(f32, f32)> {
    let sum = (so_far.0 + read.0, so_far.1 + read.1);
    let along = across.0 * sum.0 + across.1 * sum.1;
    let longer = across.0.hypot(across.1) >= sum.0.hypot(sum.1);
    (along > 0.0 && longer).then_some((across.0 - so_far.0, across.1 - so_far.1))
}

/// Smallest phase-correlation peak of the shift across a smeared frame (from the sharp frame
/// before it) that replaces the shifts read through the smear.
const SKIP_MIN_PEAK: f32 = 0.1;

impl DetectStage<'_> {
    pub(super) fn record_shift(&mut self, index: u64, m: &FrameMotion) {
        // The first frame, and frames the estimator is unsure of, give no hint.
        let (w, h) = (self.w as f32, self.h as f32);
        let mut shift = if m.confidence > 0.02 {
            (m.dx * w, m.dy * h)
        } else {
            (0.0, 0.0)
        };
        // A frame suddenly much blurrier than the one before, with the picture changed: a
        // whip or a jolt smeared it (the shift estimate cannot be trusted there).
        let smeared = m.diff > 10.0 && m.sharpness < 0.5 * self.last_sharpness;
        let blind = index > 0 && (crate::schedule::unexplained(m) || smeared);
        // Past one such frame, between sharp frames (this one as sharp as the one before the
        // smear, within a half): the shift across both, measured from the sharp frame before
        // it, is what the two shifts must add up to (a smeared frame's own reads short: its
        // ghosts correlate at fractions of the move). What the camera did within the smear is
        // not known; the hull there covers it (see `motion_cover`).
        self.ends.record(index, m, self.last_sharpness);
        let before = index.checked_sub(1);
        if !blind
            && before.is_some_and(|b| b > 0 && self.blind.back() == Some(&b))
            && !self.blind.contains(&(index - 2))
            && m.sharpness >= 0.5 * self.sharpness_before
            && m.skip_confidence >= SKIP_MIN_PEAK
        {
            let so_far = self.shift_at(index - 1);
            let across = (m.skip_dx * w, m.skip_dy * h);
            tracing::trace!(
                index,
                ?so_far,
                ?shift,
                ?across,
                peak = m.skip_confidence,
                "across a smear"
            );
            if let Some(rest) = rest_of_move(so_far, shift, across) {
                self.measured.insert(index, shift);
                shift = rest;
            }
        }
        self.shifts.push_back((index, shift));
        if blind {
            self.blind.push_back(index);
        }
        self.jolts.record(index, m, (self.w as f32, self.h as f32));
        self.sharpness_before = self.last_sharpness;
        self.last_sharpness = m.sharpness;
        // Kept for the window and, behind it, as far as a track's box is held after its last
        // detection (see `carry`).
        let held = self
            .faces
            .config()
            .extend_after
            .max(self.plates.config().extend_after);
        while self.shifts.len() > self.window.len() + 2 + held as usize {
            self.shifts.pop_front();
        }
    }

    /// How far the picture moved from frame `a` to frame `b > a`: the camera's shifts onto
    /// the frames after `a`, up to `b` (unknown ones count as none).
    pub(super) fn carry(&self, a: u64, b: u64) -> (f32, f32) {
        self.shifts
            .iter()
            .filter(|s| s.0 > a && s.0 <= b)
            .fold((0.0, 0.0), |acc, s| (acc.0 + s.1 .0, acc.1 + s.1 .1))
    }

    /// The camera's shift onto frame `i` (from the frame before), in pixels; none if unknown.
    pub(super) fn shift_at(&self, i: u64) -> (f32, f32) {
        self.shifts
            .iter()
            .rev()
            .find(|s| s.0 == i)
            .map(|s| s.1)
            .unwrap_or((0.0, 0.0))
    }

    /// Before frame `index` is detected: follows every track from the frame before (the back
    /// of the window) onto it, so its detections link to where the track moved.
    pub(super) fn follow_forward(&mut self, index: u64, cur: &frame::Video) {
        if !self.opts.following() {
            return;
        }
        let t0 = Instant::now();
        let Some(prev) = self.window.back().filter(|p| p.index + 1 == index) else {
            self.timing.follow_s += t0.elapsed().as_secs_f64();
            return;
        };
        let (prev_l, cur_l) = (luma(&prev.frame), luma(cur));
        let hint = self.shift_at(index);
        let smeared = self.blind.back() == Some(&index);
        let max = self.opts.follow_frames as u64;
        for tracker in [&mut self.faces, &mut self.plates] {
            for t in tracker.tracks_mut() {
                if index > t.last() + max
                    || t.seen_at(index).is_some()
                    || !self.unsure.follows(t.id)
                {
                    continue;
                }
                if let Some(b) = t.seen_at(index - 1) {
                    let resize = t.class == Class::Face;
                    match crate::follow::follow_sized(&prev_l, &cur_l, &b, hint, resize) {
                        Some((nb, score)) => {
                            let nb = no_smaller(nb, &t.dets[t.dets.len() - 1].1);
                            t.followed.insert(index, nb);
                            // Across a smeared frame a weak match may be the smear of
                            // something else: the next steady pass confirms the track or lets
                            // it go.
                            if smeared && score < SMEARED_MATCH {
                                self.unsure.carried(t.id);
                            }
                        }
                        // Blur defeats the appearance match in a shake or a whip; the camera's
                        // motion still places the object, until it has left the frame.
                        None if hint != (0.0, 0.0) => {
                            let nb = b.map(1.0, 1.0, hint.0, hint.1);
                            if nb.clip(self.w as f32, self.h as f32).area() > 0.0 {
                                t.followed.insert(index, nb);
                                self.carried.insert((index, t.id));
                                self.unsure.carried(t.id);
                            }
                        }
                        None => {}
                    }
                }
            }
        }
        self.timing.follow_s += t0.elapsed().as_secs_f64();
    }

    /// After frame `index` is detected: follows every track born on it back into the
    /// unfinished frames before it, `window[..n]` (oldest first).
    pub(super) fn follow_back(&mut self, index: u64, cur: &frame::Video, n: usize) {
        if !self.opts.following() {
            return;
        }
        let t0 = Instant::now();
        let shifts: Vec<(f32, f32)> = self
            .window
            .range(..n)
            .map(|p| self.shift_at(p.index + 1))
            .collect();
        let from = self.window.front().map_or(index, |p| p.index);
        // Born on this frame and not followed yet.
        let new = |t: &Track| t.first() == index && t.followed.is_empty();
        for tracker in [&mut self.faces, &mut self.plates] {
            if !tracker.tracks().iter().any(new) {
                continue;
            }
            // Where the other tracks were detected on the window's frames: a new track
            // followed back onto one of them is the same object, which that track covers from
            // there back.
            let found: Vec<(u32, u64, BBox)> = (tracker.tracks().iter())
                .flat_map(|t| {
                    let within = t.dets.iter().filter(|d| (from..index).contains(&d.0));
                    within.map(move |d| (t.id, d.0, d.1))
                })
                .collect();
            for t in tracker.tracks_mut() {
                if !new(t) {
                    continue;
                }
                let (id, class) = (t.id, t.class);
                let taken = |f: u64, b: &BBox| {
                    found
                        .iter()
                        .any(|&(o, at, d)| o != id && at == f && same_object(class, b, &d))
                };
                let mut next_l = luma(cur);
                let mut b = t.dets[0].1;
                tracing::trace!(id = t.id, index, n, first = ?b.to_xywh_i32(), "follow back");
                // The box's last step back, once following has made one.
                let mut step: Option<(f32, f32)> = None;
                let (fw, fh) = (self.w as f32, self.h as f32);
                // Back through every frame still in the window (it holds at least a plate
                // interval and a keyframe interval, which is how late a new object can be
                // first detected).
                let mut back = BackFollow::new(
                    class,
                    class == Class::Face
                        && !self.unsure.confirmed(t.id)
                        && self.unsure.pass_at(Class::Face, index) == Some(None),
                );
                let resize = t.class == Class::Face;
                for (p, (sx, sy)) in self.window.range(..n).zip(&shifts).rev() {
                    let pass = self.unsure.pass_at(class, p.index);
                    if back.ends(pass, t, b, (fw, fh)) {
                        // A face's ghost was not there; a plate may have been missed by that
                        // one sample, so its track's own hold before its first detection stays.
                        if class == Class::Face {
                            t.absent.insert(p.index);
                        }
                        break;
                    }
                    back.onto(self.blind.contains(&p.index));
                    let pl = luma(&p.frame);
                    match crate::follow::follow_sized(&next_l, &pl, &b, (-sx, -sy), resize) {
                        Some((nb, _)) => {
                            let nb = no_smaller(nb, &t.dets[0].1);
                            if taken(p.index, &nb) {
                                break;
                            }
                            // Centre to centre: a face's box may also change size.
                            let ((nx, ny), (bx, by)) = (nb.center(), b.center());
                            step = Some((nx - bx, ny - by));
                            t.followed.insert(p.index, nb);
                            b = nb;
                            next_l = pl;
                        }
                        // An object that entered the frame: following stops once most of its
                        // box is outside, so the box goes on along its last step until it has
                        // left the frame, covering the part that was already in view.
                        None => match step {
                            Some((dx, dy)) if crate::follow::edge_bound(&b, (dx, dy), fw, fh) => {
                                b = b.map(1.0, 1.0, dx, dy);
                                if b.clip(fw, fh).area() <= 0.0 || taken(p.index, &b) {
                                    break;
                                }
                                t.followed.insert(p.index, b);
                            }
                            // Otherwise the box is carried back with the camera alone (blur or a
                            // turn defeats the appearance match; the camera's motion still
                            // places the object), as far as following would go.
                            _ => {
                                b = b.map(1.0, 1.0, -sx, -sy);
                                if b.clip(fw, fh).area() <= 0.0 || taken(p.index, &b) {
                                    break;
                                }
                                t.followed.insert(p.index, b);
                                // The appearance match is tried again from there.
                                next_l = pl;
                                back.carried_alone();
                            }
                        },
                    }
                }
            }
        }
        self.timing.follow_s += t0.elapsed().as_secs_f64();
    }

    /// The regions to redact on frame `index` for `boxes`, covering what fast motion smeared:
    /// grown along the camera's motion, and on a smeared frame the hull of where each track
    /// was on the frames either side.
    pub(super) fn motion_cover(
        &mut self,
        index: u64,
        boxes: Vec<(u32, Class, BBox)>,
    ) -> Vec<(u32, Class, BBox)> {
        // A fast camera smears what it films along its motion: the mask grows by half the
        // frame's shift on each side along it, so the smear stays inside.
        while self
            .measured
            .first_key_value()
            .is_some_and(|m| *m.0 < index)
        {
            self.measured.pop_first();
        }
        let (sx, sy) = match self.measured.get(&index) {
            Some(&own) => own,
            None => self.shift_at(index),
        };
        // While the camera shakes, the edges where objects were last seen stay covered.
        let mut ahead = Vec::new();
        if self.guards.shake(index, (sx, sy)) {
            let last = self.window.back().map_or(index, |p| p.index);
            for j in index + 1..=last.min(index + self.guards.reach()) {
                ahead.extend(self.boxes_at(j));
            }
        }
        let bands = self.guards.cover(index, &boxes, &ahead);
        let (gx, gy) = (sx.abs() / 2.0, sy.abs() / 2.0);
        let fast = sx.hypot(sy) > crate::schedule::MOVING * self.w.max(self.h) as f32;
        let mut grown: Vec<(u32, Class, BBox)> = boxes
            .into_iter()
            .map(|(id, c, b)| match fast {
                true => (id, c, BBox::new(b.x1 - gx, b.y1 - gy, b.x2 + gx, b.y2 + gy)),
                false => (id, c, b),
            })
            .collect();
        // After a jolt, boxes not detected on the frame grow along the jolt for a few frames,
        // by up to their own size (the larger component of the jolt gets the whole size), so an
        // object that moved further than the camera's estimate says stays covered.
        if let Some(k) = self.jolts.reach_at(index) {
            // Boxes detected on this frame are where their objects are.
            let detected: Vec<u32> = (self.faces.tracks().iter())
                .chain(self.plates.tracks())
                .filter(|t| t.detected_at(index))
                .map(|t| t.id)
                .collect();
            for g in grown.iter_mut().filter(|g| !detected.contains(&g.0)) {
                g.2 = reach(g.2, k);
            }
        }
        // A frame smeared by a whip too fast to measure: each track is redacted over the hull
        // of where it was on the frames either side, which is where its smear lies.
        while self.carried.first().is_some_and(|c| c.0 < index) {
            self.carried.pop_first();
        }
        while self.blind.front().is_some_and(|&i| i < index) {
            self.blind.pop_front();
        }
        if self.blind.front() == Some(&index) {
            let before = self.boxes_at(index.wrapping_sub(1));
            let after = self.boxes_at(index + 1);
            // A track that the camera's move across the smear takes out of the frame (or
            // brought in), smeared across the frame's edge: its other end is where the move
            // carries it, outside. Also where the track has a box on the other side too: a
            // gap filled between detections on either side of a whip away and back (a lerp in
            // the picture) holds it where it was before, not where the whip took it.
            let across = self.carry(index.saturating_sub(1), index + 1);
            let size = (self.w as f32, self.h as f32);
            let gone = moved_across_edge(&before, across, size);
            let came = moved_across_edge(&after, (-across.0, -across.1), size);
            for (id, c, b) in [before, after, gone, came].into_iter().flatten() {
                match grown.iter_mut().find(|g| g.0 == id) {
                    Some(g) => g.2 = g.2.union(&b),
                    None => grown.push((id, c, b)),
                }
            }
        }
        grown.extend(bands);
        if self.ends.whole(index, self.blind.front() == Some(&index)) {
            let whole = BBox::new(0.0, 0.0, self.w as f32, self.h as f32);
            grown.push((WHOLE_FRAME, Class::Plate, whole));
        }
        grown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 60x60 face detection at `x`.
    fn face(x: f32) -> crate::detect::Detection {
        crate::detect::Detection {
            class: Class::Face,
            bbox: BBox::from_xywh(x, 50.0, 60.0, 60.0),
            score: 0.9,
        }
    }

    fn motion(dx: f32, dy: f32, confidence: f32) -> FrameMotion {
        FrameMotion {
            dx,
            dy,
            confidence,
            diff: 20.0,
            ..Default::default()
        }
    }

    #[test]
    fn a_video_that_begins_or_ends_in_a_whip_has_that_frame_redacted_whole() {
        let steady = motion(0.0, 0.0, 0.9);
        // Begins in a whip: the camera moves fast onto frame 1.
        let mut e = BlindEnds::default();
        e.record(0, &steady, 0.0);
        e.record(1, &motion(0.2, 0.0, 0.3), 500.0);
        assert!(e.whole(0, false));
        assert!(!e.whole(1, false));
        // Frame 0 much blurrier than a frame 1 that changed (the whip ended between them).
        let mut e = BlindEnds::default();
        e.record(0, &steady, 0.0);
        let mut sharp = motion(0.01, 0.0, 0.4);
        (sharp.diff, sharp.sharpness) = (20.0, 1000.0);
        e.record(1, &sharp, 300.0);
        assert!(e.whole(0, false));
        // A steady start is not.
        let mut e = BlindEnds::default();
        e.record(0, &steady, 0.0);
        e.record(1, &steady, 500.0);
        assert!(!e.whole(0, false));
        // The end: only once the stream has ended, and only on its last frame, when the
        // camera moved fast onto it or it is smeared.
        for i in 2..60 {
            e.record(i, &motion(0.2, 0.0, 0.3), 500.0);
        }
        assert!(!e.whole(59, false), "the stream has not ended");
        e.ended(Some(59), &VecDeque::new());
        assert!(e.whole(59, false));
        assert!(!e.whole(58, true));
        let mut e = BlindEnds::default();
        for i in 0..60 {
            e.record(i, &steady, 500.0);
        }
        e.ended(Some(59), &VecDeque::new());
        assert!(!e.whole(59, false));
        assert!(e.whole(59, true));
        // Smeared frames running up to a last frame redacted whole are redacted whole too.
        let mut e = BlindEnds::default();
        for i in 0..60 {
            e.record(i, &steady, 500.0);
        }
        e.ended(Some(59), &VecDeque::from([50, 57, 58, 59]));
        assert!(e.whole(57, true) && e.whole(58, true) && e.whole(59, true));
        assert!(!e.whole(56, false) && !e.whole(50, true));
    }

    #[test]
    fn a_followed_box_shrinks_to_no_less_than_most_of_its_detection() {
        let det = BBox::from_xywh(100.0, 100.0, 80.0, 100.0);
        let small = BBox::from_xywh(120.0, 120.0, 30.0, 50.0);
        let kept = no_smaller(small, &det);
        let k = MIN_FOLLOWED_SIZE;
        assert!(kept.width() >= k * 80.0 - 1e-3 && kept.height() >= k * 100.0 - 1e-3);
        assert_eq!(kept.center(), small.center());
        let near = BBox::from_xywh(90.0, 90.0, 100.0, 120.0);
        assert_eq!(no_smaller(near, &det), near);
    }

    #[test]
    fn a_whip_carries_every_box_across_the_frames_edge_even_one_also_held_on_the_other_side() {
        // A face at 185..251 before a whip of 266 px to the left: carried out of view, cut by
        // the edge, whether or not the track also has a box after the smear (a gap filled
        // between detections either side of a whip away and back holds one where it was).
        let face = (0, Class::Face, BBox::from_xywh(185.0, 141.0, 66.0, 79.0));
        let inside = (1, Class::Face, BBox::from_xywh(492.0, 138.0, 65.0, 79.0));
        let moved = moved_across_edge(&[face, inside], (-266.0, 0.0), (640.0, 360.0));
        assert_eq!(moved.len(), 1);
        assert_eq!(moved[0].0, 0);
        assert_eq!(moved[0].2, BBox::from_xywh(-81.0, 141.0, 66.0, 79.0));
        // Wholly out of view, still cut; a small move keeps both in view: nothing.
        assert_eq!(
            moved_across_edge(&[face], (-600.0, 0.0), (640.0, 360.0)).len(),
            1
        );
        assert!(moved_across_edge(&[face, inside], (-20.0, 0.0), (640.0, 360.0)).is_empty());
    }

    #[test]
    fn a_track_followed_back_onto_another_ones_detection_is_that_object() {
        let plate = BBox::from_xywh(100.0, 100.0, 80.0, 30.0);
        // Overlapping, or (plates) holding the other's detection: one object.
        assert!(same_object(
            Class::Plate,
            &plate.map(1.0, 1.0, 20.0, 0.0),
            &plate
        ));
        let around = BBox::from_xywh(85.0, 70.0, 100.0, 90.0);
        assert!(around.iou(&plate) < 0.3);
        assert!(same_object(Class::Plate, &around, &plate));
        assert!(same_object(Class::Plate, &plate, &around));
        assert!(!same_object(
            Class::Plate,
            &plate.map(1.0, 1.0, 70.0, 0.0),
            &plate
        ));
        // A near face's box may hold a far face: two people.
        let near = BBox::from_xywh(100.0, 100.0, 200.0, 200.0);
        let far = BBox::from_xywh(150.0, 120.0, 30.0, 30.0);
        assert!(!same_object(Class::Face, &near, &far));
        assert!(same_object(Class::Face, &far.map(1.0, 1.0, 5.0, 5.0), &far));
    }

    #[test]
    fn a_plate_followed_back_through_a_jolt_ends_at_a_trusted_sample_that_missed_it() {
        let track = |class: Class, h: f32| Track {
            id: 1,
            class,
            dets: vec![(20, BBox::from_xywh(100.0, 100.0, 80.0, h), 0.5)],
            followed: Default::default(),
            absent: Default::default(),
        };
        let size = (640.0, 360.0);
        let plate = track(Class::Plate, 30.0);
        let b = plate.dets[0].1;
        let trusted = Some(Some(24.0));
        let mut back = BackFollow::new(Class::Plate, false);
        // Followed by its appearance on a steady camera: a sample's miss ends nothing.
        back.onto(false);
        assert!(!back.ends(trusted, &plate, b, size));
        // Carried by the camera alone: a trusted sample that would have found it ends it;
        // no sample, an untrusted one, too small a plate or one mostly out of view do not.
        back.carried_alone();
        assert!(back.ends(trusted, &plate, b, size));
        assert!(!back.ends(None, &plate, b, size));
        assert!(!back.ends(Some(None), &plate, b, size));
        assert!(!back.ends(trusted, &track(Class::Plate, 20.0), b, size));
        assert!(!back.ends(trusted, &plate, b.map(1.0, 1.0, -150.0, 0.0), size));
        // Onto a smeared frame, the same.
        let mut smeared = BackFollow::new(Class::Plate, false);
        smeared.onto(true);
        assert!(smeared.ends(trusted, &plate, b, size));
        // A confirmed face is not judged this way; an unconfirmed one is.
        let face = track(Class::Face, 80.0);
        let mut back = BackFollow::new(Class::Face, false);
        back.carried_alone();
        back.onto(true);
        assert!(!back.ends(Some(Some(48.0)), &face, b, size));
        back.unconfirmed = true;
        assert!(back.ends(Some(Some(48.0)), &face, b, size));
    }

    #[test]
    fn the_move_across_a_smear_replaces_the_short_shifts_only_when_it_agrees_with_them() {
        // Read 62 then 16 px left; measured 266 px left across both: the frame after takes
        // the rest, 204 px.
        let rest = rest_of_move((-62.0, 0.0), (-16.0, 0.0), (-266.0, 0.5)).unwrap();
        assert!((rest.0 + 204.0).abs() < 1e-3 && (rest.1 - 0.5).abs() < 1e-3);
        // The other way (a move over half the frame wrapped round), none (an overlay), or
        // shorter than what the frames read: not trusted.
        assert!(rest_of_move((-62.0, 0.0), (-16.0, 0.0), (290.0, 0.0)).is_none());
        assert!(rest_of_move((-62.0, 0.0), (-16.0, 0.0), (0.0, 0.0)).is_none());
        assert!(rest_of_move((-62.0, 0.0), (-16.0, 0.0), (-50.0, 0.0)).is_none());
    }

    #[test]
    fn a_plate_found_once_is_let_go_after_two_steady_samples_miss_it() {
        use crate::detect::Detection;
        use crate::track::TrackConfig;
        let plate = |x: f32| Detection {
            class: Class::Plate,
            bbox: BBox::from_xywh(x, 200.0, 90.0, 30.0),
            score: 0.5,
        };
        let mut plates = Tracker::with_first_id(TrackConfig::default(), 100_000);
        plates.update(0, Class::Plate, &[plate(100.0), plate(400.0)]);
        let mut u = Unsure::default();
        let still = motion(0.0, 0.0, 0.95);
        // Sample 1: the plate at 400 is found again, the one at 100 is not.
        plates.update(3, Class::Plate, &[plate(401.0)]);
        u.after_pass(&plates, 3, (&still, true), PLATE_CONFIRM_MIN_PX);
        assert!(u.follows(100_000) && u.follows(100_001));
        // A moving or smeared sample decides nothing; too small a plate is never let go.
        plates.update(6, Class::Plate, &[]);
        u.after_pass(
            &plates,
            6,
            (&motion(0.05, 0.0, 0.9), true),
            PLATE_CONFIRM_MIN_PX,
        );
        u.after_pass(&plates, 6, (&still, false), PLATE_CONFIRM_MIN_PX);
        u.after_pass(&plates, 6, (&still, true), 40.0);
        assert!(u.follows(100_000));
        // The second steady, sharp miss lets the plate found once go; the one found twice stays.
        u.after_pass(&plates, 6, (&still, true), PLATE_CONFIRM_MIN_PX);
        assert!(!u.follows(100_000));
        assert!(u.follows(100_001));
        // Found again, it is followed again.
        plates.update(9, Class::Plate, &[plate(100.0)]);
        u.after_pass(&plates, 9, (&still, true), PLATE_CONFIRM_MIN_PX);
        assert!(u.follows(100_000));
        // A plate mostly outside the frame (a third of it in view) is never let go: the pass
        // cannot find what it does not see.
        let mut edge =
            Tracker::with_first_id(TrackConfig::default(), 200_000).with_frame(640.0, 360.0);
        edge.update(0, Class::Plate, &[plate(-60.0)]);
        edge.tracks_mut()[0]
            .followed
            .insert(3, BBox::from_xywh(-60.0, 200.0, 90.0, 30.0));
        let mut u = Unsure::default();
        for _ in 0..3 {
            u.after_pass(&edge, 3, (&still, true), PLATE_CONFIRM_MIN_PX);
        }
        assert!(u.follows(200_000));
    }

    #[test]
    fn a_carried_face_track_that_a_steady_keyframe_does_not_find_is_no_longer_followed() {
        use crate::track::TrackConfig;
        let mut faces = Tracker::new(TrackConfig::default());
        faces.update(0, Class::Face, &[face(100.0), face(300.0)]);
        let mut u = Unsure::default();
        let still = motion(0.0, 0.0, 0.95);
        // How tall a face must be to be let go, seen at full size and at half size.
        let (full, half) = (CONFIRM_MIN_PX, 2.0 * CONFIRM_MIN_PX);
        // Both carried by the camera alone; a keyframe during the whip decides nothing.
        u.carried(0);
        u.carried(1);
        faces.update(1, Class::Face, &[]);
        u.after_pass(&faces, 1, (&motion(0.2, 0.0, 0.1), true), full);
        assert!(u.follows(0) && u.follows(1));
        // On a steady, sharp keyframe the pass finds track 0 and not track 1.
        faces.update(2, Class::Face, &[face(102.0)]);
        u.after_pass(&faces, 2, (&motion(0.001, 0.0, 0.9), true), full);
        assert!(u.follows(0));
        assert!(!u.follows(1));
        // Track 0 is confirmed: a later miss on a steady keyframe does not drop it.
        faces.update(3, Class::Face, &[]);
        u.after_pass(&faces, 3, (&still, true), full);
        assert!(u.follows(0));
        // A detection where track 1 is makes it followed again.
        faces.update(4, Class::Face, &[face(301.0)]);
        u.after_pass(&faces, 4, (&still, true), full);
        assert!(u.follows(1));
        // Carried again: a smeared frame, or a face too small at the pass's scale (60 px seen
        // at half size is 30 px), decides nothing.
        u.carried(1);
        faces.update(5, Class::Face, &[]);
        u.after_pass(&faces, 5, (&still, false), full);
        u.after_pass(&faces, 5, (&still, true), half);
        assert!(u.follows(1));
        u.after_pass(&faces, 5, (&still, true), full);
        assert!(!u.follows(1));
    }

    #[test]
    fn a_face_found_only_during_a_whip_is_let_go_by_trusted_steady_passes_that_miss_it() {
        use crate::track::TrackConfig;
        let mut faces = Tracker::new(TrackConfig::default());
        let mut u = Unsure::default();
        let (whip, still) = (motion(0.2, 0.0, 0.1), motion(0.0, 0.0, 0.95));
        let full = CONFIRM_MIN_PX;
        // A real face (track 0) and a ghost copy of it (track 1), found on a whip frame.
        faces.update(0, Class::Face, &[face(100.0), face(300.0)]);
        let (missed, trusted) = u.after_pass(&faces, 0, (&whip, true), full);
        assert!(missed.is_empty() && !trusted);
        // The steady, sharp keyframes after it find the face and not the ghost: the second
        // in a row lets the ghost go, seen missing there.
        faces.update(1, Class::Face, &[face(101.0)]);
        let (missed, trusted) = u.after_pass(&faces, 1, (&still, true), full);
        assert!(trusted && u.confirmed(0) && !u.confirmed(1));
        assert!(missed.is_empty() && u.follows(1));
        faces.update(2, Class::Face, &[face(101.0)]);
        let (missed, _) = u.after_pass(&faces, 2, (&still, true), full);
        assert_eq!(missed, [1]);
        assert!(u.follows(0) && !u.follows(1));
        // A confirmed track found on a whip frame (it may have linked to a ghost) must be
        // found on a steady frame again.
        faces.update(3, Class::Face, &[face(103.0)]);
        u.after_pass(&faces, 3, (&whip, true), full);
        assert!(!u.confirmed(0));
        faces.update(4, Class::Face, &[face(103.0)]);
        u.after_pass(&faces, 4, (&still, true), full);
        assert!(u.confirmed(0));
        // A steady pass that misses a confirmed face the tracker still sees (followed there) is
        // not trusted: a later ghost is not let go on it.
        faces.update(5, Class::Face, &[face(500.0)]);
        faces.tracks_mut()[0]
            .followed
            .insert(6, BBox::from_xywh(103.0, 50.0, 60.0, 60.0));
        faces.update(6, Class::Face, &[]);
        for _ in 0..3 {
            let (missed, trusted) = u.after_pass(&faces, 6, (&still, true), full);
            assert!(!trusted && missed.is_empty());
        }
        assert!(u.follows(2));
        // Too small to be found at the pass's scale, or a smeared frame: nothing decided.
        faces.update(7, Class::Face, &[face(103.0)]);
        for _ in 0..3 {
            // A smeared frame is never trusted, even where the shift reads steady.
            let (missed, trusted) = u.after_pass(&faces, 7, (&still, false), full);
            assert!(missed.is_empty() && !trusted);
            assert!(u
                .after_pass(&faces, 7, (&still, true), 2.0 * full)
                .0
                .is_empty());
        }
        assert!(u.follows(2));
        // Track 1, let go before, is seen missing again; track 2 on its second miss.
        assert_eq!(u.after_pass(&faces, 7, (&still, true), full).0, [1]);
        let (missed, _) = u.after_pass(&faces, 7, (&still, true), full);
        assert_eq!(missed, [1, 2]);
    }

    #[test]
    fn a_jolt_after_calm_reaches_along_it_for_three_frames() {
        let frame = (640.0, 360.0);
        let mut j = Jolts::default();
        j.record(0, &motion(0.0, 0.0, 0.0), frame);
        j.record(1, &motion(0.002, 0.0, 0.5), frame);
        // Left 38.4 px and down 19.2 px, read with a weak peak.
        j.record(2, &motion(-0.06, 0.0533, 0.15), frame);
        assert_eq!(j.reach_at(1), None);
        for i in 2..=4 {
            let (kx, ky) = j.reach_at(i).expect("a jolt");
            assert!(
                kx == -1.0 && (ky - 0.5).abs() < 0.01,
                "frame {i}: {kx} {ky}"
            );
        }
        assert_eq!(j.reach_at(5), None);
        let b = reach(BBox::new(100.0, 100.0, 150.0, 160.0), (-1.0, 0.5));
        assert_eq!(b, BBox::new(50.0, 100.0, 150.0, 190.0));
    }

    #[test]
    fn a_steady_shake_or_a_well_read_pan_is_no_jolt() {
        let mut j = Jolts::default();
        j.record(0, &motion(0.0, 0.0, 0.0), (640.0, 360.0));
        // A pan the estimator explains well.
        j.record(1, &motion(0.08, 0.0, 0.6), (640.0, 360.0));
        // Then a shake: fast on every frame, weakly read, but never after a calm frame.
        for i in 2..30 {
            let s = if i % 2 == 0 { 0.05 } else { -0.05 };
            j.record(i, &motion(s, s, 0.1), (640.0, 360.0));
        }
        assert!((0..30).all(|i| j.reach_at(i).is_none()));
    }
}
