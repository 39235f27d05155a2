//! Tracking and gap filling. Detections are linked into tracks by overlap; a track is redacted
//! on every frame between its detections (boxes interpolated), and a few frames before its first
//! and after its last detection. Frames whose boxes can still change are not final.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::detect::{BBox, Class, Detection};
use crate::error::{Result, VeilError};

/// How detections become tracks, and how far tracks reach beyond their detections.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TrackConfig {
    /// Largest run of frames without a detection that a track bridges.
    pub max_gap: u32,
    /// Frames redacted before a track's first detection.
    pub extend_before: u32,
    /// Frames redacted after a track's last detection.
    pub extend_after: u32,
    /// Smallest IoU (or centre-distance match) that links a detection to a track.
    pub min_iou: f32,
}

impl Default for TrackConfig {
    fn default() -> Self {
        TrackConfig {
            max_gap: 12,
            extend_before: 6,
            extend_after: 6,
            min_iou: 0.15,
        }
    }
}

impl TrackConfig {
    pub fn validate(&self) -> Result<()> {
        if self.max_gap > 1000 || self.extend_before > 1000 || self.extend_after > 1000 {
            return Err(VeilError::setting(
                "--max-gap/--extend-before/--extend-after",
                format!(
                    "must be at most 1000 frames (got gap {}, before {}, after {})",
                    self.max_gap, self.extend_before, self.extend_after
                ),
            ));
        }
        if !(0.0..=1.0).contains(&self.min_iou) {
            return Err(crate::error::InvalidSetting::out_of_range(
                "track IoU",
                self.min_iou,
                "in 0..1",
            )
            .into());
        }
        Ok(())
    }

    /// Frames that must be detected beyond a frame before its boxes are final.
    pub fn lookahead(&self) -> u32 {
        self.max_gap.max(self.extend_before)
    }
}

/// Detections up to this many frames from a track's first (last) one set its pace before
/// (after) them (see [`Track::paced_box`])…
pub const PACE_SPAN: u64 = 15;
/// …from two at least this many frames apart.
pub const PACE_MIN: u64 = 3;

/// How far the picture moved from one frame to a later one, in pixels (see [`Track::box_at`]).
pub type Carry<'a> = dyn Fn(u64, u64) -> (f32, f32) + 'a;

/// A track: a class and its detections by frame.
#[derive(Debug, Clone, Serialize)]
pub struct Track {
    pub id: u32,
    pub class: Class,
    /// (frame, box, score), frames strictly increasing.
    pub dets: Vec<(u64, BBox, f32)>,
    /// Boxes found by following the track's appearance on frames without a detection
    /// (`crate::follow`), before, between and after its detections.
    pub followed: BTreeMap<u64, BBox>,
    /// Frames where a pass of the track's detector over the whole of a steady, sharp frame
    /// did not find it although it was large enough to be found there, while the track was
    /// unsure (see `pipeline::stage_camera::Unsure`): its detections are not bridged, nor its
    /// nearest detection held, across such a frame.
    #[serde(skip)]
    pub absent: BTreeSet<u64>,
}

impl Track {
    pub fn first(&self) -> u64 {
        self.dets[0].0
    }
    pub fn last(&self) -> u64 {
        self.dets[self.dets.len() - 1].0
    }
    /// The last frame the track has a box for, detected or followed.
    pub fn last_seen(&self) -> u64 {
        let followed = self.followed.last_key_value().map(|(f, _)| *f).unwrap_or(0);
        self.last().max(followed)
    }

    /// Whether the track has a detection (not only a followed box) on `frame`.
    pub fn detected_at(&self, frame: u64) -> bool {
        self.dets.binary_search_by_key(&frame, |d| d.0).is_ok()
    }

    /// The box on `frame` from a detection or from following, if the track has one there.
    pub fn seen_at(&self, frame: u64) -> Option<BBox> {
        match self.dets.binary_search_by_key(&frame, |d| d.0) {
            Ok(i) => Some(self.dets[i].1),
            Err(_) => self.followed.get(&frame).copied(),
        }
    }

    /// The track's size where it was seen whole: the largest width and height of its detected
    /// boxes that keep `margin` pixels from every edge of a `w`x`h` frame.
    pub fn full_size(&self, w: f32, h: f32, margin: f32) -> Option<(f32, f32)> {
        self.dets
            .iter()
            .map(|d| d.1)
            .filter(|b| {
                b.x1 >= margin && b.y1 >= margin && b.x2 <= w - margin && b.y2 <= h - margin
            })
            .fold(None, |acc, b| {
                let (aw, ah) = acc.unwrap_or((0.0, 0.0));
                Some((aw.max(b.width()), ah.max(b.height())))
            })
    }

    pub fn max_score(&self) -> f32 {
        self.dets.iter().map(|d| d.2).fold(0.0, f32::max)
    }

    /// Before the track's first detection and after its last, where its own pace takes the
    /// nearest detection besides the camera's shift (see [`Track::box_at`]): the mean motion,
    /// net of the camera's, between that detection and the one furthest from it within
    /// [`PACE_SPAN`] frames (at least [`PACE_MIN`] apart). An object that walks in at the
    /// edge, or that a zoom moves toward it, is not where the camera's shift alone holds it.
    /// `None` where [`Track::box_at`] holds nothing, or no such pair of detections exists.
    pub fn paced_box(&self, frame: u64, cfg: &TrackConfig, carry: &Carry<'_>) -> Option<BBox> {
        self.paced(frame, self.box_at(frame, cfg, carry)?, carry)
    }

    /// [`Track::paced_box`] from the box `held` that [`Track::box_at`] gave for `frame`.
    fn paced(&self, frame: u64, held: BBox, carry: &Carry<'_>) -> Option<BBox> {
        let (first, last) = (self.first(), self.last());
        let (near, far) = if frame < first {
            let far = self.dets.iter().rev().find(|d| d.0 <= first + PACE_SPAN)?;
            (&self.dets[0], far)
        } else if frame > last {
            let far = self.dets.iter().find(|d| d.0 + PACE_SPAN >= last)?;
            (&self.dets[self.dets.len() - 1], far)
        } else {
            return None;
        };
        let (a, b) = if near.0 < far.0 {
            (near, far)
        } else {
            (far, near)
        };
        if b.0 < a.0 + PACE_MIN {
            return None;
        }
        let (cx, cy) = carry(a.0, b.0);
        let n = (b.0 - a.0) as f32;
        let (ax, ay) = a.1.center();
        let (bx, by) = b.1.center();
        let pace = ((bx - ax - cx) / n, (by - ay - cy) / n);
        let steps = frame as f32 - near.0 as f32;
        Some(held.map(1.0, 1.0, pace.0 * steps, pace.1 * steps))
    }

    /// The box this track redacts on `frame`, if any. Before its first detection and after
    /// its last, the nearest detection is held where the camera carries it: `carry(a, b)` is
    /// how far the picture moved from frame `a` to frame `b > a`, in pixels.
    pub fn box_at(&self, frame: u64, cfg: &TrackConfig, carry: &Carry<'_>) -> Option<BBox> {
        let first = self.first();
        let last = self.last();
        if frame + (cfg.extend_before as u64) < first || frame > last + (cfg.extend_after as u64) {
            return None;
        }
        // Seen missing between here and the nearest detection (exclusive): nothing to bridge
        // or hold across that frame.
        let missing = |lo: u64, hi: u64| lo < hi && self.absent.range(lo..hi).next().is_some();
        if frame <= first {
            if missing(frame, first) {
                return None;
            }
            let (dx, dy) = carry(frame, first);
            return Some(self.dets[0].1.map(1.0, 1.0, -dx, -dy));
        }
        if frame >= last {
            if missing(last + 1, frame + 1) {
                return None;
            }
            let (dx, dy) = carry(last, frame);
            return Some(self.dets[self.dets.len() - 1].1.map(1.0, 1.0, dx, dy));
        }
        let i = self.dets.partition_point(|d| d.0 <= frame);
        let (fa, ba, _) = self.dets[i - 1];
        if fa == frame {
            return Some(ba);
        }
        let (fb, bb, _) = self.dets[i];
        if missing(fa + 1, fb) {
            // The gap is cut where the track was seen missing: each side is held as a
            // track's end would be.
            if !missing(fa + 1, frame + 1) && frame - fa <= cfg.extend_after as u64 {
                let (dx, dy) = carry(fa, frame);
                return Some(ba.map(1.0, 1.0, dx, dy));
            }
            if !missing(frame, fb) && fb - frame <= cfg.extend_before as u64 {
                let (dx, dy) = carry(frame, fb);
                return Some(bb.map(1.0, 1.0, -dx, -dy));
            }
            return None;
        }
        // Interpolate between the nearest known boxes, followed ones included: after a link
        // made through following, the detections alone can be far apart and far off the path.
        let (fa, ba) = self
            .followed
            .range(fa + 1..frame)
            .next_back()
            .map(|(f, b)| (*f, *b))
            .unwrap_or((fa, ba));
        let (fb, bb) = self
            .followed
            .range(frame + 1..fb)
            .next()
            .map(|(f, b)| (*f, *b))
            .unwrap_or((fb, bb));
        let t = (frame - fa) as f32 / (fb - fa) as f32;
        Some(ba.lerp(&bb, t))
    }
}

/// Boxes within this many pixels of the frame's edge are cut by it.
pub const EDGE_MARGIN: f32 = 4.0;

/// A box cut by the frame's edge (an object entering or leaving) completed to the object's
/// `full` size: the detector boxes only the part it sees, off-centre and smaller, so the box
/// grows inward from the edge it touches (and about its centre along an edge it does not
/// touch) until it has the size the object had when seen whole. The result is clipped.
pub fn complete_at_edge(b: &BBox, full: (f32, f32), w: f32, h: f32) -> BBox {
    let grow = |lo: f32, hi: f32, size: f32, n: f32| -> (f32, f32) {
        if hi - lo >= size {
            return (lo, hi);
        }
        let (at_lo, at_hi) = (lo <= EDGE_MARGIN, hi >= n - EDGE_MARGIN);
        match (at_lo, at_hi) {
            (true, false) => (lo, lo + size),
            (false, true) => (hi - size, hi),
            _ => {
                let c = (lo + hi) / 2.0;
                (c - size / 2.0, c + size / 2.0)
            }
        }
    };
    let cut = b.x1 <= EDGE_MARGIN
        || b.y1 <= EDGE_MARGIN
        || b.x2 >= w - EDGE_MARGIN
        || b.y2 >= h - EDGE_MARGIN;
    if !cut {
        return *b;
    }
    let (x1, x2) = grow(b.x1, b.x2, full.0, w);
    let (y1, y2) = grow(b.y1, b.y2, full.1, h);
    BBox::new(x1, y1, x2, y2).clip(w, h)
}

/// A whole face's box is about this wide for its height (CenterFace's boxes: 0.7–0.9).
pub const FACE_ASPECT: f32 = 0.8;

/// A face box narrower than this for its height, or wider than [`CUT_FLAT`], is not a whole
/// face's (CenterFace's boxes of whole faces: 0.7–0.9).
pub const CUT_NARROW: f32 = 0.65;
/// See [`CUT_NARROW`].
pub const CUT_FLAT: f32 = 1.1;

/// A face box far narrower (or flatter) than a whole face ([`CUT_NARROW`], [`CUT_FLAT`])
/// within its own width (height) of a side (top or bottom) of a `w`x`h` frame: a face the
/// detector found cut by that edge, as it entered or left, and followed or held on away from
/// it. The box kept the cut width while the rest of the face came into view; it grows toward
/// the nearest such edge to a whole face's shape ([`FACE_ASPECT`]). At the edge itself that
/// changes nothing (clipped).
pub fn complete_toward_edge(b: &BBox, w: f32, h: f32) -> BBox {
    // The extent [lo, hi) in a frame `n` long, grown to `need` toward the nearer end when
    // that end is within the extent's own length.
    let toward = |lo: f32, hi: f32, n: f32, need: f32| -> (f32, f32) {
        let (before, after) = (lo, n - hi);
        match before.min(after) < hi - lo {
            false => (lo, hi),
            true if before <= after => (hi - need, hi),
            true => (lo, lo + need),
        }
    };
    let (bw, bh) = (b.width(), b.height());
    let mut g = *b;
    if bw < CUT_NARROW * bh {
        (g.x1, g.x2) = toward(b.x1, b.x2, w, FACE_ASPECT * bh);
    } else if bw > CUT_FLAT * bh {
        (g.y1, g.y2) = toward(b.y1, b.y2, h, bw / FACE_ASPECT);
    }
    g.clip(w, h)
}

/// Links detections into tracks, one class at a time.
#[derive(Debug, Default)]
pub struct Tracker {
    cfg: TrackConfig,
    tracks: Vec<Track>,
    next_id: u32,
    /// The frame size, once known: boxes cut by its edge are completed to their track's size.
    frame: Option<(f32, f32)>,
}

impl Tracker {
    pub fn new(cfg: TrackConfig) -> Self {
        Tracker {
            cfg,
            tracks: Vec::new(),
            next_id: 0,
            frame: None,
        }
    }

    /// Tells the tracker the frame size (see [`complete_at_edge`]).
    pub fn with_frame(mut self, w: f32, h: f32) -> Self {
        self.frame = Some((w, h));
        self
    }

    /// A tracker whose ids start at `first_id`, so two trackers (faces, plates) feeding one
    /// audit record never share an id.
    pub fn with_first_id(cfg: TrackConfig, first_id: u32) -> Self {
        Tracker {
            next_id: first_id,
            ..Tracker::new(cfg)
        }
    }

    pub fn config(&self) -> &TrackConfig {
        &self.cfg
    }

    /// Adds the detections of `class` on `frame`. Frames must be given in increasing order per
    /// class; a class may be detected on sampled frames only.
    pub fn update(&mut self, frame: u64, class: Class, dets: &[Detection]) {
        let max_gap = self.cfg.max_gap as u64;
        // Candidate pairs (track, detection) by match quality, best first.
        let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
        for (ti, t) in self.tracks.iter().enumerate() {
            if t.class != class
                || t.last() >= frame
                || frame.saturating_sub(t.last_seen()) > max_gap + 1
            {
                continue;
            }
            // The latest box, followed (up to this frame) or detected, so a moving object
            // links after a miss and through a fast camera move.
            let tb = t
                .followed
                .range(t.last()..=frame)
                .next_back()
                .map(|(_, b)| *b)
                .unwrap_or(t.dets[t.dets.len() - 1].1);
            for (di, d) in dets.iter().enumerate() {
                if d.class != class {
                    continue;
                }
                let q = match_quality(&tb, &d.bbox);
                if q >= self.cfg.min_iou {
                    pairs.push((q, ti, di));
                }
            }
        }
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut used_t = vec![false; self.tracks.len()];
        let mut used_d = vec![false; dets.len()];
        for (_, ti, di) in pairs {
            if used_t[ti] || used_d[di] {
                continue;
            }
            used_t[ti] = true;
            used_d[di] = true;
            let d = dets[di];
            // The detection replaces where following put the track on this frame when the two
            // agree; otherwise both stay (the detection may be partial).
            let t = &mut self.tracks[ti];
            if t.followed
                .get(&frame)
                .is_some_and(|f| f.iou(&d.bbox) >= 0.5)
            {
                t.followed.remove(&frame);
            }
            t.dets.push((frame, d.bbox, d.score));
        }
        for (di, d) in dets.iter().enumerate() {
            if !used_d[di] && d.class == class {
                self.tracks.push(Track {
                    id: self.next_id,
                    class,
                    dets: vec![(frame, d.bbox, d.score)],
                    followed: BTreeMap::new(),
                    absent: BTreeSet::new(),
                });
                self.next_id += 1;
            }
        }
    }

    /// Every box to redact on `frame`, with its track id, for a still camera (see
    /// [`Tracker::boxes_carried`]).
    pub fn boxes_at(&self, frame: u64) -> Vec<(u32, Class, BBox)> {
        self.boxes_carried(frame, &|_, _| (0.0, 0.0))
    }

    /// Every box to redact on `frame`, with its track id: the detected or gap-filled box (held
    /// where the camera's motion `carry` takes it, see [`Track::box_at`]), and the followed
    /// one where following found the object elsewhere.
    pub fn boxes_carried(&self, frame: u64, carry: &Carry<'_>) -> Vec<(u32, Class, BBox)> {
        let mut out = Vec::new();
        for t in &self.tracks {
            let full = self
                .frame
                .and_then(|(w, h)| Some((w, h, t.full_size(w, h, EDGE_MARGIN)?)));
            let complete = |b: BBox| {
                let b = match full {
                    Some((w, h, size)) => complete_at_edge(&b, size, w, h),
                    None => b,
                };
                match (self.frame, t.class) {
                    (Some((w, h)), Class::Face) => complete_toward_edge(&b, w, h),
                    _ => b,
                }
            };
            // A held box the camera carried wholly out of the frame covers nothing.
            let in_view =
                |b: &BBox| !matches!(self.frame, Some((w, h)) if b.clip(w, h).area() <= 0.0);
            let held = t.box_at(frame, &self.cfg, carry);
            let filled = held.filter(in_view).map(complete);
            if let Some(b) = filled {
                out.push((t.id, t.class, b));
            }
            let paced = held.and_then(|h| t.paced(frame, h, carry));
            if let Some(p) = paced.filter(in_view) {
                let p = complete(p);
                if filled.map_or(true, |b| b.intersection(&p) < 0.95 * p.area()) {
                    out.push((t.id, t.class, p));
                }
            }
            if let Some(f) = t.followed.get(&frame).map(|f| complete(*f)) {
                // Left out only when the other box already covers it.
                if filled.map_or(true, |b| b.intersection(&f) < 0.95 * f.area()) {
                    out.push((t.id, t.class, f));
                }
            }
        }
        out
    }

    /// The frame's size, where the tracker knows it.
    pub fn frame_size(&self) -> Option<(f32, f32)> {
        self.frame
    }

    /// The live tracks, for following them into other frames.
    pub fn tracks(&self) -> &[Track] {
        &self.tracks
    }

    pub fn tracks_mut(&mut self) -> &mut [Track] {
        &mut self.tracks
    }

    /// Removes and returns the tracks that cannot touch `frame` or any later frame.
    pub fn retire_before(&mut self, frame: u64) -> Vec<Track> {
        let reach = (self.cfg.max_gap + 1).max(self.cfg.extend_after) as u64;
        let (done, live): (Vec<_>, Vec<_>) = std::mem::take(&mut self.tracks)
            .into_iter()
            .partition(|t| t.last_seen() + reach < frame);
        self.tracks = live;
        done
    }

    pub fn into_tracks(self) -> Vec<Track> {
        self.tracks
    }
}

/// IoU, or for boxes that moved further than they overlap, a centre-distance score, so a fast
/// pan or a sampled detector still links the same object.
fn match_quality(a: &BBox, b: &BBox) -> f32 {
    let iou = a.iou(b);
    if iou > 0.0 {
        return iou.max(center_score(a, b) * 0.5);
    }
    center_score(a, b) * 0.5
}

fn center_score(a: &BBox, b: &BBox) -> f32 {
    let (ax, ay) = a.center();
    let (bx, by) = b.center();
    let size = (a.width().max(a.height()) + b.width().max(b.height())) * 0.5;
    if size <= 0.0 {
        return 0.0;
    }
    let ratio = a.area().max(b.area()) / a.area().min(b.area()).max(1e-3);
    if ratio > 4.0 {
        return 0.0;
    }
    let d = ((ax - bx).powi(2) + (ay - by).powi(2)).sqrt() / size;
    (1.0 - d).max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn face(x: f32) -> Detection {
        Detection {
            class: Class::Face,
            bbox: BBox::from_xywh(x, 10.0, 20.0, 20.0),
            score: 0.9,
        }
    }

    #[test]
    fn a_track_is_paced_back_to_where_it_walked_in_and_on_to_where_it_leaves() {
        let cfg = TrackConfig {
            max_gap: 12,
            extend_before: 6,
            extend_after: 6,
            min_iou: 0.0,
        };
        let d = |x: f32| Detection {
            class: Class::Face,
            bbox: BBox::from_xywh(x, 0.0, 60.0, 80.0),
            score: 0.9,
        };
        // Found at 12 (x 534), then 8 px a frame to the left, the camera still: on frame 7,
        // before it was found, it was 40 px further right, cut by a 640-px frame's edge.
        let mut tr = Tracker::new(cfg);
        tr.update(12, Class::Face, &[d(534.0)]);
        tr.update(18, Class::Face, &[d(486.0)]);
        let still = |_: u64, _: u64| (0.0, 0.0);
        let t = &tr.tracks()[0];
        assert_eq!(t.box_at(7, &cfg, &still).map(|b| b.x1), Some(534.0));
        assert_eq!(t.paced_box(7, &cfg, &still).map(|b| b.x1), Some(574.0));
        // And after its last detection it goes on at that pace.
        assert_eq!(t.paced_box(21, &cfg, &still).map(|b| b.x1), Some(462.0));
        // Between detections, and beyond the hold, nothing.
        assert_eq!(t.paced_box(15, &cfg, &still), None);
        assert_eq!(t.paced_box(5, &cfg, &still), None);
        // Where the camera's pan explains the move, the pace is nil: the held box it is.
        let pan = |a: u64, b: u64| (-8.0 * (b - a) as f32, 0.0);
        let held = t.box_at(7, &cfg, &pan);
        assert_eq!(t.paced_box(7, &cfg, &pan), held);
        let mut seen = Tracker::new(cfg);
        seen.update(12, Class::Face, &[d(534.0)]);
        seen.update(14, Class::Face, &[d(518.0)]);
        assert_eq!(
            seen.tracks()[0].paced_box(7, &cfg, &still),
            None,
            "2 frames apart"
        );
        // The tracker redacts it beside the held box.
        let out = tr.boxes_carried(7, &still);
        assert_eq!(out.len(), 2, "{out:?}");
    }

    #[test]
    fn a_track_is_neither_bridged_nor_held_across_a_frame_it_was_seen_missing_on() {
        let cfg = TrackConfig {
            max_gap: 12,
            extend_before: 3,
            extend_after: 3,
            min_iou: 0.15,
        };
        let d = |x: f32| Detection {
            class: Class::Face,
            bbox: BBox::from_xywh(x, 0.0, 10.0, 10.0),
            score: 0.9,
        };
        let mut tr = Tracker::new(cfg);
        tr.update(0, Class::Face, &[d(100.0)]);
        tr.update(10, Class::Face, &[d(100.0)]);
        let still = |_: u64, _: u64| (0.0, 0.0);
        let at = |t: &Track, f: u64| t.box_at(f, &cfg, &still).map(|b| b.x1);
        let t = &tr.tracks()[0];
        assert!((1..10).all(|f| at(t, f).is_some()));
        let mut t = t.clone();
        t.absent.insert(5);
        // Each side of the cut is held as a track's end (3 frames), the cut frame has none.
        let held: Vec<u64> = (0..=14).filter(|&f| at(&t, f).is_some()).collect();
        assert_eq!(held, [0, 1, 2, 3, 7, 8, 9, 10, 11, 12, 13]);
        // Before the first detection and after the last alike.
        t.absent.insert(12);
        t.absent.insert(0);
        assert_eq!(at(&t, 11), Some(100.0));
        assert_eq!(at(&t, 12), None);
        assert_eq!(at(&t, 13), None);
        assert_eq!(at(&t, 0), Some(100.0));
        // A track first detected on frame 5, seen missing on frame 3: held back to frame 4.
        let mut tr = Tracker::new(cfg);
        tr.update(5, Class::Face, &[d(100.0)]);
        let mut t = tr.tracks()[0].clone();
        assert!((2..5).all(|f| at(&t, f).is_some()));
        t.absent.insert(3);
        let held: Vec<u64> = (0..=5).filter(|&f| at(&t, f).is_some()).collect();
        assert_eq!(held, [4, 5]);
    }

    #[test]
    fn face_and_plate_trackers_never_share_an_id() {
        // One audit record holds both; a shared id would merge a face and a plate track.
        let mut faces = Tracker::new(TrackConfig::default());
        let mut plates = Tracker::with_first_id(TrackConfig::default(), 100_000);
        faces.update(0, Class::Face, &[face(10.0), face(200.0)]);
        let mut p = face(10.0);
        p.class = Class::Plate;
        plates.update(0, Class::Plate, &[p]);
        let f: Vec<u32> = faces.boxes_at(0).iter().map(|b| b.0).collect();
        let q: Vec<u32> = plates.boxes_at(0).iter().map(|b| b.0).collect();
        assert_eq!(f, vec![0, 1]);
        assert_eq!(q, vec![100_000]);
    }

    /// Gaps of up to 5 frames filled, boxes held 2 frames before and after.
    fn short_reach() -> TrackConfig {
        TrackConfig {
            max_gap: 5,
            extend_before: 2,
            extend_after: 2,
            min_iou: 0.15,
        }
    }

    #[test]
    fn fills_gaps_between_detections() {
        let cfg = short_reach();
        let mut t = Tracker::new(cfg);
        for f in 0..30u64 {
            let dets: Vec<Detection> = if f == 10 {
                vec![face(100.0)]
            } else if f == 14 {
                vec![face(108.0)]
            } else {
                vec![]
            };
            t.update(f, Class::Face, &dets);
        }
        for f in 10..=14 {
            assert_eq!(t.boxes_at(f).len(), 1, "frame {f}");
        }
        // Held beyond them: where they were, and where the face's pace (2 px a frame) takes it.
        for f in [8, 9, 15, 16] {
            let x: Vec<f32> = t.boxes_at(f).iter().map(|b| b.2.x1).collect();
            let paced = if f < 10 {
                100.0 - 2.0 * (10 - f) as f32
            } else {
                108.0 + 2.0 * (f - 14) as f32
            };
            assert_eq!(
                x,
                vec![if f < 10 { 100.0 } else { 108.0 }, paced],
                "frame {f}"
            );
        }
        assert!(t.boxes_at(7).is_empty());
        assert!(t.boxes_at(17).is_empty());
        // Interpolated half-way.
        let b = t.boxes_at(12)[0].2;
        assert!((b.x1 - 104.0).abs() < 1e-4);
    }

    #[test]
    fn a_box_held_before_and_after_its_detections_moves_with_the_camera() {
        let cfg = short_reach();
        let mut t = Tracker::new(cfg);
        for f in 0..20u64 {
            let dets = if f == 10 { vec![face(100.0)] } else { vec![] };
            t.update(f, Class::Face, &dets);
        }
        // The picture moves 7 px right and 3 px up a frame.
        let pan = |a: u64, b: u64| (7.0 * (b - a) as f32, -3.0 * (b - a) as f32);
        let x_at = |f: u64| {
            let b = t.boxes_carried(f, &pan);
            assert_eq!(b.len(), 1, "frame {f}");
            (b[0].2.x1, b[0].2.y1)
        };
        assert_eq!(x_at(10), (100.0, 10.0));
        assert_eq!(x_at(12), (114.0, 4.0));
        assert_eq!(x_at(8), (86.0, 16.0));
        // Carried wholly out of a 110-px-wide frame, the held box is left out.
        let mut narrow = Tracker::new(cfg).with_frame(110.0, 100.0);
        narrow.update(10, Class::Face, &[face(100.0)]);
        assert_eq!(narrow.boxes_carried(10, &pan).len(), 1);
        assert!(narrow.boxes_carried(12, &pan).is_empty());
        // A still camera holds the box where it was detected; the reach is unchanged.
        assert_eq!(t.boxes_at(12)[0].2.x1, 100.0);
        assert!(t.boxes_carried(13, &pan).is_empty());
        assert!(t.boxes_carried(7, &pan).is_empty());
    }

    #[test]
    fn followed_boxes_are_redacted_and_link_later_detections() {
        let cfg = TrackConfig {
            max_gap: 3,
            extend_before: 0,
            extend_after: 1,
            min_iou: 0.15,
        };
        let mut t = Tracker::new(cfg);
        t.update(0, Class::Face, &[face(0.0)]);
        // Following moved the object 30 px per frame, far from its detected box.
        for f in 1..=6u64 {
            t.tracks_mut()[0]
                .followed
                .insert(f, BBox::from_xywh(30.0 * f as f32, 10.0, 20.0, 20.0));
        }
        // Frame 1 has the extension of the detection and the followed box; frame 4 only the
        // followed box, past the extension.
        assert_eq!(t.boxes_at(1).len(), 2);
        let at4 = t.boxes_at(4);
        assert_eq!(at4.len(), 1);
        assert_eq!(at4[0].2.x1, 120.0);
        // A detection on frame 6 where the track was followed to (beyond max_gap of the last
        // detection, and nowhere near it) joins the same track and replaces the followed box.
        t.update(6, Class::Face, &[face(182.0)]);
        assert!(
            t.retire_before(6).is_empty(),
            "followed track retired early"
        );
        let tracks = t.into_tracks();
        assert_eq!(tracks.len(), 1);
        assert_eq!(tracks[0].dets.len(), 2);
        assert!(!tracks[0].followed.contains_key(&6));
        assert_eq!(tracks[0].seen_at(6).unwrap().x1, 182.0);
        assert_eq!(tracks[0].last_seen(), 6);
        // Between the detections the gap-filled box runs from the last followed box (frame 4,
        // x 120 when frame 5 is left out) to the detection, not from the far-off first one.
        let mut t0 = tracks[0].clone();
        t0.followed.remove(&5);
        assert_eq!(t0.box_at(5, &cfg, &|_, _| (0.0, 0.0)).unwrap().x1, 151.0);
    }

    #[test]
    fn a_cut_face_box_followed_away_from_the_edge_grows_back_toward_it() {
        let (w, h) = (640.0, 360.0);
        // Found cut by the right edge (48x100), followed 36 px inward as the face came in.
        let b = BBox::from_xywh(556.0, 179.0, 47.0, 100.0);
        assert_eq!(
            complete_toward_edge(&b, w, h),
            BBox::from_xywh(556.0, 179.0, 80.0, 100.0)
        );
        // Near the left edge; cut by the bottom (flat); at the edge itself nothing changes.
        let b = BBox::from_xywh(20.0, 100.0, 40.0, 100.0);
        assert_eq!(
            complete_toward_edge(&b, w, h),
            BBox::from_xywh(0.0, 100.0, 60.0, 100.0)
        );
        let b = BBox::from_xywh(300.0, 300.0, 80.0, 40.0);
        assert_eq!(
            complete_toward_edge(&b, w, h),
            BBox::from_xywh(300.0, 300.0, 80.0, 60.0)
        );
        let at = BBox::from_xywh(600.0, 100.0, 40.0, 100.0);
        assert_eq!(complete_toward_edge(&at, w, h), at);
        // A face's shape (a square one too), or a narrow box far from the sides, is left alone.
        for b in [
            BBox::from_xywh(580.0, 100.0, 50.0, 60.0),
            BBox::from_xywh(620.0, 10.0, 20.0, 20.0),
            BBox::from_xywh(300.0, 100.0, 40.0, 100.0),
        ] {
            assert_eq!(complete_toward_edge(&b, w, h), b);
        }
    }

    #[test]
    fn boxes_cut_by_the_edge_grow_inward_to_the_full_size() {
        let full = (88.0, 120.0);
        // Leaving on the right: the detector boxed a narrow, short part of the face.
        let b = complete_at_edge(&BBox::new(609.0, 132.0, 639.0, 203.0), full, 640.0, 360.0);
        assert_eq!(b, BBox::new(551.0, 107.5, 639.0, 227.5));
        // Entering on the left.
        let b = complete_at_edge(&BBox::new(0.0, 100.0, 30.0, 220.0), full, 640.0, 360.0);
        assert_eq!(b, BBox::new(0.0, 100.0, 88.0, 220.0));
        // A box inside the frame is left alone, a whole one too.
        let inside = BBox::new(100.0, 100.0, 130.0, 150.0);
        assert_eq!(complete_at_edge(&inside, full, 640.0, 360.0), inside);
        let whole = BBox::new(0.0, 100.0, 90.0, 230.0);
        assert_eq!(complete_at_edge(&whole, full, 640.0, 360.0), whole);

        let mut t = Tracker::new(TrackConfig::default()).with_frame(640.0, 360.0);
        t.update(0, Class::Face, &[face(615.0)]);
        let mut edge = face(625.0);
        edge.bbox = BBox::new(625.0, 10.0, 640.0, 30.0);
        t.update(1, Class::Face, &[edge]);
        assert_eq!(t.boxes_at(1)[0].2, BBox::new(620.0, 10.0, 640.0, 30.0));
    }

    #[test]
    fn gap_too_long_makes_two_tracks() {
        let cfg = TrackConfig {
            max_gap: 3,
            extend_before: 0,
            extend_after: 0,
            min_iou: 0.15,
        };
        let mut t = Tracker::new(cfg);
        t.update(0, Class::Face, &[face(0.0)]);
        t.update(10, Class::Face, &[face(0.0)]);
        assert!(t.boxes_at(5).is_empty());
        assert_eq!(t.into_tracks().len(), 2);
    }

    #[test]
    fn classes_do_not_mix() {
        let mut t = Tracker::new(TrackConfig::default());
        t.update(0, Class::Face, &[face(0.0)]);
        let mut p = face(0.0);
        p.class = Class::Plate;
        t.update(1, Class::Plate, &[p]);
        assert_eq!(t.into_tracks().len(), 2);
    }

    proptest! {
        /// Every frame with a detection is covered, and every frame between two detections of one
        /// object no more than max_gap apart is covered too.
        #[test]
        fn detected_frames_and_short_gaps_are_covered(
            frames in prop::collection::btree_set(0u64..200, 1..40),
            gap in 1u32..20,
        ) {
            let cfg = TrackConfig { max_gap: gap, extend_before: 0, extend_after: 0, min_iou: 0.15 };
            let mut t = Tracker::new(cfg);
            for f in 0..200u64 {
                let dets = if frames.contains(&f) { vec![face(50.0)] } else { vec![] };
                t.update(f, Class::Face, &dets);
            }
            let fs: Vec<u64> = frames.iter().copied().collect();
            for &f in &fs {
                prop_assert!(!t.boxes_at(f).is_empty());
            }
            for w in fs.windows(2) {
                if w[1] - w[0] <= gap as u64 + 1 {
                    for f in w[0]..=w[1] {
                        prop_assert!(!t.boxes_at(f).is_empty(), "frame {} between {} and {}", f, w[0], w[1]);
                    }
                }
            }
        }
    }
}
