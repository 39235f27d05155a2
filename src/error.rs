//! Typed errors of the library. Every message names the file, the frame or the model, and says
//! what to do next where there is something to do.

use std::path::PathBuf;

pub type Result<T, E = VeilError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum VeilError {
    #[error("{context}: {source}: {}", path.display())]
    Io {
        context: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("ONNX Runtime library not found (tried: {tried}); run `make setup` (or scripts/setup.sh) to install it into the project cache, or set ORT_DYLIB_PATH to a libonnxruntime.so of version 1.31")]
    OrtMissing { tried: String },

    #[error("ONNX Runtime library could not be loaded: {msg}; reinstall it with `make setup` or point ORT_DYLIB_PATH at a working libonnxruntime.so 1.31")]
    OrtLoad { msg: String },

    #[error("ONNX Runtime error{}: {msg}", model.as_ref().map(|m| format!(" in model {m}")).unwrap_or_default())]
    Ort { model: Option<String>, msg: String },

    #[error("model '{id}' is not installed (expected {}); run `make setup` to fetch it", path.display())]
    ModelMissing { id: String, path: PathBuf },

    #[error("model '{id}' failed its sha256 check: expected {expected}, got {actual}; delete it and run `make setup` again: {}", path.display())]
    ModelHash {
        id: String,
        path: PathBuf,
        expected: String,
        actual: String,
    },

    #[error("model '{id}' is not usable: {msg}")]
    ModelFormat { id: String, msg: String },

    #[error("model manifest is invalid: {0}")]
    Manifest(String),

    #[error("unknown model id '{0}'; `veil models` lists the installed ones")]
    UnknownModel(String),

    #[error("cannot read input: {msg}: {}", path.display())]
    Input { path: PathBuf, msg: String },

    #[error("frame {frame} ({time}): {stage} failed: {msg}")]
    Frame {
        frame: u64,
        time: String,
        stage: &'static str,
        msg: String,
    },

    #[error("ffmpeg: {context}: {msg}")]
    Ffmpeg { context: String, msg: String },

    #[error("invalid setting: {0}")]
    Config(String),

    #[error("output would overwrite the input; choose another -o path: {}", .0.display())]
    OutputIsInput(PathBuf),

    #[error("interrupted; no output was written")]
    Interrupted,
}

impl VeilError {
    pub fn io(context: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        VeilError::Io {
            context,
            path: path.into(),
            source,
        }
    }

    pub fn ffmpeg(context: impl Into<String>, e: impl std::fmt::Display) -> Self {
        VeilError::Ffmpeg {
            context: context.into(),
            msg: e.to_string(),
        }
    }

    pub fn ort(model: Option<&str>, e: impl std::fmt::Display) -> Self {
        VeilError::Ort {
            model: model.map(str::to_owned),
            msg: e.to_string(),
        }
    }
}
