//! Detection stage: ONNX models that find faces and plates in an RGB image.
//!
//! A detector is asked how large an image it wants (`input_size`), is given an RGB image of that
//! size and returns boxes in that image's pixels. The caller maps them back to frame pixels.

mod boxes;
mod centerface;
pub mod rotate;
pub mod views;
mod yolo;

use std::path::PathBuf;

pub use boxes::{drop_parts, nms, plausible_plate, tighten_plates, BBox, Class, Detection};
pub use centerface::{CenterFace, CENTERFACE_NMS_IOU};
pub use yolo::{Yolo, YOLO_NMS_IOU};

use crate::accel::Device;
use crate::error::{InvalidSetting, Result, VeilError};
use crate::models::{self, Family, Manifest, ResolvedModel, Task};
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
            return Err(VeilError::Internal(format!(
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
    /// Opens the model with `threads` intra-op threads on `device`; the family comes from the
    /// manifest, or for a user-supplied file from the shape of the graph's outputs.
    pub fn open(
        model: &ResolvedModel,
        class: Class,
        threads: usize,
        device: Device,
    ) -> Result<Detector> {
        let session = runtime::open_session(&model.id, &model.path, threads, device)?;
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

    /// Whether a smaller picture costs this detector less (a dynamic-input YOLO export); a
    /// fixed-size model pads every picture to its size.
    pub fn is_dynamic(&self) -> bool {
        matches!(self, Detector::Yolo(d) if d.is_dynamic())
    }

    pub fn class(&self) -> Class {
        match self {
            Detector::CenterFace(d) => d.class,
            Detector::Yolo(d) => d.class,
        }
    }

    /// The RGB size this detector wants for a frame of `w`x`h`, when run with `target_long`
    /// pixels on the long side (ignored by fixed-size models).
    pub fn input_size(&self, w: usize, h: usize, target_long: usize) -> (usize, usize) {
        match self {
            Detector::CenterFace(_) => CenterFace::input_size(w, h, target_long),
            Detector::Yolo(d) => d.input_size(w, h, target_long),
        }
    }

    /// Low-memory mode: every run ends by shrinking ONNX Runtime's CPU arena.
    pub fn set_low_memory(&mut self, on: bool) -> Result<()> {
        let ro = if on {
            Some(runtime::shrinking_run_options()?)
        } else {
            None
        };
        match self {
            Detector::CenterFace(d) => d.run_options = ro,
            Detector::Yolo(d) => d.run_options = ro,
        }
        Ok(())
    }

    /// Detects in `img`; boxes are in `img` pixels.
    pub fn detect(&mut self, img: &Rgb, thresh: f32) -> Result<Vec<Detection>> {
        match self {
            Detector::CenterFace(d) => d.detect(img, thresh),
            Detector::Yolo(d) => d.detect(img, thresh),
        }
    }
}

/// Which models a run uses: manifest ids or files, or the manifest's defaults.
#[derive(Debug, Clone, Default)]
pub struct DetectorSpec {
    pub face_model: Option<PathBuf>,
    pub plate_model: Option<PathBuf>,
    pub plates: bool,
}

/// The models of `spec` (manifest ids or files, or the manifest's defaults), sha256-checked:
/// the face model, then the plate model when plates are on.
pub fn resolve_models(spec: &DetectorSpec) -> Result<Vec<ResolvedModel>> {
    let manifest = Manifest::builtin()?;
    let resolve = |user: &Option<PathBuf>, task: Task| -> Result<ResolvedModel> {
        match user {
            // A manifest id (e.g. `--plate-model platedet`) unless a file of that name exists.
            Some(p) if !p.exists() && manifest.get(&p.to_string_lossy()).is_ok() => {
                let m = manifest.get(&p.to_string_lossy())?;
                if m.task != task {
                    return Err(InvalidSetting::invalid(
                        format!("--{}-model", format!("{task:?}").to_lowercase()),
                        format!(
                            "model {} is a {:?} model, not a {task:?} model",
                            m.id, m.task
                        ),
                    )
                    .into());
                }
                m.resolve()
            }
            Some(p) => models::resolve_user_model(p, task),
            None => manifest
                .default_for(task)
                .ok_or_else(|| VeilError::Manifest(format!("no default {task:?} model")))?
                .resolve(),
        }
    };
    let mut out = vec![resolve(&spec.face_model, Task::Face)?];
    if spec.plates {
        out.push(resolve(&spec.plate_model, Task::Plate)?);
    }
    Ok(out)
}

/// Loaded detectors and the models they came from.
pub struct Detectors {
    pub face: Detector,
    pub plate: Option<Detector>,
    /// Two more sessions of the plate model with half the threads each, for the looks of one
    /// plate sample that can run side by side: the tiles of a large frame (see
    /// `pipeline::passes::plates`). Two one-thread runs at once took 46.7 ms a 640x640 look
    /// where one two-thread run took 56.1 ms (the int8 plate model on 2 cores). Opened on the
    /// first tiled frame ([`Detectors::open_plate_pair`]); never with fewer than 2 threads, on
    /// a GPU, for a fixed-size model or in low-memory mode.
    pub plate_pair: Option<[Detector; 2]>,
    threads: usize,
    device: Device,
    pub models: Vec<ResolvedModel>,
    low_memory: bool,
}

impl Detectors {
    /// Resolves (sha256-checked) and opens the models of `spec`.
    pub fn load(spec: &DetectorSpec, threads: usize, device: Device) -> Result<Detectors> {
        let mut models = resolve_models(spec)?;
        let face = Detector::open(&models[0], Class::Face, threads, device)?;
        let plate = match models.get(1) {
            Some(m) => Some(Detector::open(m, Class::Plate, threads, device)?),
            None => None,
        };
        models.truncate(if plate.is_some() { 2 } else { 1 });
        Ok(Detectors {
            face,
            plate,
            plate_pair: None,
            threads,
            device,
            models,
            low_memory: false,
        })
    }

    /// Opens [`Detectors::plate_pair`] if it is not open and can be used (see there).
    pub fn open_plate_pair(&mut self) -> Result<()> {
        let usable = self.threads >= 2
            && !self.device.wants_cuda()
            && !self.low_memory
            && self.plate.as_ref().is_some_and(|p| p.is_dynamic());
        if self.plate_pair.is_some() || !usable {
            return Ok(());
        }
        let Some(m) = self.models.get(1) else {
            return Ok(());
        };
        let half = self.threads / 2;
        self.plate_pair = Some([
            Detector::open(m, Class::Plate, half, self.device)?,
            Detector::open(m, Class::Plate, self.threads - half, self.device)?,
        ]);
        Ok(())
    }

    /// Switches low-memory mode for the next file (a batch worker keeps its detectors).
    pub fn set_low_memory(&mut self, on: bool) -> Result<()> {
        if on != self.low_memory {
            self.face.set_low_memory(on)?;
            if let Some(p) = self.plate.as_mut() {
                p.set_low_memory(on)?;
            }
            if on {
                // Its arenas would grow too; it is opened again after the large file.
                self.plate_pair = None;
            }
            self.low_memory = on;
        }
        Ok(())
    }
}

#[inline]
pub(crate) fn round_up(v: usize, m: usize) -> usize {
    v.div_ceil(m) * m
}
