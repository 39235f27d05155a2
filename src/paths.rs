//! Where veil finds its cache (ONNX Runtime and models). No network access, ever.

use std::path::{Path, PathBuf};

/// The cache folder: `$VEIL_CACHE`, else the `.cache` folder of the checkout the binary was built
/// in (found beside or above the executable, then the build-time source folder).
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("VEIL_CACHE").filter(|v| !v.is_empty()) {
        return PathBuf::from(dir);
    }
    if let Ok(exe) = std::env::current_exe() {
        for dir in exe.ancestors().skip(1).take(4) {
            let candidate = dir.join(".cache");
            if candidate.join("models").is_dir() || candidate.join("ort").is_dir() {
                return candidate;
            }
        }
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join(".cache")
}

pub fn models_dir() -> PathBuf {
    cache_dir().join("models")
}

pub const ORT_LIB_NAME: &str = "libonnxruntime.so.1.31.1";

/// Candidate ONNX Runtime libraries in order: `ORT_DYLIB_PATH`, then the project's cache.
pub fn ort_candidates() -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH").filter(|v| !v.is_empty()) {
        out.push(PathBuf::from(p));
    }
    // A CUDA build prefers the GPU runtime (VEIL_GPU=1 scripts/setup.sh); it also runs on
    // the CPU when CUDA is missing.
    if cfg!(feature = "cuda") {
        out.push(cache_dir().join("ort-gpu").join(ORT_LIB_NAME));
    }
    out.push(cache_dir().join("ort").join(ORT_LIB_NAME));
    out
}
