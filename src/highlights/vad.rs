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

/// Silero VAD run as audio arrives: it keeps its recurrent state and the last chunk's tail,
/// never the audio itself (a 10-hour track costs the same memory as a 10-second one).
pub struct Vad {
    session: Session,
    id: String,
    cancel: Arc<AtomicBool>,
    state: Vec<f32>,
    /// The 64 samples of context, then the chunk being filled.
    x: Vec<f32>,
    filled: usize,
    probs: Vec<f32>,
}

impl Vad {
    /// Runs `session`; stops with `Interrupted` once `cancel` is set.
    pub fn new(session: Session, id: &str, cancel: Arc<AtomicBool>) -> Vad {
        Vad {
            session,
            id: id.to_string(),
            cancel,
            state: vec![0.0; 2 * 128],
            x: vec![0.0; CONTEXT + CHUNK],
            filled: 0,
            probs: Vec::new(),
        }
    }

    /// Adds 16 kHz mono samples; every full 512-sample chunk is run.
    pub fn push(&mut self, mut samples: &[f32]) -> Result<()> {
        while !samples.is_empty() {
            let n = (CHUNK - self.filled).min(samples.len());
            self.x[CONTEXT + self.filled..CONTEXT + self.filled + n].copy_from_slice(&samples[..n]);
            self.filled += n;
            samples = &samples[n..];
            if self.filled == CHUNK {
                self.run_chunk()?;
            }
        }
        Ok(())
    }

    /// Runs the last, zero-padded chunk; returns the speech probability of every 512-sample
    /// (32 ms) chunk.
    pub fn finish(mut self) -> Result<Vec<f32>> {
        if self.filled > 0 {
            self.x[CONTEXT + self.filled..].fill(0.0);
            self.run_chunk()?;
        }
        Ok(self.probs)
    }

    fn run_chunk(&mut self) -> Result<()> {
        if self.cancel.load(Ordering::Relaxed) {
            return Err(VeilError::Interrupted);
        }
        let id = self.id.clone();
        let err = |e: ort::Error| VeilError::ort(Some(&id), e);
        let sr = [16000i64];
        let input = TensorRef::from_array_view(([1usize, CONTEXT + CHUNK], self.x.as_slice()))
            .map_err(err)?;
        let st =
            TensorRef::from_array_view(([2usize, 1, 128], self.state.as_slice())).map_err(err)?;
        let rate = TensorRef::from_array_view(([1usize], &sr[..])).map_err(err)?;
        let outputs = self
            .session
            .run(ort::inputs!["input" => input, "state" => st, "sr" => rate])
            .map_err(err)?;
        let (_, prob) = outputs["output"].try_extract_tensor::<f32>().map_err(err)?;
        self.probs.push(prob.first().copied().unwrap_or(0.0));
        let (shape, new_state) = outputs["stateN"].try_extract_tensor::<f32>().map_err(err)?;
        if new_state.len() != self.state.len() {
            return Err(VeilError::ort(
                Some(&self.id),
                format!("unexpected VAD state shape {shape:?}"),
            ));
        }
        self.state.copy_from_slice(new_state);
        // Context for the next chunk: the last 64 samples of this one.
        self.x.copy_within(CHUNK.., 0);
        self.filled = 0;
        Ok(())
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
