//! YOLO-format detectors (v5, v8, v11 exports; detection or segmentation heads), letterboxed.
//! v8/v11 output `[1, 4 + classes (+ 32 mask coefficients), N]`; v5 output `[1, N, 5 + classes]`
//! with an objectness column. Every class of the model counts as the detector's class.

use half::f16;
use ort::session::Session;
use ort::value::{TensorElementType, TensorRef, ValueType};

use super::{nms, BBox, Class, Detection, Rgb};
use crate::error::{Result, VeilError};

/// IoU above which overlapping boxes are merged (Ultralytics' default).
pub const YOLO_NMS_IOU: f32 = 0.45;

/// The longest side a dynamic model is given (a picture asked for at a larger size is cut).
const MAX_DYNAMIC: usize = 1536;

pub struct Yolo {
    session: Session,
    id: String,
    input_name: String,
    pub(crate) class: Class,
    /// Options for every run (arena shrinkage in low-memory mode).
    pub(crate) run_options: Option<ort::session::RunOptions>,
    /// The input size (fixed models), or the longest side (dynamic ones).
    size: (usize, usize),
    dynamic: bool,
    half: bool,
    classes: Option<usize>,
    masks: usize,
    buf32: Vec<f32>,
    buf16: Vec<f16>,
}

/// Where a letterboxed image sits in the model input.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Letterbox {
    pub pad_x: usize,
    pub pad_y: usize,
}

impl Yolo {
    pub fn new(session: Session, id: &str, class: Class) -> Result<Self> {
        let fmt_err = |msg: String| VeilError::ModelFormat { id: id.into(), msg };
        let input = session
            .inputs()
            .first()
            .ok_or_else(|| fmt_err("graph has no input".into()))?;
        let (ty, shape) = match input.dtype() {
            ValueType::Tensor { ty, shape, .. } => (*ty, shape.to_vec()),
            other => return Err(fmt_err(format!("input is not a tensor: {other:?}"))),
        };
        let half = match ty {
            TensorElementType::Float32 => false,
            TensorElementType::Float16 => true,
            t => return Err(fmt_err(format!("input type {t:?} is not f32 or f16"))),
        };
        if shape.len() != 4 {
            return Err(fmt_err(format!(
                "input rank {} is not 4 (NCHW)",
                shape.len()
            )));
        }
        // A dynamic input (platedet-int8, or an export with `dynamic=True`) takes any size
        // that is a multiple of 32: the picture is scaled to 640 on its long side and padded
        // only to the next multiple, so a 16:9 frame costs a 640x384 run, not 640x640.
        let dynamic = shape[2] <= 0 || shape[3] <= 0;
        let dim = |v: i64| if v > 0 { v as usize } else { 640 };
        let size = (dim(shape[3]), dim(shape[2]));
        // A segmentation head has a second output of mask prototypes.
        let masks = if session.outputs().len() >= 2 { 32 } else { 0 };
        let classes = session
            .metadata()
            .ok()
            .and_then(|m| m.custom("names"))
            .map(|names| names.matches(':').count())
            .filter(|&n| n > 0);
        let input_name = input.name().to_string();
        Ok(Yolo {
            session,
            id: id.into(),
            input_name,
            class,
            run_options: None,
            size,
            dynamic,
            half,
            classes,
            masks,
            buf32: Vec::new(),
            buf16: Vec::new(),
        })
    }

    /// Whether the model takes any input size (a smaller picture costs less).
    pub fn is_dynamic(&self) -> bool {
        self.dynamic
    }

    /// The unpadded size the frame is scaled to (aspect kept; padded to the input size). A
    /// dynamic model takes it at `target_long` on its long side where one is asked for (0: the
    /// model's size, 640; at most [`MAX_DYNAMIC`]), and scales small pictures up at most
    /// twice: the cost follows the pixels (a 16x16 clip runs at 32x32, not 640x640).
    pub fn input_size(&self, w: usize, h: usize, target_long: usize) -> (usize, usize) {
        let (iw, ih) = if self.dynamic && target_long > 0 {
            let long = target_long.min(MAX_DYNAMIC);
            (long, long)
        } else {
            self.size
        };
        let (lw, lh) = letterbox_size(w, h, iw, ih);
        if self.dynamic && lw > 2 * w.max(1) {
            return ((2 * w).max(1), (2 * h).max(1));
        }
        (lw, lh)
    }

    pub fn detect(&mut self, img: &Rgb, thresh: f32) -> Result<Vec<Detection>> {
        let (iw, ih) = if self.dynamic {
            (
                super::round_up(img.width.min(MAX_DYNAMIC), 32),
                super::round_up(img.height.min(MAX_DYNAMIC), 32),
            )
        } else {
            self.size
        };
        let pad_x = (iw.saturating_sub(img.width)) / 2;
        let pad_y = (ih.saturating_sub(img.height)) / 2;
        let plane = iw * ih;
        const PAD: f32 = 114.0 / 255.0;
        self.buf32.clear();
        self.buf32.resize(3 * plane, PAD);
        {
            let (r, rest) = self.buf32.split_at_mut(plane);
            let (g, b) = rest.split_at_mut(plane);
            for y in 0..img.height.min(ih) {
                let row = img.row(y);
                let o = (y + pad_y) * iw + pad_x;
                for (x, px) in row.chunks_exact(3).take(iw - pad_x).enumerate() {
                    r[o + x] = px[0] as f32 * (1.0 / 255.0);
                    g[o + x] = px[1] as f32 * (1.0 / 255.0);
                    b[o + x] = px[2] as f32 * (1.0 / 255.0);
                }
            }
        }
        let id = self.id.clone();
        let err = |e: ort::Error| VeilError::ort(Some(&id), e);
        let shape = [1usize, 3, ih, iw];
        let outputs = if self.half {
            self.buf16.clear();
            self.buf16
                .extend(self.buf32.iter().map(|&v| f16::from_f32(v)));
            let input = TensorRef::from_array_view((shape, self.buf16.as_slice())).map_err(err)?;
            crate::runtime::run(
                &mut self.session,
                ort::inputs![self.input_name.as_str() => input],
                self.run_options.as_ref(),
            )
            .map_err(err)?
        } else {
            let input = TensorRef::from_array_view((shape, self.buf32.as_slice())).map_err(err)?;
            crate::runtime::run(
                &mut self.session,
                ort::inputs![self.input_name.as_str() => input],
                self.run_options.as_ref(),
            )
            .map_err(err)?
        };
        let out = &outputs[0];
        let (oshape, data): (Vec<i64>, Vec<f32>) = if self.half {
            let (s, d) = out.try_extract_tensor::<f16>().map_err(err)?;
            (s.to_vec(), d.iter().map(|v| v.to_f32()).collect())
        } else {
            let (s, d) = out.try_extract_tensor::<f32>().map_err(err)?;
            (s.to_vec(), d.to_vec())
        };
        let dets = decode(&oshape, &data, self.classes, self.masks, thresh, self.class).map_err(
            |msg| VeilError::ModelFormat {
                id: self.id.clone(),
                msg,
            },
        )?;
        let lb = Letterbox { pad_x, pad_y };
        Ok(dets
            .into_iter()
            .map(|mut d| {
                d.bbox = d
                    .bbox
                    .map(1.0, 1.0, -(lb.pad_x as f32), -(lb.pad_y as f32))
                    .clip(img.width as f32, img.height as f32);
                d
            })
            .filter(|d| d.bbox.is_valid())
            .collect())
    }
}

/// The size an image of `w`x`h` takes inside an `iw`x`ih` letterbox.
pub fn letterbox_size(w: usize, h: usize, iw: usize, ih: usize) -> (usize, usize) {
    let r = (iw as f64 / w.max(1) as f64).min(ih as f64 / h.max(1) as f64);
    (
        ((w as f64 * r).round() as usize).clamp(1, iw),
        ((h as f64 * r).round() as usize).clamp(1, ih),
    )
}

/// Decodes a YOLO output tensor into boxes in model-input pixels, with NMS.
pub fn decode(
    shape: &[i64],
    data: &[f32],
    classes: Option<usize>,
    masks: usize,
    thresh: f32,
    class: Class,
) -> std::result::Result<Vec<Detection>, String> {
    if shape.len() != 3 || shape.iter().any(|&d| d <= 0) {
        return Err(format!(
            "output shape {shape:?} is not [1, C, N] or [1, N, C]"
        ));
    }
    let (a, b) = (shape[1] as usize, shape[2] as usize);
    if data.len() < a * b {
        return Err("output data shorter than its shape".into());
    }
    let mut dets = Vec::new();
    if a < b {
        // v8/v11: channels first, no objectness.
        let (c, n) = (a, b);
        let nc = classes.unwrap_or(c.saturating_sub(4 + masks)).max(1);
        if 4 + nc > c {
            return Err(format!(
                "{c} channels cannot hold 4 box values and {nc} classes"
            ));
        }
        for i in 0..n {
            let score = (0..nc)
                .map(|k| data[(4 + k) * n + i])
                .fold(f32::NEG_INFINITY, f32::max);
            if score > thresh {
                let (cx, cy, w, h) = (data[i], data[n + i], data[2 * n + i], data[3 * n + i]);
                dets.push(Detection {
                    class,
                    bbox: BBox::new(cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0),
                    score,
                });
            }
        }
    } else {
        // v5: rows of cx, cy, w, h, objectness, class scores.
        let (n, c) = (a, b);
        let nc = classes.unwrap_or(c.saturating_sub(5 + masks)).max(1);
        if 5 + nc > c {
            return Err(format!(
                "{c} columns cannot hold 5 box values and {nc} classes"
            ));
        }
        for i in 0..n {
            let row = &data[i * c..(i + 1) * c];
            let cls = row[5..5 + nc]
                .iter()
                .copied()
                .fold(f32::NEG_INFINITY, f32::max);
            let score = row[4] * cls;
            if score > thresh {
                let (cx, cy, w, h) = (row[0], row[1], row[2], row[3]);
                dets.push(Detection {
                    class,
                    bbox: BBox::new(cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0),
                    score,
                });
            }
        }
    }
    Ok(nms(dets, YOLO_NMS_IOU))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dynamic_model_pads_only_to_the_next_multiple_of_32() {
        // What detect() builds for a 16:9 frame scaled by input_size: 640x360 in 640x384.
        let (w, h) = letterbox_size(1280, 720, 640, 640);
        assert_eq!((w, h), (640, 360));
        assert_eq!(
            (super::super::round_up(w, 32), super::super::round_up(h, 32)),
            (640, 384)
        );
    }

    #[test]
    fn letterbox_keeps_aspect() {
        assert_eq!(letterbox_size(1280, 720, 640, 640), (640, 360));
        assert_eq!(letterbox_size(608, 1080, 640, 640), (360, 640));
    }

    #[test]
    fn decodes_v8_layout() {
        // 10 anchors, 4 + 1 class + 2 mask channels.
        let n = 10;
        let mut d = vec![0.0f32; 7 * n];
        // anchor 1: box at (100, 50) size 20x10 with score 0.8
        d[1] = 100.0;
        d[n + 1] = 50.0;
        d[2 * n + 1] = 20.0;
        d[3 * n + 1] = 10.0;
        d[4 * n + 1] = 0.8;
        d[4 * n] = 0.1;
        let out = decode(&[1, 7, 10], &d, None, 2, 0.25, Class::Plate).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].bbox, BBox::new(90.0, 45.0, 110.0, 55.0));
        assert_eq!(out[0].class, Class::Plate);
    }

    #[test]
    fn decodes_v5_layout_with_objectness() {
        // 8 rows x 6 columns (1 class).
        let mut d = vec![0.0f32; 8 * 6];
        d[6..12].copy_from_slice(&[10.0, 10.0, 4.0, 4.0, 0.9, 0.9]);
        d[12..18].copy_from_slice(&[30.0, 30.0, 4.0, 4.0, 0.9, 0.1]);
        let out = decode(&[1, 8, 6], &d, None, 0, 0.25, Class::Plate).unwrap();
        assert_eq!(out.len(), 1);
        assert!((out[0].score - 0.81).abs() < 1e-6);
    }

    #[test]
    fn rejects_bad_shapes() {
        assert!(decode(&[1, 3, 100], &[0.0; 300], None, 0, 0.2, Class::Plate).is_err());
        assert!(decode(&[1, 7], &[0.0; 7], None, 0, 0.2, Class::Plate).is_err());
        assert!(decode(&[1, 7, 10], &[0.0; 5], None, 0, 0.2, Class::Plate).is_err());
    }
}
