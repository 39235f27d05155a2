//! Edge guards: the frame's edge where an object was last seen while the camera shakes.
//!
//! In a violent shake an object at the frame's edge goes out of view and back in for a frame
//! at a time, a different part of it each time. Those frames are seldom a detector's, the
//! object's track ends while it is out of view, and the camera's measured shift, unreliable
//! on smeared frames, does not say where it comes back. So while the camera shakes (fast
//! motion both ways along an axis, not a whip one way), the band along the edge where a face
//! or plate was last seen cut by it stays redacted on the frames where the object has no box
//! inside the frame: as deep into the frame as the object's box, and as long along the edge as
//! the box plus the camera's largest recent shift either way. A guard covers the frames within
//! [`GUARD_S`] of a frame where the object was seen at the edge, before it (through the
//! look-ahead window) as well as after, and nothing once the camera is steady.

use std::collections::VecDeque;

use crate::detect::{BBox, Class};

/// How long before and after its object was seen at the edge a guard lasts, seconds.
pub const GUARD_S: f64 = 1.0;
/// The window over which the camera counts as shaking, seconds: at least [`SHAKE_FAST`] of
/// its frames moved [`crate::schedule::FAST`] or more.
pub const SHAKE_S: f64 = 0.5;
/// See [`SHAKE_S`]: one fast frame is a jolt or a whip; a shake repeats, both ways.
pub const SHAKE_FAST: usize = 2;
/// A box this close to an edge (pixels) is cut by it.
const CUT: f32 = crate::track::EDGE_MARGIN;

/// One edge of the frame, and the band along it a guard covers.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Side {
    Left,
    Right,
    Top,
    Bottom,
}

impl Side {
    const ALL: [Side; 4] = [Side::Left, Side::Right, Side::Top, Side::Bottom];

    /// Whether `b` (clipped to the `w`x`h` frame) is cut by this edge.
    fn cuts(self, b: &BBox, (w, h): (f32, f32)) -> bool {
        match self {
            Side::Left => b.x1 <= CUT,
            Side::Right => w - b.x2 <= CUT,
            Side::Top => b.y1 <= CUT,
            Side::Bottom => h - b.y2 <= CUT,
        }
    }

    /// The extent of `b` along this edge, grown by the shift `(ax, ay)` either way, and how
    /// deep `b` reaches across it.
    fn span(self, b: &BBox, (ax, ay): (f32, f32)) -> (f32, f32, f32) {
        match self {
            Side::Left | Side::Right => (b.y1 - ay, b.y2 + ay, b.width()),
            Side::Top | Side::Bottom => (b.x1 - ax, b.x2 + ax, b.height()),
        }
    }

    /// The band along this edge from `from` to `to`, `depth` deep, in a `w`x`h` frame.
    fn band(self, from: f32, to: f32, depth: f32, (w, h): (f32, f32)) -> BBox {
        let b = match self {
            Side::Left => BBox::new(0.0, from, depth, to),
            Side::Right => BBox::new(w - depth, from, w, to),
            Side::Top => BBox::new(from, 0.0, to, depth),
            Side::Bottom => BBox::new(from, h - depth, to, h),
        };
        b.clip(w, h)
    }
}

#[derive(Debug, Clone, Copy)]
struct Guard {
    id: u32,
    class: Class,
    side: Side,
    /// The band's extent along the edge (y for left and right, x for top and bottom).
    from: f32,
    to: f32,
    /// How far the band reaches into the frame.
    depth: f32,
    /// The last frame it covers.
    until: u64,
}

/// The guards of one video (see the module's documentation).
#[derive(Debug)]
pub(super) struct EdgeGuards {
    guards: Vec<Guard>,
    /// (frame, dx, dy) of the camera's shift onto each recent frame, pixels.
    recent: VecDeque<(u64, f32, f32)>,
    /// Whether the camera shakes on the frame last given to [`Self::shake`].
    shaking: bool,
    size: (f32, f32),
    guard_frames: u64,
    shake_frames: u64,
}

impl EdgeGuards {
    /// Guards for a `w`x`h` video at `fps` frames a second.
    pub fn new(w: usize, h: usize, fps: f64) -> Self {
        let fps = if fps.is_finite() && fps > 0.0 {
            fps
        } else {
            30.0
        };
        let frames = |s: f64| ((s * fps).round() as u64).max(1);
        EdgeGuards {
            guards: Vec::new(),
            recent: VecDeque::new(),
            shaking: false,
            size: (w as f32, h as f32),
            guard_frames: frames(GUARD_S),
            shake_frames: frames(SHAKE_S),
        }
    }

    /// How many frames after the one being finished a sighting guards it (see [`Self::cover`]).
    pub fn reach(&self) -> u64 {
        self.guard_frames
    }

    /// Records the camera's shift onto frame `index` (pixels; frames in order) and says
    /// whether the camera shakes there (see [`Self::cover`]).
    pub fn shake(&mut self, index: u64, shift: (f32, f32)) -> bool {
        let (w, h) = self.size;
        self.recent.push_back((index, shift.0, shift.1));
        while self
            .recent
            .front()
            .is_some_and(|r| r.0 + self.shake_frames <= index)
        {
            self.recent.pop_front();
        }
        let fast_at = crate::schedule::FAST * w.max(h);
        let fast: Vec<(f32, f32)> = (self.recent.iter())
            .filter(|r| r.1.hypot(r.2) >= fast_at)
            .map(|r| (r.1, r.2))
            .collect();
        let both_ways = |a: fn(&(f32, f32)) -> f32| {
            fast.iter().any(|s| a(s) > fast_at / 2.0) && fast.iter().any(|s| a(s) < -fast_at / 2.0)
        };
        self.shaking = fast.len() >= SHAKE_FAST && (both_ways(|s| s.0) || both_ways(|s| s.1));
        self.shaking
    }

    /// Frame `index`, after [`Self::shake`], with the final boxes to redact on it and, while
    /// the camera shakes, those of the frames up to [`Self::reach`] after it that are known:
    /// records the boxes cut by an edge, and returns the guards' bands to redact as well
    /// while the camera shakes.
    pub fn cover(
        &mut self,
        index: u64,
        boxes: &[(u32, Class, BBox)],
        ahead: &[(u32, Class, BBox)],
    ) -> Vec<(u32, Class, BBox)> {
        let size = self.size;
        self.guards.retain(|g| g.until >= index);
        if !self.shaking {
            return Vec::new();
        }
        let ax = self.recent.iter().map(|r| r.1.abs()).fold(0.0, f32::max);
        let ay = self.recent.iter().map(|r| r.2.abs()).fold(0.0, f32::max);
        // A sighting ahead guards this frame only; the next frame looks ahead again.
        let seen = (boxes.iter().map(|b| (b, self.guard_frames)))
            .chain(ahead.iter().map(|b| (b, 0)))
            .filter(|b| b.0 .1 != Class::Manual);
        for (&(id, class, b), last) in seen {
            let b = b.clip(size.0, size.1);
            if !b.is_valid() {
                continue;
            }
            for side in Side::ALL.into_iter().filter(|s| s.cuts(&b, size)) {
                let (from, to, depth) = side.span(&b, (ax, ay));
                let g = Guard {
                    id,
                    class,
                    side,
                    from,
                    to,
                    depth,
                    until: index + last,
                };
                match (self.guards.iter_mut()).find(|o| o.id == id && o.side == side) {
                    Some(o) if o.until <= g.until => *o = g,
                    Some(_) => {}
                    None => self.guards.push(g),
                }
            }
        }
        // An object with a box inside the frame, off the guard's edge, is covered by it.
        let away = |g: &Guard, b: &BBox| {
            let b = b.clip(size.0, size.1);
            b.is_valid() && !g.side.cuts(&b, size)
        };
        self.guards
            .iter()
            .filter(|g| !boxes.iter().any(|b| b.0 == g.id && away(g, &b.2)))
            .map(|g| (g.id, g.class, g.side.band(g.from, g.to, g.depth, size)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl EdgeGuards {
        fn cover_now(
            &mut self,
            index: u64,
            shift: (f32, f32),
            boxes: &[(u32, Class, BBox)],
        ) -> Vec<(u32, Class, BBox)> {
            self.shake(index, shift);
            self.cover(index, boxes, &[])
        }
    }

    #[test]
    fn a_plate_seen_at_the_edge_ahead_guards_the_shaken_frames_before() {
        let mut g = EdgeGuards::new(640, 360, 30.0);
        let later = (9, Class::Plate, BBox::from_xywh(0.0, 150.0, 14.0, 20.0));
        assert!(!g.shake(0, (40.0, 0.0)));
        assert!(g.cover(0, &[], &[later]).is_empty());
        assert!(g.shake(1, (-40.0, 0.0)));
        let bands = g.cover(1, &[], &[later]);
        assert_eq!(bands.len(), 1);
        assert_eq!(bands[0].2.x2, 14.0);
        // Seen ahead no longer: this frame is not guarded.
        assert!(g.shake(2, (40.0, 0.0)));
        assert!(g.cover(2, &[], &[]).is_empty());
    }

    #[test]
    fn a_plate_seen_at_the_edge_in_a_shake_keeps_its_band_covered() {
        // 640x360 at 30 fps; FAST is 0.04 of 640 = 25.6 px a frame.
        let mut g = EdgeGuards::new(640, 360, 30.0);
        let plate = (7, Class::Plate, BBox::from_xywh(0.0, 137.0, 27.0, 36.0));
        // Steady: nothing is guarded.
        assert!(g.cover_now(0, (2.0, 1.0), &[plate]).is_empty());
        // A shake (two fast frames, back and forth): the plate cut by the left edge is
        // guarded...
        assert!(g.cover_now(1, (30.0, 40.0), &[plate]).is_empty());
        assert_eq!(g.cover_now(2, (-35.0, -50.0), &[plate]).len(), 1);
        let bands = g.cover_now(3, (35.0, 50.0), &[]);
        assert_eq!(bands.len(), 1);
        let (id, class, b) = bands[0];
        assert_eq!((id, class), (7, Class::Plate));
        // ... as deep as its box, along the edge by its box and the largest shift either way.
        assert_eq!(b.x1, 0.0);
        assert_eq!(b.x2, 27.0);
        assert!(b.y1 <= 137.0 - 50.0 && b.y2 >= 173.0 + 50.0);
        // Not while the plate has a box inside the frame, away from the edge.
        let inside = (7, Class::Plate, BBox::from_xywh(40.0, 137.0, 60.0, 36.0));
        assert!(g.cover_now(4, (-40.0, 0.0), &[inside]).is_empty());
        // For a second after it was last seen at the edge, while the shake goes on.
        // (Last seen on frame 2, in the shake.)
        for i in 5..=32 {
            let s = if i % 2 == 0 { 40.0 } else { -40.0 };
            assert_eq!(g.cover_now(i, (s, 0.0), &[]).len(), 1, "{i}");
        }
        assert!(g.cover_now(33, (-40.0, 0.0), &[]).is_empty());
    }

    #[test]
    fn a_whip_one_way_is_no_shake() {
        let mut g = EdgeGuards::new(640, 360, 30.0);
        let face = (1, Class::Face, BBox::from_xywh(600.0, 100.0, 40.0, 60.0));
        for i in 0..5 {
            assert!(g.cover_now(i, (-150.0, 5.0), &[face]).is_empty());
        }
    }

    #[test]
    fn no_band_once_the_camera_is_steady_nor_for_a_box_away_from_the_edges() {
        let mut g = EdgeGuards::new(640, 360, 30.0);
        let face = (1, Class::Face, BBox::from_xywh(600.0, 100.0, 40.0, 60.0));
        let inside = (2, Class::Face, BBox::from_xywh(300.0, 150.0, 40.0, 60.0));
        g.cover_now(0, (30.0, 0.0), &[face, inside]);
        let bands = g.cover_now(1, (-30.0, 0.0), &[face, inside]);
        assert_eq!(bands.len(), 1);
        assert_eq!(bands[0].2.x2, 640.0);
        // Steady for half a second: the shake is over.
        for i in 2..17 {
            g.cover_now(i, (1.0, 0.0), &[]);
        }
        assert!(g.cover_now(17, (1.0, 0.0), &[]).is_empty());
    }
}
