//! ONNX Runtime start-up: one environment per process, loaded from a known path, never a panic.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;

use crate::error::{Result, VeilError};
use crate::paths;

static ENV: OnceLock<std::result::Result<(ort::environment::Environment, PathBuf), String>> =
    OnceLock::new();

/// Loads ONNX Runtime (once) and returns the environment and the library path used.
pub fn environment() -> Result<&'static ort::environment::Environment> {
    let res = ENV.get_or_init(|| {
        let candidates = paths::ort_candidates();
        let Some(path) = candidates.iter().find(|p| p.is_file()) else {
            return Err(format!(
                "missing:{}",
                candidates
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        };
        let builder = ort::init_from(path).map_err(|e| format!("load:{e}"))?;
        let env = builder
            .with_name("veil")
            .with_telemetry(false)
            .build()
            .map_err(|e| format!("load:{}: {e}", path.display()))?;
        Ok((env, path.clone()))
    });
    match res {
        Ok((env, _)) => Ok(env),
        Err(msg) => match msg.split_once(':') {
            Some(("missing", tried)) => Err(VeilError::OrtMissing {
                tried: tried.to_string(),
            }),
            Some((_, m)) => Err(VeilError::OrtLoad { msg: m.to_string() }),
            None => Err(VeilError::OrtLoad { msg: msg.clone() }),
        },
    }
}

/// The library file that was loaded, if any.
pub fn loaded_library() -> Option<&'static Path> {
    ENV.get()
        .and_then(|r| r.as_ref().ok())
        .map(|(_, p)| p.as_path())
}

/// Opens a session with full graph optimisation and `threads` intra-op threads.
pub fn open_session(model_id: &str, path: &Path, threads: usize) -> Result<Session> {
    let env = environment()?;
    let err = |e: ort::Error<_>| VeilError::ort(Some(model_id), e.to_string());
    let session = Session::builder(env)
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
        .commit_from_file(path)
        .map_err(|e| VeilError::ort(Some(model_id), e))?;
    Ok(session)
}
