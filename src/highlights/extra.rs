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

    /// Runs the model on each second of `samples`; returns `seconds` scores.
    pub fn run(
        &self,
        samples: &[f32],
        seconds: usize,
        threads: usize,
        device: crate::accel::Device,
    ) -> Result<(Vec<f32>, ModelUse)> {
        let id = self.name.clone();
        let sha = crate::util::sha256_file(&self.path)?;
        let mut session = crate::runtime::open_session(&id, &self.path, threads, device)?;
        let input_name = session
            .inputs()
            .first()
            .map(|i| i.name().to_string())
            .ok_or_else(|| VeilError::ModelFormat {
                id: id.clone(),
                msg: "the model has no input".into(),
            })?;
        let err = |e: ort::Error| VeilError::ort(Some(&id), e);
        let rate = super::audio::RATE as usize;
        let mut buf = vec![0.0f32; rate];
        let mut out = Vec::with_capacity(seconds);
        for s in 0..seconds {
            let a = (s * rate).min(samples.len());
            let b = ((s + 1) * rate).min(samples.len());
            buf.fill(0.0);
            buf[..b - a].copy_from_slice(&samples[a..b]);
            let t = TensorRef::from_array_view(([1usize, rate], buf.as_slice())).map_err(err)?;
            let outputs = session
                .run(ort::inputs![input_name.as_str() => t])
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
            out.push(if x.is_finite() {
                x.clamp(0.0, 1.0)
            } else {
                0.0
            });
        }
        Ok((
            out,
            ModelUse {
                id: self.name.clone(),
                sha256: sha,
                license: "user-supplied".into(),
            },
        ))
    }
}
