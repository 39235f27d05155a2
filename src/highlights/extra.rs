//! The extension point: a user-supplied ONNX model as an additional per-second signal.
//!
//! The model takes one second of 16 kHz mono audio as `[1, 16000]` f32 in -1..1 (its first
//! input, whatever its name) and returns scores as `[1, C]` or `[C]` f32 (its first output).
//! Column `class` is read each second and clamped to 0..1 (give the model a final sigmoid or
//! softmax if it emits logits). The track is fused like the built-in kinds, under the kind
//! the user names, so e.g. an AudioSet tagger's "Gunshot" column can feed `loud_impulse`.

use std::path::PathBuf;

use ort::value::TensorRef;

use super::fusion::Kind;
use super::ModelUse;
use crate::error::{Result, VeilError};

#[derive(Debug, Clone)]
pub struct ExtraSignal {
    pub path: PathBuf,
    pub kind: Kind,
    pub class: usize,
    pub name: String,
}

impl ExtraSignal {
    /// Parses `PATH:KIND[:CLASS]`, e.g. `tagger.onnx:loud_impulse:427`.
    pub fn parse(spec: &str) -> Result<ExtraSignal> {
        let bad = |m: &str| VeilError::setting("--signal-model", format!("{spec:?}: {m}"));
        let (rest, last) = spec
            .rsplit_once(':')
            .ok_or_else(|| bad("expected PATH:KIND[:CLASS]"))?;
        let (path, kind, class) = match last.parse::<usize>() {
            Ok(c) => {
                let (p, k) = rest
                    .rsplit_once(':')
                    .ok_or_else(|| bad("expected PATH:KIND[:CLASS]"))?;
                (p, k, c)
            }
            Err(_) => (rest, last, 0),
        };
        let kind = Kind::parse(kind).ok_or_else(|| {
            bad(&format!(
                "unknown kind {kind:?} (one of {})",
                Kind::ALL.map(|k| k.name()).join(", ")
            ))
        })?;
        let path = PathBuf::from(path);
        if !path.is_file() {
            return Err(bad("no such file"));
        }
        let name = format!(
            "model:{}",
            path.file_stem().and_then(|s| s.to_str()).unwrap_or("extra")
        );
        Ok(ExtraSignal {
            path,
            kind,
            class,
            name,
        })
    }

    /// Opens the model and runs it on one second of silence, so an unusable model is refused
    /// before any work (not after a whole redaction).
    pub fn check(&self, device: crate::accel::Device) -> Result<()> {
        let mut s = self.stream(1, device)?;
        s.push(&vec![0.0f32; super::audio::RATE as usize])?;
        s.finish(1).map(|_| ())
    }

    /// The model, ready to take audio as it arrives (one run per second of it).
    pub fn stream(&self, threads: usize, device: crate::accel::Device) -> Result<ExtraStream> {
        let id = self.name.clone();
        let sha = crate::util::sha256_file(&self.path)?;
        let session = crate::runtime::open_session(&id, &self.path, threads, device)?;
        let input_name = session
            .inputs()
            .first()
            .map(|i| i.name().to_string())
            .ok_or_else(|| VeilError::ModelFormat {
                id: id.clone(),
                msg: "the model has no input".into(),
            })?;
        Ok(ExtraStream {
            session,
            input_name,
            class: self.class,
            buf: Vec::with_capacity(super::audio::RATE as usize),
            out: Vec::new(),
            model: ModelUse {
                id,
                sha256: sha,
                license: "user-supplied".into(),
            },
        })
    }
}

/// An extra signal model fed as audio arrives: one score per second, no audio kept.
pub struct ExtraStream {
    session: ort::session::Session,
    input_name: String,
    class: usize,
    buf: Vec<f32>,
    out: Vec<f32>,
    model: ModelUse,
}

impl ExtraStream {
    /// Adds 16 kHz mono samples; each full second is scored.
    pub fn push(&mut self, mut samples: &[f32]) -> Result<()> {
        let rate = super::audio::RATE as usize;
        while !samples.is_empty() {
            let n = (rate - self.buf.len()).min(samples.len());
            self.buf.extend_from_slice(&samples[..n]);
            samples = &samples[n..];
            if self.buf.len() == rate {
                self.score()?;
            }
        }
        Ok(())
    }

    /// Scores the last partial second (zero-padded); returns `seconds` scores (padded with
    /// zeros or cut to that many) and the model's record.
    pub fn finish(mut self, seconds: usize) -> Result<(Vec<f32>, ModelUse)> {
        if !self.buf.is_empty() {
            self.score()?;
        }
        self.out.resize(seconds, 0.0);
        Ok((self.out, self.model))
    }

    fn score(&mut self) -> Result<()> {
        let id = self.model.id.clone();
        let err = |e: ort::Error| VeilError::ort(Some(&id), e);
        let rate = super::audio::RATE as usize;
        self.buf.resize(rate, 0.0);
        let t = TensorRef::from_array_view(([1usize, rate], self.buf.as_slice())).map_err(err)?;
        let outputs = self
            .session
            .run(ort::inputs![self.input_name.as_str() => t])
            .map_err(err)?;
        let (_, v) = outputs[0].try_extract_tensor::<f32>().map_err(err)?;
        let x = v
            .get(self.class)
            .copied()
            .ok_or_else(|| VeilError::ModelFormat {
                id: id.clone(),
                msg: format!(
                    "output has {} values; class {} is out of range",
                    v.len(),
                    self.class
                ),
            })?;
        self.out.push(if x.is_finite() {
            x.clamp(0.0, 1.0)
        } else {
            0.0
        });
        self.buf.clear();
        Ok(())
    }
}
