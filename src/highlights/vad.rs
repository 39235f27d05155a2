//! Speech presence with Silero VAD (the ONNX file shipped in the PyPI package `silero-vad`).
//!
//! Calling convention of `silero_vad.onnx` at 16 kHz (as its own Python wrapper does): each
//! run takes 64 samples of context (the end of the previous chunk) plus 512 new samples as
//! `input` [1, 576], the recurrent `state` [2, 1, 128] from the previous run, and `sr` = 16000
//! (int64 scalar); it returns the speech probability `output` [1, 1] and `stateN`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use ort::session::Session;
use ort::value::TensorRef;

use crate::error::{Result, VeilError};

pub const CHUNK: usize = 512;
const CONTEXT: usize = 64;

pub struct Vad {
    session: Session,
    id: String,
    cancel: Arc<AtomicBool>,
}

impl Vad {
    /// Runs `session`; stops with `Interrupted` once `cancel` is set.
    pub fn new(session: Session, id: &str, cancel: Arc<AtomicBool>) -> Vad {
        Vad {
            session,
            id: id.to_string(),
            cancel,
        }
    }

    /// Speech probability for every 512-sample (32 ms) chunk of 16 kHz mono audio.
    pub fn run(&mut self, samples: &[f32]) -> Result<Vec<f32>> {
        let id = self.id.clone();
        let err = |e: ort::Error| VeilError::ort(Some(&id), e);
        let mut state = vec![0.0f32; 2 * 128];
        let mut x = vec![0.0f32; CONTEXT + CHUNK];
        let sr = [16000i64];
        let mut out = Vec::with_capacity(samples.len() / CHUNK + 1);
        for chunk in samples.chunks(CHUNK) {
            if self.cancel.load(Ordering::Relaxed) {
                return Err(VeilError::Interrupted);
            }
            // Context: the last 64 samples of the previous chunk (zeros at the start).
            x.copy_within(CHUNK.., 0);
            x[CONTEXT..CONTEXT + chunk.len()].copy_from_slice(chunk);
            x[CONTEXT + chunk.len()..].fill(0.0);
            let input = TensorRef::from_array_view(([1usize, CONTEXT + CHUNK], x.as_slice()))
                .map_err(err)?;
            let st =
                TensorRef::from_array_view(([2usize, 1, 128], state.as_slice())).map_err(err)?;
            let rate = TensorRef::from_array_view(([1usize], &sr[..])).map_err(err)?;
            let outputs = self
                .session
                .run(ort::inputs!["input" => input, "state" => st, "sr" => rate])
                .map_err(err)?;
            let (_, prob) = outputs["output"].try_extract_tensor::<f32>().map_err(err)?;
            out.push(prob.first().copied().unwrap_or(0.0));
            let (shape, new_state) = outputs["stateN"].try_extract_tensor::<f32>().map_err(err)?;
            if new_state.len() != state.len() {
                return Err(VeilError::ort(
                    Some(&self.id),
                    format!("unexpected VAD state shape {shape:?}"),
                ));
            }
            state.copy_from_slice(new_state);
        }
        Ok(out)
    }
}

/// Averages chunk probabilities onto 100 ms hops (`hops` of them).
pub fn per_hop(probs: &[f32], hops: usize) -> Vec<f32> {
    let per_hop = super::audio::HOP as f64 / CHUNK as f64;
    (0..hops)
        .map(|h| {
            let a = (h as f64 * per_hop).floor() as usize;
            let b = (((h + 1) as f64 * per_hop).ceil() as usize).min(probs.len());
            if a >= b {
                0.0
            } else {
                probs[a..b].iter().sum::<f32>() / (b - a) as f32
            }
        })
        .collect()
}
