//! Typed errors of the library. Every message names the file, the frame or the model, and says
//! what to do next where there is something to do. [`VeilError::exit_code`] is the one place
//! that maps an error to the process exit code.

use std::path::PathBuf;

pub type Result<T, E = VeilError> = std::result::Result<T, E>;

/// A setting the user gave that cannot be used (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum InvalidSetting {
    /// A number outside its allowed range; `range` reads like "between 0.01 and 0.99".
    #[error("{flag} must be {range}, got {value}")]
    OutOfRange {
        flag: &'static str,
        value: String,
        range: &'static str,
    },

    #[error("{flag} must be one of {allowed}, got '{value}'")]
    NotOneOf {
        flag: &'static str,
        value: String,
        allowed: String,
    },

    /// A value that does not parse, or settings that contradict each other.
    #[error("{flag}: {why}")]
    Invalid { flag: String, why: String },

    /// A path the run cannot use as given.
    #[error("{why}: {}", path.display())]
    Path { path: PathBuf, why: String },

    /// Something this build cannot do, and how to get it.
    #[error("{0}")]
    Unsupported(String),
}

impl InvalidSetting {
    pub fn out_of_range(
        flag: &'static str,
        value: impl std::fmt::Display,
        range: &'static str,
    ) -> Self {
        InvalidSetting::OutOfRange {
            flag,
            value: value.to_string(),
            range,
        }
    }

    pub fn invalid(flag: impl Into<String>, why: impl Into<String>) -> Self {
        InvalidSetting::Invalid {
            flag: flag.into(),
            why: why.into(),
        }
    }
}

/// The stage of the redaction pipeline an error happened in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Decode,
    Detect,
    Redact,
    Encode,
    Highlights,
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Stage::Decode => "decode",
            Stage::Detect => "detect",
            Stage::Redact => "redact",
            Stage::Encode => "encode",
            Stage::Highlights => "highlights",
        })
    }
}

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

    /// `cause` is shown in the message (not as a separate source, so a printed error chain
    /// does not repeat it).
    #[error("frame {frame} ({time}): {stage} failed: {cause}")]
    Frame {
        frame: u64,
        time: String,
        stage: Stage,
        cause: Box<VeilError>,
    },

    /// Damaged or unusable media data, with what to do about it.
    #[error("{0}")]
    Damaged(String),

    #[error("ffmpeg: {context}: {msg}")]
    Ffmpeg { context: String, msg: String },

    #[error("invalid setting: {0}")]
    Setting(#[from] InvalidSetting),

    #[error("output would overwrite the input; choose another -o path: {}", .0.display())]
    OutputIsInput(PathBuf),

    /// Highlights failed after the redaction was committed with its audit record.
    #[error("{}", highlights_failed(output, cause))]
    Highlights {
        output: PathBuf,
        cause: Box<VeilError>,
    },

    #[error("cannot serialise {what}: {msg}")]
    Serialize { what: &'static str, msg: String },

    /// A broken invariant inside veil: a bug, never the user's input.
    #[error("internal error (please report): {0}")]
    Internal(String),

    #[error("interrupted; no output was written")]
    Interrupted,
}

/// The message for [`VeilError::Highlights`]: an interruption is not a failure, and the
/// redaction that was committed stays either way.
fn highlights_failed(output: &std::path::Path, cause: &VeilError) -> String {
    if cause.is_interrupted() {
        format!(
            "interrupted during highlights; the redacted video {} and its audit record are complete and kept, no highlights were written",
            output.display()
        )
    } else {
        format!(
            "the redacted video {} is complete and audited, but highlights failed: {cause}",
            output.display()
        )
    }
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

    pub fn serialize(what: &'static str, e: impl std::fmt::Display) -> Self {
        VeilError::Serialize {
            what,
            msg: e.to_string(),
        }
    }

    /// A shorthand for [`InvalidSetting::Invalid`].
    pub fn setting(flag: impl Into<String>, why: impl Into<String>) -> Self {
        VeilError::Setting(InvalidSetting::invalid(flag, why))
    }

    /// This error at a frame and stage (errors already tied to a frame, and interruptions,
    /// pass through unchanged).
    pub fn at_frame(self, frame: u64, time: String, stage: Stage) -> Self {
        match self {
            VeilError::Interrupted | VeilError::Frame { .. } => self,
            other => VeilError::Frame {
                frame,
                time,
                stage,
                cause: Box::new(other),
            },
        }
    }

    /// Whether the run stopped because it was asked to.
    pub fn is_interrupted(&self) -> bool {
        match self {
            VeilError::Interrupted => true,
            VeilError::Frame { cause, .. } | VeilError::Highlights { cause, .. } => {
                cause.is_interrupted()
            }
            _ => false,
        }
    }

    /// The process exit code for this error: 130 when interrupted (as a shell reports
    /// SIGINT), 2 for settings the user must change, 1 for everything else.
    pub fn exit_code(&self) -> u8 {
        if self.is_interrupted() {
            return 130;
        }
        match self {
            VeilError::Setting(_) => 2,
            _ => 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_come_from_the_variant() {
        assert_eq!(VeilError::setting("--x", "bad").exit_code(), 2);
        assert_eq!(VeilError::Interrupted.exit_code(), 130);
        let h = VeilError::Highlights {
            output: "o.mp4".into(),
            cause: Box::new(VeilError::setting("--signal-model", "unusable")),
        };
        // The redaction is done: a highlights failure is not a usage error.
        assert_eq!(h.exit_code(), 1);
        let hi = VeilError::Highlights {
            output: "o.mp4".into(),
            cause: Box::new(VeilError::Interrupted),
        };
        assert_eq!(hi.exit_code(), 130);
        let msg = hi.to_string();
        assert!(msg.starts_with("interrupted during highlights"), "{msg}");
        assert!(!msg.contains("no output was written"), "{msg}");
        let f = VeilError::Interrupted.at_frame(3, "t".into(), Stage::Detect);
        assert_eq!(f.exit_code(), 130);
        let f = VeilError::Damaged("bad".into()).at_frame(3, "t".into(), Stage::Decode);
        assert_eq!(f.to_string(), "frame 3 (t): decode failed: bad");
        assert_eq!(f.exit_code(), 1);
    }

    #[test]
    fn out_of_range_names_flag_value_and_range() {
        let e = VeilError::from(InvalidSetting::out_of_range(
            "--thresh",
            2.0,
            "between 0.01 and 0.99",
        ));
        assert_eq!(
            e.to_string(),
            "invalid setting: --thresh must be between 0.01 and 0.99, got 2"
        );
    }
}
