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

/// The longest file name a file system takes (bytes), for the outputs and their temp files.
pub const NAME_MAX: usize = 255;

/// Checks input and output paths before any work: the input must be a readable file; no output
/// may be the input (the video, and every side file a run writes: audit record, pages,
/// highlights); every output name must leave room for its temp file's name. Creates the
/// output folders that are missing; the guard removes them again unless the run keeps them.
pub fn check_paths(input: &Path, outputs: &[&Path]) -> Result<CreatedDirs> {
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
    for out in outputs {
        let name = out.file_name().ok_or_else(|| {
            VeilError::Setting(crate::error::InvalidSetting::Path {
                path: out.to_path_buf(),
                why: "has no file name".into(),
            })
        })?;
        let temp = temp_path_for(out);
        let longest = temp.file_name().map_or(0, |n| n.len()).max(name.len());
        if longest > NAME_MAX {
            return Err(VeilError::Setting(crate::error::InvalidSetting::Path {
                path: out.to_path_buf(),
                why: format!(
                    "this output's name (or its temp file's, {longest} bytes) is longer than the {NAME_MAX} bytes a file name can have; choose a shorter -o name"
                ),
            }));
        }
        if resolve(out).is_some_and(|c| c == canon_in) {
            return Err(VeilError::OutputIsInput(out.to_path_buf()));
        }
    }
    let mut dirs = CreatedDirs::default();
    for out in outputs {
        let parent = out
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        dirs.create(parent)?;
    }
    Ok(dirs)
}

/// Where `path` points once resolved (through links), whether or not it exists yet.
pub fn resolve(path: &Path) -> Option<PathBuf> {
    if let Ok(c) = path.canonicalize() {
        return Some(c);
    }
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path.file_name()?;
    match parent.canonicalize() {
        Ok(p) => Some(p.join(name)),
        // The folder does not exist yet: resolve what does.
        Err(_) => Some(resolve(parent)?.join(name)),
    }
}

/// Folders a run created, removed again (when empty) unless the run succeeded: a failed run
/// leaves nothing behind, not even the folder it would have written into.
#[derive(Debug, Default)]
#[must_use = "the folders are removed when this is dropped unless keep() is called"]
pub struct CreatedDirs {
    dirs: Vec<PathBuf>,
}

impl CreatedDirs {
    /// Creates `dir` and its missing ancestors, remembering which ones it made.
    pub fn create(&mut self, dir: &Path) -> Result<()> {
        let mut missing = Vec::new();
        let mut d = Some(dir);
        while let Some(p) = d.filter(|p| !p.as_os_str().is_empty() && !p.exists()) {
            missing.push(p.to_path_buf());
            d = p.parent();
        }
        std::fs::create_dir_all(dir)
            .map_err(|e| VeilError::io("cannot create output folder", dir, e))?;
        self.dirs.extend(missing);
        Ok(())
    }

    /// The run succeeded: the folders stay.
    pub fn keep(mut self) {
        self.dirs.clear();
    }
}

impl Drop for CreatedDirs {
    fn drop(&mut self) {
        // Deepest first: a folder made by an earlier call may hold one made by a later call.
        self.dirs
            .sort_by_key(|d| std::cmp::Reverse(d.components().count()));
        for d in &self.dirs {
            // Only an empty folder goes (remove_dir refuses others).
            let _ = std::fs::remove_dir(d);
        }
    }
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
    fn an_output_or_side_file_equal_to_the_input_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.mp4");
        std::fs::write(&input, b"x").unwrap();
        assert!(matches!(
            check_paths(&input, &[&dir.path().join("./in.mp4")]),
            Err(VeilError::OutputIsInput(_))
        ));
        // `veil redact o.mp4.audit.json -o o.mp4` would write its audit record over the input.
        let audit = dir.path().join("o.mp4.audit.json");
        std::fs::write(&audit, b"{}").unwrap();
        let video = dir.path().join("o.mp4");
        let side = crate::audit::audit_path(&video);
        assert!(matches!(
            check_paths(&audit, &[&video, &side]),
            Err(VeilError::OutputIsInput(p)) if p == side
        ));
        check_paths(&input, &[&dir.path().join("sub/out.mp4")])
            .unwrap()
            .keep();
        assert!(dir.path().join("sub").is_dir());
    }

    #[test]
    fn folders_a_failed_run_made_are_removed_and_long_names_refused() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.mp4");
        std::fs::write(&input, b"x").unwrap();
        let deep = dir.path().join("a/b/c/out.mp4");
        let beside = dir.path().join("a/b/c.review/page.html");
        drop(check_paths(&input, &[&deep, &beside]).unwrap());
        assert!(!dir.path().join("a").exists());
        let long = dir.path().join(format!("{}.mp4", "x".repeat(245)));
        let e = check_paths(&input, &[&long]).unwrap_err();
        assert_eq!(e.exit_code(), 2, "{e}");
    }
}
