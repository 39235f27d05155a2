//! Detection stage: ONNX models that find faces and plates in an RGB image.
//!
//! A detector is asked how large an image it wants (`input_size`), is given an RGB image of that
//! size and returns boxes in that image's pixels. The caller maps them back to frame pixels.

mod boxes;
mod centerface;
pub mod rotate;
mod yolo;

pub use boxes::{nms, BBox, Class, Detection};
pub use centerface::CenterFace;
pub use yolo::{Yolo, YOLO_NMS_IOU};

use crate::error::{Result, VeilError};
use crate::models::{Family, ResolvedModel};
use crate::runtime;

/// A borrowed packed RGB24 image (rows may be padded: `stride` bytes apart).
#[derive(Clone, Copy)]
pub struct Rgb<'a> {
    pub width: usize,
    pub height: usize,
    pub stride: usize,
    pub data: &'a [u8],
}

impl<'a> Rgb<'a> {
    pub fn new(width: usize, height: usize, stride: usize, data: &'a [u8]) -> Result<Self> {
        if width == 0
            || height == 0
            || stride < width * 3
            || data.len() < stride * (height - 1) + width * 3
        {
            return Err(VeilError::Config(format!(
                "RGB buffer too small for {width}x{height} (stride {stride}, {} bytes)",
                data.len()
            )));
        }
        Ok(Rgb {
            width,
            height,
            stride,
            data,
        })
    }

    /// A view of a sub-rectangle (clamped to the image).
    pub fn crop(&self, x: usize, y: usize, w: usize, h: usize) -> Rgb<'a> {
        let x = x.min(self.width - 1);
        let y = y.min(self.height - 1);
        let w = w.min(self.width - x).max(1);
        let h = h.min(self.height - y).max(1);
        let start = y * self.stride + x * 3;
        let end = (y + h - 1) * self.stride + (x + w) * 3;
        Rgb {
            width: w,
            height: h,
            stride: self.stride,
            data: &self.data[start..end],
        }
    }

    #[inline]
    pub fn row(&self, y: usize) -> &'a [u8] {
        &self.data[y * self.stride..y * self.stride + self.width * 3]
    }
}

/// One loaded detection model.
pub enum Detector {
    CenterFace(CenterFace),
    Yolo(Yolo),
}

impl Detector {
    /// Opens the model with `threads` intra-op threads; the family comes from the manifest, or
    /// for a user-supplied file from the shape of the graph's outputs.
    pub fn open(model: &ResolvedModel, class: Class, threads: usize) -> Result<Detector> {
        let session = runtime::open_session(&model.id, &model.path, threads)?;
        let family = match model.family {
            Some(f) => f,
            None => {
                if session.outputs().len() >= 3 {
                    Family::Centerface
                } else {
                    Family::Yolo
                }
            }
        };
        match family {
            Family::Centerface => Ok(Detector::CenterFace(CenterFace::new(
                session, &model.id, class,
            )?)),
            Family::Yolo => Ok(Detector::Yolo(Yolo::new(session, &model.id, class)?)),
            Family::SileroVad => Err(VeilError::ModelFormat {
                id: model.id.clone(),
                msg: "a voice-activity model cannot be used as a detector".into(),
            }),
        }
    }

    pub fn class(&self) -> Class {
        match self {
            Detector::CenterFace(d) => d.class,
            Detector::Yolo(d) => d.class,
        }
    }

    /// The RGB size this detector wants for a frame of `w`x`h`, when run at `target_width`
    /// (ignored by fixed-size models).
    pub fn input_size(&self, w: usize, h: usize, target_width: usize) -> (usize, usize) {
        match self {
            Detector::CenterFace(_) => CenterFace::input_size(w, h, target_width),
            Detector::Yolo(d) => d.input_size(w, h),
        }
    }

    /// Detects in `img`; boxes are in `img` pixels.
    pub fn detect(&mut self, img: &Rgb, thresh: f32) -> Result<Vec<Detection>> {
        match self {
            Detector::CenterFace(d) => d.detect(img, thresh),
            Detector::Yolo(d) => d.detect(img, thresh),
        }
    }
}

#[inline]
pub(crate) fn round_up(v: usize, m: usize) -> usize {
    v.div_ceil(m) * m
}
