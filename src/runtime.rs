//! ONNX Runtime start-up: one environment per process, loaded from a known path, never a panic.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;

use crate::accel::Device;
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

static DEVICE: std::sync::Mutex<Device> = std::sync::Mutex::new(Device::Cpu);
static CUDA_USED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Sets where sessions opened from now on run (`--device`).
pub fn set_device(d: Device) {
    *DEVICE.lock().unwrap_or_else(|e| e.into_inner()) = d;
}

/// The execution provider sessions actually got: "cuda" once any session runs on CUDA.
pub fn execution_provider() -> &'static str {
    if CUDA_USED.load(std::sync::atomic::Ordering::Relaxed) {
        "cuda"
    } else {
        "cpu"
    }
}

static LOW_MEMORY: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Frames of at least this many pixels (3840x2160 less 10%) switch on [`set_low_memory`].
pub const LOW_MEMORY_PIXELS: usize = 3840 * 2160 * 9 / 10;

/// Whether frames of `w`x`h` are large enough for the low-memory settings.
pub fn is_large_frame(w: usize, h: usize) -> bool {
    w * h >= LOW_MEMORY_PIXELS
}

/// Low-memory mode, for 4K and larger frames (process-wide; once on, it stays on):
/// - glibc's malloc serves blocks of 1 MiB and more with their own mappings, returned to the
///   system when freed, instead of letting its dynamic threshold grow to 32 MiB and keeping
///   freed frame-sized blocks in fragmented per-thread heaps;
/// - each model run ends by shrinking ONNX Runtime's CPU arena back to its first chunk
///   (`memory.enable_memory_arena_shrinkage`), instead of keeping the largest extension
///   (167 MiB for the 1280-px face pass on a 4K frame).
///
/// Frames that large are also decoded on one thread, and x264 looks ahead 3 frames for them,
/// not 10 (`video::Input::open_with`, `video::Output::create`). Measured on a 4 s 4K clip: peak RSS from 1175
/// to 1016 MiB (`scripts/bench_e2e.py --memory`), for about 10-14% more time; so it is not
/// used below 4K.
pub fn set_low_memory(on: bool) {
    if on && !LOW_MEMORY.swap(true, std::sync::atomic::Ordering::Relaxed) {
        // SAFETY: mallopt only changes allocator parameters; M_MMAP_THRESHOLD takes a size.
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
        }
        tracing::debug!("low-memory mode on");
    }
}

pub fn low_memory() -> bool {
    LOW_MEMORY.load(std::sync::atomic::Ordering::Relaxed)
}

/// Runs `session`: as is normally; in low-memory mode with run options that shrink the CPU
/// arena at the end of the run.
pub fn run<'s, 'i, 'v: 'i, const N: usize>(
    session: &'s mut Session,
    inputs: impl Into<ort::session::SessionInputs<'i, 'v, N>>,
) -> ort::Result<ort::session::SessionOutputs<'s>> {
    static SHRINK: OnceLock<std::result::Result<ort::session::RunOptions, String>> =
        OnceLock::new();
    if !low_memory() {
        return session.run(inputs);
    }
    let ro = SHRINK.get_or_init(|| {
        let mut ro = ort::session::RunOptions::new().map_err(|e| e.to_string())?;
        ro.set("memory.enable_memory_arena_shrinkage", "cpu:0")
            .map_err(|e| e.to_string())?;
        Ok(ro)
    });
    match ro {
        Ok(ro) => session.run_with_options(inputs, ro),
        Err(e) => Err(ort::Error::new(e.clone())),
    }
}

/// Opens a session with full graph optimisation and `threads` intra-op threads, on the device
/// chosen with [`set_device`]: with `auto`, a CUDA failure falls back to the CPU (logged once);
/// with `cuda`, it is an error.
pub fn open_session(model_id: &str, path: &Path, threads: usize) -> Result<Session> {
    let device = *DEVICE.lock().unwrap_or_else(|e| e.into_inner());
    if device.wants_cuda() {
        match open_with(model_id, path, threads, true) {
            Ok(s) => {
                CUDA_USED.store(true, std::sync::atomic::Ordering::Relaxed);
                return Ok(s);
            }
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
        return Err(VeilError::Config(
            "this veil was built without the `cuda` feature".into(),
        ));
    }
    let session = builder
        .commit_from_file(path)
        .map_err(|e| VeilError::ort(Some(model_id), e))?;
    Ok(session)
}
