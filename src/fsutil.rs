//! File helpers every stage uses: temp files that vanish unless committed, atomic writes, and
//! the path checks made before any work starts.

use std::path::{Path, PathBuf};

use crate::error::{Result, VeilError};

/// Removes a temp file unless the job committed it.
pub struct TempGuard {
    path: PathBuf,
    armed: bool,
}

impl TempGuard {
    pub fn new(path: PathBuf) -> Self {
        TempGuard { path, armed: true }
    }
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// Renames the temp file onto `dest` (atomic on one file system).
    pub fn commit(mut self, dest: &Path) -> Result<()> {
        if let Ok(f) = std::fs::File::open(&self.path) {
            let _ = f.sync_all();
        }
        std::fs::rename(&self.path, dest)
            .map_err(|e| VeilError::io("cannot move finished output into place", dest, e))?;
        self.armed = false;
        Ok(())
    }
}

impl Drop for TempGuard {
    fn drop(&mut self) {
        if self.armed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Marker in the names of veil's temp files (batch runs skip such files as inputs and
/// remove the ones a killed run left).
pub const PARTIAL_MARKER: &str = ".veil-partial-";

/// Temp path beside `dest`, same extension, hidden, unique to this process.
pub fn temp_path_for(dest: &Path) -> PathBuf {
    let name = dest.file_name().unwrap_or_default().to_string_lossy();
    dest.with_file_name(format!(".{name}{PARTIAL_MARKER}{}", std::process::id()))
}

/// Writes `data` to `path` through a temp file and a rename.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let guard = TempGuard::new(temp_path_for(path));
    std::fs::write(guard.path(), data)
        .map_err(|e| VeilError::io("cannot write", guard.path(), e))?;
    guard.commit(path)
}

/// Checks input and output paths before any work: the input must be a readable file, the
/// output must not be the input, and the output folder must exist or be creatable.
pub fn check_paths(input: &Path, output: &Path) -> Result<()> {
    let meta =
        std::fs::metadata(input).map_err(|e| VeilError::io("cannot open input", input, e))?;
    if meta.is_dir() {
        return Err(VeilError::Input {
            path: input.to_path_buf(),
            msg: "is a directory, not a media file".into(),
        });
    }
    let canon_in = input
        .canonicalize()
        .map_err(|e| VeilError::io("cannot resolve input path", input, e))?;
    let parent = output
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !parent.exists() {
        std::fs::create_dir_all(parent)
            .map_err(|e| VeilError::io("cannot create output folder", parent, e))?;
    }
    let canon_parent = parent
        .canonicalize()
        .map_err(|e| VeilError::io("cannot resolve output folder", parent, e))?;
    let name = output.file_name().ok_or_else(|| {
        VeilError::Setting(crate::error::InvalidSetting::Path {
            path: output.to_path_buf(),
            why: "has no file name".into(),
        })
    })?;
    let canon_out = canon_parent.join(name);
    let same = canon_out == canon_in
        || canon_out
            .canonicalize()
            .map(|c| c == canon_in)
            .unwrap_or(false);
    if same {
        return Err(VeilError::OutputIsInput(output.to_path_buf()));
    }
    Ok(())
}

/// Seconds since the Unix epoch.
pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_guard_removes_its_file_unless_committed() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out.mp4");
        let g = TempGuard::new(temp_path_for(&dest));
        std::fs::write(g.path(), b"x").unwrap();
        let tmp = g.path().to_path_buf();
        assert!(tmp
            .file_name()
            .unwrap()
            .to_string_lossy()
            .contains(PARTIAL_MARKER));
        drop(g);
        assert!(!tmp.exists());
        let g = TempGuard::new(temp_path_for(&dest));
        std::fs::write(g.path(), b"y").unwrap();
        g.commit(&dest).unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"y");
        write_atomic(&dest, b"z").unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"z");
    }

    #[test]
    fn output_equal_to_input_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.mp4");
        std::fs::write(&input, b"x").unwrap();
        assert!(matches!(
            check_paths(&input, &dir.path().join("./in.mp4")),
            Err(VeilError::OutputIsInput(_))
        ));
        check_paths(&input, &dir.path().join("sub/out.mp4")).unwrap();
        assert!(dir.path().join("sub").is_dir());
    }
}
