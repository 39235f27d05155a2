//! The detectors' passes over a video frame, as the scheduler asks for them: faces on the
//! whole frame (and the small-face pass), faces on crops around tracks, and plates on the
//! whole frame and on its pieces or tiles.

use ffmpeg_next::frame;

use crate::decode::RgbScaler;
use crate::detect::rotate::Look;
use crate::detect::views::{
    add_tile_plates, detect_around, detect_frame, detect_frame_with, detect_in_region, needs_tiles,
    plate_grid, plate_looks, regions_around, tile_plates, FrameView, Rect,
};
use crate::detect::{
    drop_parts, nms, plausible_plate, BBox, Detection, Detector, Rgb, CENTERFACE_NMS_IOU,
    YOLO_NMS_IOU,
};
use crate::error::{Result, VeilError};
use crate::options::RedactOptions;

/// Faces on the whole frame at the detection size, and with `hires` also at the small-face
/// size (on frames whose long side is over 1.5x the detection size).
pub fn faces_full(
    det: &mut Detector,
    f: &frame::Video,
    o: &RedactOptions,
    turn: u32,
    hires: bool,
    scaler: &mut RgbScaler,
) -> Result<Vec<Detection>> {
    let looks = [Look::upright(o.thresh)];
    let mut found = detect_frame(det, f, o.detect_size, turn, &looks, scaler)?;
    let long = f.width().max(f.height()) as usize;
    if hires && o.hires_size > o.detect_size && 2 * long > 3 * o.detect_size {
        found.extend(detect_frame(det, f, o.hires_size, turn, &looks, scaler)?);
        found = drop_parts(nms(found, CENTERFACE_NMS_IOU));
    }
    Ok(found)
}

/// Faces on crops around `boxes` (where tracks are expected on this frame), merged.
pub fn faces_around(
    det: &mut Detector,
    f: &frame::Video,
    boxes: &[BBox],
    turn: u32,
    thresh: f32,
) -> Result<Vec<Detection>> {
    let mut found = Vec::new();
    for b in boxes {
        found.extend(detect_around(det, f, b, turn, thresh)?);
    }
    Ok(drop_parts(nms(found, CENTERFACE_NMS_IOU)))
}

/// Which tiles of a large frame a plate sample looks at. A frame cut into pieces
/// ([`plate_pieces`]) is looked at whole on every sample.
///
/// [`plate_pieces`]: crate::detect::views::plate_pieces
pub enum Tiles {
    All,
    /// `count` tiles from `start` in turn, plus those holding a candidate of the whole-frame
    /// look.
    Some {
        start: usize,
        count: usize,
    },
}

/// Which turns a plate sample looks at: everywhere (not only around candidates) or not, and
/// the one turn the whole-frame look takes (`None`: all of them; see [`Passes::whole_side`]).
///
/// [`Passes::whole_side`]: crate::schedule::Passes::whole_side
#[derive(Debug, Clone, Copy)]
pub struct Turns {
    pub all: bool,
    pub whole_side: Option<usize>,
}

/// What one plate sample found: the plates, the number of tiles and regions looked at, the
/// number of plate-like candidates of the whole-frame look, and whether its looks ran side by
/// side.
pub type Sample = (Vec<Detection>, usize, usize, bool);

/// Plates on the whole frame (upright, turned where `turns` says or candidates are) and
/// on the overlapping pieces or tiles of large frames (see [`Sample`],
/// [`plate_grid`]). `det` is the plate model's session;
/// with `pair` (two more, see `Detectors::plate_pair`) a tiled frame's looks run side by side.
pub fn plates(
    (det, pair): (&mut Detector, Option<&mut [Detector; 2]>),
    f: &frame::Video,
    o: &RedactOptions,
    turn: u32,
    turns: Turns,
    tiles: Tiles,
    scaler: &mut RgbScaler,
) -> Result<Sample> {
    let (w, h) = (f.width() as usize, f.height() as usize);
    if let Some(pair) = pair.filter(|_| det.is_dynamic() && needs_tiles(w.max(h), o.plate_tile)) {
        return plates_side_by_side((det, pair), f, o, turn, turns, tiles, scaler)
            .map(|(found, looked, candidates)| (found, looked, candidates, true));
    }
    let angles = o.plate_angles();
    let all_turns = turns.all;
    let whole_angles = whole_angles(&angles, turns);
    let thresh = o.plate_thresh;
    let whole = detect_frame_with(det, f, 0, turn, scaler, |det, img| {
        whole_looks(det, img, (thresh, &whole_angles, all_turns))
    })?;
    let (found, candidates): (Vec<Detection>, Vec<Detection>) =
        whole.into_iter().partition(|d| d.score >= thresh);
    if !needs_tiles(w.max(h), o.plate_tile) {
        return Ok((nms(found, YOLO_NMS_IOU), 0, candidates.len(), false));
    }
    let (grid, tiles) = parts(w, h, o.plate_tile, det.is_dynamic(), tiles);
    // A dynamic model looks again only around a candidate of the whole-frame look, at the
    // tiles' scale; a fixed-size one costs as much on a small region as on a tile, so it looks
    // at the tile holding it.
    let around = det.is_dynamic();
    let chosen: Vec<bool> = (0..grid.len())
        .map(|i| match tiles {
            Tiles::All => true,
            Tiles::Some { start, count } => {
                in_turn(i, grid.len(), start, count)
                    || (!around && candidates.iter().any(|c| holds(grid[i], &c.bbox)))
            }
        })
        .collect();
    let mut looked = chosen.iter().filter(|c| **c).count();
    let (buf, stride) = scaler.run(f, w as u32, h as u32)?;
    let full = Rgb::new(w, h, stride, buf)?;
    let mut found = add_tile_plates(
        det,
        &full,
        (&grid, o.plate_tile),
        |i| chosen[i],
        (thresh, &angles, all_turns),
        found,
    )?;
    if around && matches!(tiles, Tiles::Some { .. }) {
        let looked_at = (0..grid.len()).filter(|&i| chosen[i]).map(|i| grid[i]);
        let regions = regions_outside(&candidates, looked_at, o.plate_tile, w, h);
        let scale = region_scale(o.plate_tile);
        for r in &regions {
            found.extend(plates_in_region(
                det,
                &full,
                r,
                scale,
                (thresh, &angles, all_turns),
            )?);
        }
        looked += regions.len();
        found = nms(found, YOLO_NMS_IOU);
    }
    Ok((found, looked, candidates.len(), false))
}

/// The pieces or tiles of a `w`x`h` frame ([`plate_grid`]) and which of them this sample
/// looks at: pieces are looked at every sample, tiles as `tiles` says.
fn parts(w: usize, h: usize, tile: usize, dynamic: bool, tiles: Tiles) -> (Vec<Rect>, Tiles) {
    let (grid, pieces) = plate_grid(w, h, tile, dynamic);
    (grid, if pieces { Tiles::All } else { tiles })
}

/// The whole-frame look's plates and its plate-like candidates (scores under `thresh`),
/// together: the candidates decide where to look again.
fn whole_looks(
    det: &mut Detector,
    img: &Rgb,
    (thresh, angles, all_turns): (f32, &[f32], bool),
) -> Result<Vec<Detection>> {
    let (mut found, candidates) = plate_looks(det, img, thresh, angles, all_turns)?;
    found.extend(candidates);
    Ok(found)
}

/// The turns the whole-frame look takes (see [`Turns`]).
fn whole_angles(angles: &[f32], turns: Turns) -> Vec<f32> {
    match turns.whole_side {
        Some(i) if !angles.is_empty() => vec![angles[i % angles.len()]],
        _ => angles.to_vec(),
    }
}

/// [`plates`] on a tiled frame with a dynamic model, its looks run side by side on `pair`
/// ([`split_map`]): the same looks as one after the other, merged in the same order, so the
/// same plates. The whole-frame look joins the pieces or tiles on `pair` where that makes an
/// even number of looks (three tiles); otherwise (two pieces) it runs first, on `det` with all
/// the job's threads, so that neither session waits while the other does two looks.
fn plates_side_by_side(
    (det, pair): (&mut Detector, &mut [Detector; 2]),
    f: &frame::Video,
    o: &RedactOptions,
    turn: u32,
    turns: Turns,
    tiles: Tiles,
    scaler: &mut RgbScaler,
) -> Result<(Vec<Detection>, usize, usize)> {
    let angles = o.plate_angles();
    let looks = (o.plate_thresh, &angles[..], turns.all);
    let whole_angles = whole_angles(&angles, turns);
    let whole_looks =
        |det: &mut Detector, img: &Rgb| whole_looks(det, img, (looks.0, &whole_angles, looks.2));
    let (w, h) = (f.width() as usize, f.height() as usize);
    let (grid, tiles) = parts(w, h, o.plate_tile, true, tiles);
    let chosen: Vec<usize> = (0..grid.len())
        .filter(|&i| match tiles {
            Tiles::All => true,
            Tiles::Some { start, count } => in_turn(i, grid.len(), start, count),
        })
        .collect();
    // On the pair, the whole frame as the model sees it is kept in its own buffer: the
    // scaler's is reused for the full-resolution picture the parts are cut from.
    let (first, view) = if chosen.len() % 2 == 1 {
        let view = FrameView::new(&pair[0], f, 0, turn, scaler)?.into_owned();
        (None, Some(view))
    } else {
        (
            Some(detect_frame_with(det, f, 0, turn, scaler, whole_looks)?),
            None,
        )
    };
    let (buf, stride) = scaler.run(f, w as u32, h as u32)?;
    let full = Rgb::new(w, h, stride, buf)?;
    // Phase 1: the whole frame (unless it ran first) and the chosen parts; phase 2: the
    // regions around the whole frame's candidates that no chosen tile holds.
    enum Look {
        Whole,
        Part(usize),
    }
    let phase1: Vec<Look> = (view.iter().map(|_| Look::Whole))
        .chain(chosen.iter().map(|&i| Look::Part(i)))
        .collect();
    let mut results = split_map(pair, &phase1, |det, look| match (look, &view) {
        (Look::Whole, Some(view)) => view.detect(det, whole_looks),
        (Look::Whole, None) => Ok(Vec::new()),
        (Look::Part(i), _) => tile_plates(det, &full, grid[*i], o.plate_tile, looks),
    })?
    .into_iter();
    let whole = match first {
        Some(whole) => whole,
        None => results.next().unwrap_or_default(),
    };
    let (mut found, candidates): (Vec<Detection>, Vec<Detection>) =
        whole.into_iter().partition(|d| d.score >= looks.0);
    found.extend(results.flatten());
    let mut found = nms(found, YOLO_NMS_IOU);
    let mut looked = chosen.len();
    if matches!(tiles, Tiles::Some { .. }) {
        let looked_at = chosen.iter().map(|&i| grid[i]);
        let regions = regions_outside(&candidates, looked_at, o.plate_tile, w, h);
        let scale = region_scale(o.plate_tile);
        let around = split_map(pair, &regions, |det, r| {
            plates_in_region(det, &full, r, scale, looks)
        })?;
        found.extend(around.into_iter().flatten());
        looked += regions.len();
        found = nms(found, YOLO_NMS_IOU);
    }
    Ok((found, looked, candidates.len()))
}

/// Runs `f` on every item, item k on session k % 2 of `pair`, the two sessions side by side;
/// the results come back in the order of the items.
fn split_map<I: Sync, T: Send>(
    pair: &mut [Detector; 2],
    items: &[I],
    f: impl Fn(&mut Detector, &I) -> Result<T> + Sync,
) -> Result<Vec<T>> {
    let [a, b] = pair;
    let side = |det: &mut Detector, k0: usize| -> Result<Vec<T>> {
        items
            .iter()
            .skip(k0)
            .step_by(2)
            .map(|it| f(det, it))
            .collect()
    };
    let (ra, rb) = std::thread::scope(|s| {
        let other = s.spawn(|| side(b, 1));
        (side(a, 0), other.join())
    });
    let rb = rb.map_err(|_| VeilError::Internal("a plate worker panicked".into()))??;
    let (mut ia, mut ib) = (ra?.into_iter(), rb.into_iter());
    Ok((0..items.len())
        .filter_map(|k| if k % 2 == 0 { ia.next() } else { ib.next() })
        .collect())
}

/// Whether the tile `(x, y, w, h)` holds the centre of `b`.
fn holds((x, y, tw, th): (usize, usize, usize, usize), b: &BBox) -> bool {
    let (cx, cy) = b.center();
    cx >= x as f32 && cx < (x + tw) as f32 && cy >= y as f32 && cy < (y + th) as f32
}

/// The squares around the whole frame's `candidates` that none of the tiles `looked_at`
/// holds, each looked at again at the tiles' scale (at least a third of a tile).
fn regions_outside(
    candidates: &[Detection],
    looked_at: impl Iterator<Item = (usize, usize, usize, usize)> + Clone,
    tile: usize,
    w: usize,
    h: usize,
) -> Vec<BBox> {
    let outside: Vec<BBox> = candidates
        .iter()
        .filter(|c| !looked_at.clone().any(|t| holds(t, &c.bbox)))
        .map(|c| c.bbox)
        .collect();
    regions_around(&outside, CANDIDATE_REACH, tile as f32 / 3.0, w, h)
}

/// The scale regions are looked at: the tiles' (a `tile`-pixel tile is seen at 640).
fn region_scale(tile: usize) -> f32 {
    640.0 / tile as f32
}

/// Drops the plates of frame `f` that cannot be plates next to the face boxes `faces`, of
/// which `detected` were found on this frame (see [`plausible_plate`]): a "plate" far taller than the faces beside it, or a close-up, starts
/// no track.
pub fn keep_plausible(
    found: &mut Vec<Detection>,
    f: &frame::Video,
    faces: &[BBox],
    detected: &[BBox],
) {
    let (w, h) = (f.width() as f32, f.height() as f32);
    found.retain(|d| plausible_plate(&d.bbox, w, h, faces, detected));
}

/// A face track once found with at least this score is a face, not a doubtful box on a car:
/// where it is followed, it rules out a "plate" far taller than it on the chest under it
/// (see [`keep_plausible`]). False faces on the moving cars clips scored 0.22–0.43, the
/// faces of a zooming group photo 0.86–0.95.
pub const SURE_FACE: f32 = 0.5;

/// A candidate of the whole-frame plate look is looked at again on a square of this many
/// times its long side (at least a third of a tile), at the tiles' scale.
const CANDIDATE_REACH: f32 = 3.0;

/// The plate model on region `r` of `full` resized by `scale`, as on a tile: upright, and
/// turned where `all_turns` says or candidates are. Boxes in `full` pixels.
fn plates_in_region(
    det: &mut Detector,
    full: &Rgb,
    r: &BBox,
    scale: f32,
    (thresh, angles, all_turns): (f32, &[f32], bool),
) -> Result<Vec<Detection>> {
    detect_in_region(det, full, r, scale, |det, img| {
        plate_looks(det, img, thresh, angles, all_turns).map(|p| p.0)
    })
}

/// Whether tile `i` of `n` is among the `count` tiles from `start` (wrapping round).
fn in_turn(i: usize, n: usize, start: usize, count: usize) -> bool {
    (i + n - start % n) % n < count
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_taken_in_turn_visit_every_tile() {
        // 12 tiles, 3 a sample: 4 samples see every tile once, 8 samples twice.
        for (n, samples, times) in [(12, 4, 1), (12, 8, 2), (6, 2, 1), (4, 4, 3)] {
            let mut seen = vec![0; n];
            for s in 0..samples {
                for (i, c) in seen.iter_mut().enumerate() {
                    *c += in_turn(i, n, s * 3, 3) as usize;
                }
            }
            assert!(seen.iter().all(|&c| c == times), "{n}: {seen:?}");
        }
    }
}
