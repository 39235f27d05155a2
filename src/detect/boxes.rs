//! Boxes in frame pixels, IoU and non-maximum suppression.

use serde::{Deserialize, Serialize};

/// What a detection is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Class {
    Face,
    Plate,
    /// A region a reviewer drew (`--edits`): redacted exactly as drawn.
    Manual,
}

impl Class {
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Face => "face",
            Class::Plate => "plate",
            Class::Manual => "manual",
        }
    }
}

/// An axis-aligned box, corners in pixels (x2, y2 exclusive).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct BBox {
    pub x1: f32,
    pub y1: f32,
    pub x2: f32,
    pub y2: f32,
}

impl BBox {
    pub fn new(x1: f32, y1: f32, x2: f32, y2: f32) -> Self {
        BBox { x1, y1, x2, y2 }
    }

    pub fn from_xywh(x: f32, y: f32, w: f32, h: f32) -> Self {
        BBox::new(x, y, x + w, y + h)
    }

    pub fn width(&self) -> f32 {
        (self.x2 - self.x1).max(0.0)
    }

    pub fn height(&self) -> f32 {
        (self.y2 - self.y1).max(0.0)
    }

    pub fn area(&self) -> f32 {
        self.width() * self.height()
    }

    pub fn center(&self) -> (f32, f32) {
        ((self.x1 + self.x2) * 0.5, (self.y1 + self.y2) * 0.5)
    }

    pub fn is_valid(&self) -> bool {
        self.x1.is_finite()
            && self.y1.is_finite()
            && self.x2.is_finite()
            && self.y2.is_finite()
            && self.x2 > self.x1
            && self.y2 > self.y1
    }

    pub fn intersection(&self, o: &BBox) -> f32 {
        let w = (self.x2.min(o.x2) - self.x1.max(o.x1)).max(0.0);
        let h = (self.y2.min(o.y2) - self.y1.max(o.y1)).max(0.0);
        w * h
    }

    pub fn iou(&self, o: &BBox) -> f32 {
        let inter = self.intersection(o);
        let union = self.area() + o.area() - inter;
        if union <= 0.0 {
            0.0
        } else {
            inter / union
        }
    }

    /// Grows the box about its centre by `factor` in each dimension.
    pub fn scaled(&self, factor: f32) -> BBox {
        let (cx, cy) = self.center();
        let hw = self.width() * factor * 0.5;
        let hh = self.height() * factor * 0.5;
        BBox::new(cx - hw, cy - hh, cx + hw, cy + hh)
    }

    /// Maps a box by a per-axis scale and offset (detection space to frame space).
    pub fn map(&self, sx: f32, sy: f32, dx: f32, dy: f32) -> BBox {
        BBox::new(
            self.x1 * sx + dx,
            self.y1 * sy + dy,
            self.x2 * sx + dx,
            self.y2 * sy + dy,
        )
    }

    /// The smallest box holding both.
    pub fn union(&self, o: &BBox) -> BBox {
        BBox::new(
            self.x1.min(o.x1),
            self.y1.min(o.y1),
            self.x2.max(o.x2),
            self.y2.max(o.y2),
        )
    }

    pub fn clip(&self, w: f32, h: f32) -> BBox {
        BBox::new(
            self.x1.clamp(0.0, w),
            self.y1.clamp(0.0, h),
            self.x2.clamp(0.0, w),
            self.y2.clamp(0.0, h),
        )
    }

    pub fn lerp(&self, o: &BBox, t: f32) -> BBox {
        let l = |a: f32, b: f32| a + (b - a) * t;
        BBox::new(
            l(self.x1, o.x1),
            l(self.y1, o.y1),
            l(self.x2, o.x2),
            l(self.y2, o.y2),
        )
    }

    /// Rounded `[x, y, w, h]` for compact JSON.
    pub fn to_xywh_i32(&self) -> [i32; 4] {
        let x = self.x1.round() as i32;
        let y = self.y1.round() as i32;
        [
            x,
            y,
            (self.x2.round() as i32 - x).max(0),
            (self.y2.round() as i32 - y).max(0),
        ]
    }
}

/// One detection in frame pixels.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    pub class: Class,
    pub bbox: BBox,
    pub score: f32,
}

/// A box with at least this share of its area inside a box of the same class that is at least
/// [`PART_AREA`] times larger is a part of it (an eye, a mouth, half a face) and is dropped.
pub const PART_INSIDE: f32 = 0.8;
pub const PART_AREA: f32 = 2.0;

/// Drops detections that are parts of a larger detection of the same class (see
/// [`PART_INSIDE`]): CenterFace fires on the features of a large face as faces of their own,
/// each then tracked, followed and redacted for nothing, and listed for a reviewer.
pub fn drop_parts(dets: Vec<Detection>) -> Vec<Detection> {
    let keep: Vec<bool> = dets
        .iter()
        .map(|d| {
            !dets.iter().any(|o| {
                o.class == d.class
                    && o.bbox.area() >= PART_AREA * d.bbox.area()
                    && o.bbox.intersection(&d.bbox) >= PART_INSIDE * d.bbox.area()
            })
        })
        .collect();
    dets.into_iter()
        .zip(keep)
        .filter_map(|(d, k)| k.then_some(d))
        .collect()
}

/// A plate box that holds at least this share of another plate box of the same sample…
pub const HOLDER_INSIDE: f32 = 0.9;
/// …with at least this many times its area…
pub const HOLDER_AREA: f32 = 2.0;
/// …and this many times its height, around a plate-shaped box (at least this many times wider
/// than tall), is the plate with what is around it (a bumper, a grille): see [`tighten_plates`].
pub const HOLDER_TALL: f32 = 1.8;
pub const PLATE_SHAPE: f32 = 1.5;
/// The plate-shaped box is kept grown to this many times its width and height (within the
/// larger box): a plate tilted by the camera's roll is taller than its tight upright box.
pub const HELD_GROWTH: (f32, f32) = (1.2, 1.5);

/// Plates of one sample with the larger boxes around them cut away: where the plate model boxed
/// a plate tightly and also together with the bumper or grille around it (113x83 around a
/// 103x36 plate), the larger box is dropped and the tight one grown by [`HELD_GROWTH`] within
/// it. Each larger box would start a track of its own, followed and blurred for nothing.
pub fn tighten_plates(dets: Vec<Detection>) -> Vec<Detection> {
    let holds = |a: &BBox, b: &BBox| {
        a.area() >= HOLDER_AREA * b.area()
            && a.intersection(b) >= HOLDER_INSIDE * b.area()
            && b.width() >= PLATE_SHAPE * b.height()
            && a.height() >= HOLDER_TALL * b.height()
    };
    // (holder, held) index pairs, found once.
    let pairs: Vec<(usize, usize)> = (0..dets.len())
        .flat_map(|a| (0..dets.len()).map(move |b| (a, b)))
        .filter(|&(a, b)| holds(&dets[a].bbox, &dets[b].bbox))
        .collect();
    let around = |i: usize| pairs.iter().find(|p| p.1 == i).map(|p| dets[p.0].bbox);
    let grown: Vec<Option<BBox>> = (0..dets.len()).map(around).collect();
    dets.iter()
        .zip(grown)
        .enumerate()
        .filter(|(i, _)| !pairs.iter().any(|p| p.0 == *i))
        .map(|(_, (d, around))| {
            let mut d = *d;
            if let Some(a) = around {
                let (cx, cy) = d.bbox.center();
                let hw = d.bbox.width() * HELD_GROWTH.0 / 2.0;
                let hh = d.bbox.height() * HELD_GROWTH.1 / 2.0;
                d.bbox = BBox::new(
                    (cx - hw).max(a.x1),
                    (cy - hh).max(a.y1),
                    (cx + hw).min(a.x2),
                    (cy + hh).min(a.y2),
                );
            }
            d
        })
        .collect()
}

/// Greedy NMS per class: keeps the highest-scoring boxes, drops any box overlapping a kept one of
/// the same class by more than `iou`. Invalid boxes and NaN scores are dropped.
pub fn nms(mut dets: Vec<Detection>, iou: f32) -> Vec<Detection> {
    dets.retain(|d| d.bbox.is_valid() && d.score.is_finite());
    dets.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut keep: Vec<Detection> = Vec::with_capacity(dets.len());
    for d in dets {
        if keep
            .iter()
            .all(|k| k.class != d.class || k.bbox.iou(&d.bbox) <= iou)
        {
            keep.push(d);
        }
    }
    keep
}

/// A plate box covering more than this share of the picture is a close-up no car carries at
/// that distance (a whole person, a shirt).
pub const PLATE_MAX_AREA: f32 = 0.2;
/// A plate's short side is at most this many times the long side of a face beside it: at the
/// same distance a plate is 11-20 cm tall (one or two rows) and a face about 22 cm, so a
/// "plate" much taller than the faces next to it is a person or their clothes. The short side
/// keeps the rule true for plates seen steeply from the side, which are tall boxes.
pub const PLATE_MAX_FACE: f32 = 1.5;
/// A plate box is at most this many times as tall as a face found beside it on the same
/// picture. Whichever way a plate is seen, its box is about the plate's height: 11–20 cm, and
/// up to 24 cm for a 52x11 cm plate turned 15° in the picture, against about 20 cm for a face
/// box (1.2 at the same distance). The margin is small for a plate nearer the camera than the
/// face, but "beside" means within one face size, and a face is seldom that close to a plate
/// (a standing person's is a metre above a bumper); what is that close is the person's own
/// clothes. A box of a T-shirt under a face (119x142 px under an 81x95 face on the motion set,
/// 1.3–1.5 as the shake moves them) passes the rule on the short side and fails this one.
pub const PLATE_MAX_FACE_HEIGHT: f32 = 1.3;

/// A box starting at most this many face heights under a face found on the same picture is
/// on the person's chest, and held to the height rule as if beside the face: a plate there
/// would be at chest height (a bumper is a metre under a standing person's face, five face
/// heights at the face's distance and more nearer the camera). A shirt's print under a face
/// (128x165 px starting 94 px under a 100x87 face, a zooming group photo) is just over a face
/// height away.
pub const TORSO_FACES: f32 = 2.0;

/// A face box with this share of its area inside a plate box wider than tall is on the plate
/// (see [`plausible_plate`]).
pub const FACE_ON_PLATE: f32 = 0.8;

/// Whether a plate box can be a plate in a `w`x`h` picture with the face boxes `faces` around
/// it, of which `detected` were found (or surely followed) on this very picture. The height
/// rule trusts only those: a held face box, or a doubtful face's, may have drifted onto the
/// background.
pub fn plausible_plate(b: &BBox, w: f32, h: f32, faces: &[BBox], detected: &[BBox]) -> bool {
    if b.width() * b.height() > PLATE_MAX_AREA * w * h {
        return false;
    }
    // A "face" inside a plate-shaped box (wider than tall) is no person beside it but a false
    // face on the plate itself: CenterFace takes two characters (an "88") for eyes, at a low
    // score, and such a face, half the plate's height, would otherwise rule the plate out. A
    // box around a real face (a head and shoulders) is as tall as wide or taller: still ruled
    // out.
    let plate_shaped = b.width() >= b.height();
    let beside = |f: &BBox| {
        let gap = |a1: f32, a2: f32, f1: f32, f2: f32| (f1 - a2).max(a1 - f2).max(0.0);
        gap(b.x1, b.x2, f.x1, f.x2) < f.width()
            && gap(b.y1, b.y2, f.y1, f.y2) < f.height()
            && !(plate_shaped && b.intersection(f) >= FACE_ON_PLATE * f.area())
    };
    // The chest under a face: the box starts at most `TORSO_FACES` face heights below it.
    let on_torso = |f: &BBox| {
        let dx = (f.x1 - b.x2).max(b.x1 - f.x2).max(0.0);
        dx < f.width() && b.y1 >= f.y1 && b.y1 - f.y2 < TORSO_FACES * f.height()
    };
    let short = b.width().min(b.height());
    !faces
        .iter()
        .any(|f| beside(f) && short > PLATE_MAX_FACE * f.width().max(f.height()))
        && !detected
            .iter()
            .any(|f| (beside(f) || on_torso(f)) && b.height() > PLATE_MAX_FACE_HEIGHT * f.height())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_plate_is_not_a_close_up_nor_taller_than_the_faces_beside_it() {
        let (w, h) = (1800.0, 858.0);
        let faces = [
            BBox::from_xywh(840.0, 126.0, 125.0, 181.0),
            BBox::from_xywh(584.0, 276.0, 121.0, 137.0),
        ];
        // A whole person under the faces of a group photo (358x410, score 0.5 once).
        let person = BBox::from_xywh(754.0, 310.0, 358.0, 410.0);
        assert!(!plausible_plate(&person, w, h, &faces, &faces));
        assert!(plausible_plate(&person, w, h, &[], &[]));
        // A plate beside a face, far from the faces, and one seen from the side (a tall box).
        assert!(plausible_plate(
            &BBox::from_xywh(600.0, 420.0, 120.0, 30.0),
            w,
            h,
            &faces,
            &faces
        ));
        assert!(plausible_plate(
            &BBox::from_xywh(1500.0, 700.0, 240.0, 60.0),
            w,
            h,
            &faces,
            &faces
        ));
        assert!(plausible_plate(
            &BBox::from_xywh(980.0, 150.0, 40.0, 150.0),
            w,
            h,
            &faces,
            &faces
        ));
        // A shirt under a face: squarish, so its short side passes, but far taller than the face.
        let face = [BBox::from_xywh(35.0, 132.0, 81.0, 95.0)];
        let shirt = BBox::from_xywh(17.0, 227.0, 119.0, 142.0);
        assert!(!plausible_plate(&shirt, 640.0, 360.0, &face, &face));
        assert!(plausible_plate(&shirt, 640.0, 360.0, &[], &[]));
        // A shirt's print on the chest, just over a face height under the face (a zooming
        // group photo); a plate as far under a face but no taller than it is still a plate.
        let dad = [BBox::from_xywh(525.0, 13.0, 100.0, 87.0)];
        let print = BBox::from_xywh(510.0, 194.0, 128.0, 165.0);
        assert!(!plausible_plate(&print, 640.0, 360.0, &dad, &dad));
        let low = BBox::from_xywh(510.0, 194.0, 128.0, 60.0);
        assert!(plausible_plate(&low, 640.0, 360.0, &dad, &dad));
        // Only a face found on this picture counts for the height: a followed box may have
        // drifted.
        assert!(plausible_plate(&shirt, 640.0, 360.0, &face, &[]));
        // A plate turned in the picture, 1.25 times as tall as the face beside it.
        let turned = BBox::from_xywh(20.0, 230.0, 130.0, 118.0);
        assert!(plausible_plate(&turned, 640.0, 360.0, &face, &face));
        // A false face on the plate's characters (13x17 on a 80x34 plate, motion set) is no
        // face beside it.
        let plate = BBox::from_xywh(216.0, 125.0, 80.0, 34.0);
        let on_it = [BBox::from_xywh(268.0, 134.0, 13.0, 17.0)];
        assert!(plausible_plate(&plate, 640.0, 360.0, &on_it, &on_it));
        let beside_it = [BBox::from_xywh(300.0, 134.0, 13.0, 17.0)];
        assert!(!plausible_plate(
            &plate, 640.0, 360.0, &beside_it, &beside_it
        ));
        // A head-and-shoulders box around a real face is still no plate.
        let head = BBox::from_xywh(20.0, 100.0, 140.0, 150.0);
        let real = [BBox::from_xywh(50.0, 110.0, 81.0, 95.0)];
        assert!(!plausible_plate(&head, 640.0, 360.0, &real, &real));
        // A box over a fifth of the picture is no plate.
        assert!(!plausible_plate(
            &BBox::from_xywh(0.0, 0.0, 900.0, 400.0),
            w,
            h,
            &[],
            &[]
        ));
    }

    fn det(x: f32, y: f32, w: f32, h: f32, s: f32) -> Detection {
        Detection {
            class: Class::Face,
            bbox: BBox::from_xywh(x, y, w, h),
            score: s,
        }
    }

    #[test]
    fn a_plate_boxed_with_its_bumper_keeps_only_the_plate_grown() {
        let plate = |x, y, w, h| Detection {
            class: Class::Plate,
            ..det(x, y, w, h, 0.5)
        };
        // Plate and bumper (113x83) around a tight plate box (103x36), and another plate.
        let bumper = plate(54.0, 211.0, 113.0, 83.0);
        let tight = plate(59.0, 235.0, 103.0, 36.0);
        let other = plate(400.0, 200.0, 90.0, 30.0);
        let kept = tighten_plates(vec![bumper, tight, other]);
        assert_eq!(kept.len(), 2);
        assert_eq!(kept[1].bbox, other.bbox);
        let g = kept[0].bbox;
        // Grown 1.2x wide and 1.5x tall about its centre, within the larger box.
        assert!(
            (g.x1 - 54.0).abs() < 1e-3 && (g.x2 - 167.0).abs() < 1e-3,
            "{g:?}"
        );
        assert!((g.height() - 54.0).abs() < 1e-3 && (g.center().1 - 253.0).abs() < 1e-3);
        // An emblem inside a plate is not plate-shaped: both boxes stay as they are.
        let emblem = plate(842.0, 410.0, 44.0, 69.0);
        let car_plate = plate(648.0, 375.0, 238.0, 102.0);
        assert_eq!(tighten_plates(vec![car_plate, emblem]).len(), 2);
        // A box not much taller than the plate inside it (a turned look's box) stays too.
        let turned = plate(55.0, 228.0, 112.0, 50.0);
        let kept = tighten_plates(vec![turned, tight]);
        assert_eq!(kept.len(), 2);
        assert_eq!(kept[1].bbox, tight.bbox);
    }

    #[test]
    fn parts_inside_a_larger_box_are_dropped() {
        let face = det(100.0, 100.0, 200.0, 240.0, 0.6);
        let eye = det(130.0, 150.0, 40.0, 30.0, 0.9);
        let neighbour = det(290.0, 110.0, 60.0, 70.0, 0.5);
        // Half inside: a face beside the large one, kept.
        let beside = det(280.0, 300.0, 40.0, 60.0, 0.5);
        let kept = drop_parts(vec![face, eye, neighbour, beside]);
        assert_eq!(kept.len(), 3);
        assert!(!kept.iter().any(|d| d.bbox == eye.bbox));
    }

    #[test]
    fn iou_basics() {
        let a = BBox::from_xywh(0.0, 0.0, 10.0, 10.0);
        let b = BBox::from_xywh(5.0, 0.0, 10.0, 10.0);
        assert!((a.iou(&b) - 50.0 / 150.0).abs() < 1e-6);
        assert_eq!(a.iou(&BBox::from_xywh(20.0, 20.0, 5.0, 5.0)), 0.0);
        assert!((a.iou(&a) - 1.0).abs() < 1e-6);
    }

    #[test]
    fn nms_drops_overlaps_keeps_best() {
        let out = nms(
            vec![
                det(0.0, 0.0, 10.0, 10.0, 0.5),
                det(1.0, 1.0, 10.0, 10.0, 0.9),
                det(50.0, 50.0, 10.0, 10.0, 0.3),
            ],
            0.3,
        );
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].score, 0.9);
        assert_eq!(out[1].score, 0.3);
    }

    #[test]
    fn nms_keeps_different_classes() {
        let mut p = det(0.0, 0.0, 10.0, 10.0, 0.5);
        p.class = Class::Plate;
        let out = nms(vec![det(0.0, 0.0, 10.0, 10.0, 0.9), p], 0.3);
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn nms_drops_nan_and_degenerate() {
        let out = nms(
            vec![
                det(0.0, 0.0, 10.0, 10.0, f32::NAN),
                det(0.0, 0.0, 0.0, 10.0, 0.9),
                det(0.0, 0.0, f32::INFINITY, 10.0, 0.9),
            ],
            0.3,
        );
        assert!(out.is_empty());
    }

    proptest! {
        #[test]
        fn nms_output_is_subset_without_overlaps(
            boxes in prop::collection::vec((0f32..500.0, 0f32..500.0, 1f32..100.0, 1f32..100.0, 0f32..1.0), 0..40),
            thr in 0.1f32..0.9,
        ) {
            let dets: Vec<_> = boxes.iter().map(|&(x, y, w, h, s)| det(x, y, w, h, s)).collect();
            let out = nms(dets.clone(), thr);
            prop_assert!(out.len() <= dets.len());
            for (i, a) in out.iter().enumerate() {
                prop_assert!(dets.contains(a));
                for b in &out[i + 1..] {
                    prop_assert!(a.bbox.iou(&b.bbox) <= thr + 1e-6);
                    prop_assert!(a.score >= b.score);
                }
            }
            // The best box always survives.
            if let Some(best) = dets.iter().max_by(|a, b| a.score.total_cmp(&b.score)) {
                prop_assert!(out.iter().any(|d| d.score == best.score));
            }
        }

        #[test]
        fn iou_is_symmetric_and_bounded(
            a in (0f32..100.0, 0f32..100.0, 0.5f32..50.0, 0.5f32..50.0),
            b in (0f32..100.0, 0f32..100.0, 0.5f32..50.0, 0.5f32..50.0),
        ) {
            let a = BBox::from_xywh(a.0, a.1, a.2, a.3);
            let b = BBox::from_xywh(b.0, b.1, b.2, b.3);
            let i1 = a.iou(&b);
            prop_assert!((i1 - b.iou(&a)).abs() < 1e-5);
            prop_assert!((0.0..=1.0 + 1e-5).contains(&i1));
        }

        #[test]
        fn scaled_box_contains_original(x in 0f32..100.0, y in 0f32..100.0, w in 1f32..50.0, h in 1f32..50.0, f in 1f32..3.0) {
            let b = BBox::from_xywh(x, y, w, h);
            let s = b.scaled(f);
            prop_assert!(s.x1 <= b.x1 + 1e-3 && s.y1 <= b.y1 + 1e-3 && s.x2 >= b.x2 - 1e-3 && s.y2 >= b.y2 - 1e-3);
        }
    }
}
