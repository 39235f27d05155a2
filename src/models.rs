//! The model manifest (`models/models.toml`, compiled into the binary) and model resolution.
//! Every manifest model is verified by sha256 when it is loaded.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Result, VeilError};
use crate::paths;
use crate::util::sha256_file;

/// The manifest as shipped with this build.
pub const MANIFEST_TOML: &str = include_str!("../models/models.toml");

#[derive(Debug, Clone, Deserialize)]
pub struct Manifest {
    pub onnxruntime: RuntimeEntry,
    #[serde(rename = "model")]
    pub models: Vec<ModelEntry>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RuntimeEntry {
    pub package: String,
    pub version: String,
    pub license: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Task {
    Face,
    Plate,
    Vad,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Family {
    Centerface,
    Yolo,
    SileroVad,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ModelEntry {
    pub id: String,
    pub task: Task,
    pub family: Family,
    pub file: String,
    pub sha256: String,
    pub license: String,
    #[serde(default)]
    pub default: bool,
    pub source: Source,
    pub input: InputSpec,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Source {
    pub registry: String,
    pub package: String,
    pub version: String,
    pub path: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct InputSpec {
    pub name: String,
    pub dtype: String,
    #[serde(default = "one")]
    pub scale: f32,
    #[serde(default)]
    pub letterbox: bool,
    #[serde(default = "pad_default")]
    pub pad: u8,
    #[serde(default = "multiple_default")]
    pub multiple_of: u32,
    /// Fixed `[w, h]`, or empty for dynamic input.
    #[serde(default)]
    pub size: Vec<u32>,
}

fn one() -> f32 {
    1.0
}
fn pad_default() -> u8 {
    114
}
fn multiple_default() -> u32 {
    32
}

impl Manifest {
    pub fn builtin() -> Result<Manifest> {
        Self::parse(MANIFEST_TOML)
    }

    pub fn parse(text: &str) -> Result<Manifest> {
        let m: Manifest = toml::from_str(text).map_err(|e| VeilError::Manifest(e.to_string()))?;
        for e in &m.models {
            if e.sha256.len() != 64 || !e.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(VeilError::Manifest(format!(
                    "model '{}': sha256 must be 64 hex digits",
                    e.id
                )));
            }
            if e.file.contains('/') || e.file.contains("..") {
                return Err(VeilError::Manifest(format!(
                    "model '{}': file must be a plain file name, got '{}'",
                    e.id, e.file
                )));
            }
        }
        Ok(m)
    }

    pub fn get(&self, id: &str) -> Result<&ModelEntry> {
        self.models
            .iter()
            .find(|m| m.id == id)
            .ok_or_else(|| VeilError::UnknownModel(id.to_string()))
    }

    pub fn default_for(&self, task: Task) -> Option<&ModelEntry> {
        self.models.iter().find(|m| m.task == task && m.default)
    }
}

/// A model file ready to load: where it is, what it is and its verified hash.
#[derive(Debug, Clone, Serialize)]
pub struct ResolvedModel {
    pub id: String,
    pub task: Task,
    /// `None` for a user-supplied file: the family is then taken from the graph's outputs.
    pub family: Option<Family>,
    pub path: PathBuf,
    pub sha256: String,
    pub license: String,
    /// True when the file came from the manifest and matched its pinned hash.
    pub pinned: bool,
    #[serde(skip)]
    pub input: Option<InputSpec>,
}

impl ModelEntry {
    pub fn path(&self) -> PathBuf {
        paths::models_dir().join(&self.file)
    }

    /// Checks presence and sha256; returns the model ready to load.
    pub fn resolve(&self) -> Result<ResolvedModel> {
        let path = self.path();
        if !path.is_file() {
            return Err(VeilError::ModelMissing {
                id: self.id.clone(),
                path,
            });
        }
        let actual = sha256_file(&path)?;
        if !actual.eq_ignore_ascii_case(&self.sha256) {
            return Err(VeilError::ModelHash {
                id: self.id.clone(),
                path,
                expected: self.sha256.clone(),
                actual,
            });
        }
        Ok(ResolvedModel {
            id: self.id.clone(),
            task: self.task,
            family: Some(self.family),
            path,
            sha256: actual,
            license: self.license.clone(),
            pinned: true,
            input: Some(self.input.clone()),
        })
    }
}

/// A user-supplied model file, given by path. Its hash is recorded, not checked.
pub fn resolve_user_model(path: &Path, task: Task) -> Result<ResolvedModel> {
    if !path.is_file() {
        return Err(VeilError::Input {
            path: path.to_path_buf(),
            msg: "model file not found".into(),
        });
    }
    let sha256 = sha256_file(path)?;
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "user-model".into());
    Ok(ResolvedModel {
        id: format!("user:{stem}"),
        task,
        family: None,
        path: path.to_path_buf(),
        sha256,
        license: "user-supplied".into(),
        pinned: false,
        input: None,
    })
}

/// Whether a manifest model can be used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelState {
    /// Installed, and its sha256 matches the manifest.
    Ok,
    /// Not installed.
    Missing,
    /// Installed, but its sha256 is not the pinned one.
    HashMismatch {
        actual: String,
    },
    Error {
        message: String,
    },
}

impl std::fmt::Display for ModelState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ModelState::Ok => write!(f, "ok (sha256 verified)"),
            ModelState::Missing => write!(f, "missing (run `make setup`)"),
            ModelState::HashMismatch { actual } => {
                write!(
                    f,
                    "sha256 MISMATCH (got {})",
                    &actual[..actual.len().min(12)]
                )
            }
            ModelState::Error { message } => write!(f, "error: {message}"),
        }
    }
}

/// Status of one manifest model, for `veil models`.
#[derive(Debug, Clone, Serialize)]
pub struct ModelStatus {
    pub id: String,
    pub task: Task,
    pub family: Family,
    pub license: String,
    pub source: String,
    pub path: PathBuf,
    pub state: ModelState,
    /// `state` in words.
    pub status: String,
    pub default: bool,
}

pub fn list_status(manifest: &Manifest) -> Vec<ModelStatus> {
    manifest
        .models
        .iter()
        .map(|m| {
            let state = match m.resolve() {
                Ok(_) => ModelState::Ok,
                Err(VeilError::ModelMissing { .. }) => ModelState::Missing,
                Err(VeilError::ModelHash { actual, .. }) => ModelState::HashMismatch { actual },
                Err(e) => ModelState::Error {
                    message: e.to_string(),
                },
            };
            ModelStatus {
                id: m.id.clone(),
                task: m.task,
                family: m.family,
                license: m.license.clone(),
                source: format!(
                    "{} {}=={} {}",
                    m.source.registry, m.source.package, m.source.version, m.source.path
                ),
                path: m.path(),
                status: state.to_string(),
                state,
                default: m.default,
            }
        })
        .collect()
}

/// ONNX Runtime and every manifest model, as `veil models` shows them.
#[derive(Debug, Clone, Serialize)]
pub struct ModelsReport {
    pub onnxruntime: RuntimeStatus,
    pub models: Vec<ModelStatus>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RuntimeStatus {
    pub version: String,
    pub license: String,
    /// Whether the library loads.
    pub ok: bool,
    /// The library loaded, or why it did not.
    pub status: String,
}

impl ModelsReport {
    pub fn new() -> Result<ModelsReport> {
        let manifest = Manifest::builtin()?;
        let (ok, status) = match crate::runtime::environment() {
            Ok(_) => (
                true,
                format!(
                    "ok ({})",
                    crate::runtime::loaded_library()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default()
                ),
            ),
            Err(e) => (false, format!("missing: {e}")),
        };
        Ok(ModelsReport {
            onnxruntime: RuntimeStatus {
                version: manifest.onnxruntime.version.clone(),
                license: manifest.onnxruntime.license.clone(),
                ok,
                status,
            },
            models: list_status(&manifest),
        })
    }

    /// True when ONNX Runtime loads and every model is installed as pinned.
    pub fn all_ok(&self) -> bool {
        self.onnxruntime.ok && self.models.iter().all(|m| m.state == ModelState::Ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_manifest_parses_and_has_defaults() {
        let m = Manifest::builtin().unwrap();
        assert!(m.default_for(Task::Face).is_some());
        assert!(m.default_for(Task::Plate).is_some());
        assert_eq!(m.onnxruntime.version, "1.31.1");
    }

    #[test]
    fn bad_hash_in_manifest_is_rejected() {
        let bad = MANIFEST_TOML.replacen("sha256 = \"", "sha256 = \"zz", 1);
        // The first sha256 key might belong to a runtime file; make sure at least one model breaks.
        let res =
            Manifest::parse(&bad.replace(&Manifest::builtin().unwrap().models[0].sha256, "nothex"));
        assert!(res.is_err());
    }

    #[test]
    fn path_traversal_in_file_is_rejected() {
        let m = Manifest::builtin().unwrap();
        let text = MANIFEST_TOML.replace(
            &format!("file = \"{}\"", m.models[0].file),
            "file = \"../../etc/passwd\"",
        );
        assert!(Manifest::parse(&text).is_err());
    }
}
