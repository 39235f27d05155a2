//! ONNX Runtime start-up: one environment per process, loaded from a known path, never a panic.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;

use crate::accel::Device;
use crate::error::{Result, VeilError};
use crate::paths;

/// Why ONNX Runtime could not be started (kept, so every caller gets the same answer).
#[derive(Debug, Clone)]
enum OrtInit {
    /// No library at any of these paths.
    Missing(String),
    /// A library was found but would not load.
    Load(String),
}

static ENV: OnceLock<std::result::Result<(ort::environment::Environment, PathBuf), OrtInit>> =
    OnceLock::new();

/// Loads ONNX Runtime (once) and returns the environment and the library path used.
pub fn environment() -> Result<&'static ort::environment::Environment> {
    let res = ENV.get_or_init(|| {
        let candidates = paths::ort_candidates();
        let Some(path) = candidates.iter().find(|p| p.is_file()) else {
            return Err(OrtInit::Missing(
                candidates
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            ));
        };
        let builder = ort::init_from(path).map_err(|e| OrtInit::Load(e.to_string()))?;
        let env = builder
            .with_name("veil")
            .with_telemetry(false)
            .build()
            .map_err(|e| OrtInit::Load(format!("{}: {e}", path.display())))?;
        Ok((env, path.clone()))
    });
    match res {
        Ok((env, _)) => Ok(env),
        Err(OrtInit::Missing(tried)) => Err(VeilError::OrtMissing {
            tried: tried.clone(),
        }),
        Err(OrtInit::Load(msg)) => Err(VeilError::OrtLoad { msg: msg.clone() }),
    }
}

/// The library file that was loaded, if any.
pub fn loaded_library() -> Option<&'static Path> {
    ENV.get()
        .and_then(|r| r.as_ref().ok())
        .map(|(_, p)| p.as_path())
}

/// Run options that shrink ONNX Runtime's CPU arena back to its first chunk after each run
/// (low-memory mode, see [`crate::job::is_large_frame`]).
pub fn shrinking_run_options() -> Result<ort::session::RunOptions> {
    let mut ro = ort::session::RunOptions::new().map_err(|e| VeilError::ort(None, e))?;
    ro.set("memory.enable_memory_arena_shrinkage", "cpu:0")
        .map_err(|e| VeilError::ort(None, e))?;
    Ok(ro)
}

/// Runs `session`, with `options` when given (see [`shrinking_run_options`]).
pub fn run<'s, 'i, 'v: 'i, const N: usize>(
    session: &'s mut Session,
    inputs: impl Into<ort::session::SessionInputs<'i, 'v, N>>,
    options: Option<&'s ort::session::RunOptions>,
) -> ort::Result<ort::session::SessionOutputs<'s>> {
    match options {
        Some(ro) => session.run_with_options(inputs, ro),
        None => session.run(inputs),
    }
}

/// Opens a session with full graph optimisation and `threads` intra-op threads on `device`:
/// with `auto`, a CUDA failure falls back to the CPU (logged once); with `cuda`, it is an error.
pub fn open_session(
    model_id: &str,
    path: &Path,
    threads: usize,
    device: Device,
) -> Result<Session> {
    if device.wants_cuda() {
        match open_with(model_id, path, threads, true) {
            Ok(s) => return Ok(s),
            Err(e) if device == Device::Auto => crate::accel::fallback("inference", &e.to_string()),
            Err(e) => return Err(e),
        }
    }
    open_with(model_id, path, threads, false)
}

fn open_with(model_id: &str, path: &Path, threads: usize, cuda: bool) -> Result<Session> {
    let env = environment()?;
    let err = |e: ort::Error<_>| VeilError::ort(Some(model_id), e.to_string());
    #[allow(unused_mut)]
    let mut builder = Session::builder(env)
        .map_err(|e| VeilError::ort(Some(model_id), e))?
        .with_optimization_level(GraphOptimizationLevel::All)
        .map_err(err)?
        .with_intra_threads(threads.max(1))
        .map_err(err)?
        .with_inter_threads(1)
        .map_err(err)?
        // Spinning workers would steal the cores that decode and encode run on.
        .with_config_entry("session.intra_op.allow_spinning", "0")
        .map_err(err)?
        // Memory patterns pre-plan one block per input shape; the arena serves the tensors as
        // fast without them, and veil runs each model at several shapes (measured: no change in
        // speed, about 50 MiB less at 4K).
        .with_memory_pattern(false)
        .map_err(err)?;
    if cuda {
        #[cfg(feature = "cuda")]
        {
            builder = builder
                .with_execution_providers([ort::ep::CUDA::default().build().error_on_failure()])
                .map_err(err)?;
        }
        #[cfg(not(feature = "cuda"))]
        return Err(crate::error::InvalidSetting::Unsupported(
            "this veil was built without the `cuda` feature".into(),
        )
        .into());
    }
    let session = builder
        .commit_from_file(path)
        .map_err(|e| VeilError::ort(Some(model_id), e))?;
    Ok(session)
}
