//! Batch jobs: a folder (searched recursively) or a manifest of paths, processed by parallel
//! workers, resumable, with a per-file report. Sharding over a cluster scheduler (Slurm job
//! arrays, Kubernetes Indexed Jobs) takes a stable share of the inputs per process.

use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::audit::{self, AuditRecord};
use crate::decode::IMAGE_EXTS;
use crate::detect::Detectors;
use crate::error::{InvalidSetting, Result, VeilError};
use crate::fsutil::{check_paths, now_unix, write_atomic, PARTIAL_MARKER};
use crate::job::{Job, ThreadBudget};
use crate::options::RedactOptions;
use crate::pipeline;
use crate::util::sha256_file;

pub const BATCH_SCHEMA: &str = "veil.batch/1";

const VIDEO_EXTS: [&str; 14] = [
    "mp4", "m4v", "mov", "mkv", "avi", "webm", "ts", "mts", "m2ts", "flv", "wmv", "3gp", "mpg",
    "mpeg",
];

/// This process's share of the inputs: files whose stable hash modulo `count` is `index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    /// Parses `K/N` (0-based K).
    pub fn parse(s: &str) -> Result<Shard> {
        let bad =
            || VeilError::setting("--shard", format!("must be K/N with 0 <= K < N, got '{s}'"));
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let index: usize = k.trim().parse().map_err(|_| bad())?;
        let count: usize = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }

    /// The shard given by a scheduler: Slurm job arrays (`SLURM_ARRAY_TASK_ID`,
    /// `SLURM_ARRAY_TASK_COUNT`, `SLURM_ARRAY_TASK_MIN`), or Kubernetes Indexed Jobs
    /// (`JOB_COMPLETION_INDEX` with `VEIL_SHARD_COUNT`, set to the Job's `completions`).
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Option<Shard>> {
        let num = |name: &str| -> Result<Option<usize>> {
            match get(name) {
                None => Ok(None),
                Some(v) if v.trim().is_empty() => Ok(None),
                Some(v) => v.trim().parse().map(Some).map_err(|_| {
                    VeilError::setting(name, format!("must be a whole number, got '{v}'"))
                }),
            }
        };
        if let (Some(id), Some(count)) =
            (num("SLURM_ARRAY_TASK_ID")?, num("SLURM_ARRAY_TASK_COUNT")?)
        {
            let min = num("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
            return Shard::checked(id.checked_sub(min), count, "SLURM_ARRAY_TASK_ID").map(Some);
        }
        if let Some(idx) = num("JOB_COMPLETION_INDEX")? {
            let count = num("VEIL_SHARD_COUNT")?.ok_or_else(|| {
                VeilError::setting(
                    "VEIL_SHARD_COUNT",
                    "JOB_COMPLETION_INDEX is set but VEIL_SHARD_COUNT is not; set it to the Job's completions",
                )
            })?;
            return Shard::checked(Some(idx), count, "JOB_COMPLETION_INDEX").map(Some);
        }
        Ok(None)
    }

    fn checked(index: Option<usize>, count: usize, what: &str) -> Result<Shard> {
        match index {
            Some(i) if count > 0 && i < count => Ok(Shard { index: i, count }),
            _ => Err(VeilError::setting(
                what,
                format!("gives shard {index:?} of {count}, which is out of range"),
            )),
        }
    }

    pub fn contains(&self, key: &str) -> bool {
        (fnv1a(key.as_bytes()) % self.count as u64) as usize == self.index
    }
}

fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf29ce484222325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    })
}

/// One input: its path and the relative path mirrored under the output folder.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Item {
    pub input: PathBuf,
    pub rel: PathBuf,
}

fn media_kind(p: &Path) -> Option<bool> {
    let ext = p.extension()?.to_str()?.to_ascii_lowercase();
    if VIDEO_EXTS.contains(&ext.as_str()) {
        Some(true)
    } else if IMAGE_EXTS.contains(&ext.as_str()) {
        Some(false)
    } else {
        None
    }
}

/// A relative path with no root, `.` or `..` parts, so it cannot leave the output folder.
pub fn sanitize_rel(p: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(s) => out.push(s),
            Component::CurDir
            | Component::RootDir
            | Component::Prefix(_)
            | Component::ParentDir => {}
        }
    }
    (!out.as_os_str().is_empty()).then_some(out)
}

/// Inputs from a folder (recursive, media files only, sorted) or a manifest (one path per
/// line; blank lines and `#` comments skipped; relative paths are relative to the manifest).
/// Folders in `exclude` (the batch's own output and review folders) are not searched.
pub fn collect_inputs(input: &Path, exclude: &[PathBuf]) -> Result<Vec<Item>> {
    let meta =
        std::fs::metadata(input).map_err(|e| VeilError::io("cannot open batch input", input, e))?;
    let mut items = Vec::new();
    if meta.is_dir() {
        // Symbolic links are followed (a linked clip or folder is an input like any other);
        // a link that loops back on a folder above it is reported and skipped.
        let excluded = |p: &Path| crate::fsutil::resolve(p).is_some_and(|c| exclude.contains(&c));
        let walk = walkdir::WalkDir::new(input)
            .follow_links(true)
            .into_iter()
            .filter_entry(|e| !(e.file_type().is_dir() && excluded(e.path())));
        for e in walk {
            let e = match e {
                Ok(e) => e,
                Err(err) if err.loop_ancestor().is_some() => {
                    tracing::warn!("{err}; skipped");
                    continue;
                }
                Err(err) => {
                    let p = err.path().unwrap_or(input).to_path_buf();
                    match err.into_io_error() {
                        // A dangling link is not a file to process.
                        Some(io) if io.kind() == std::io::ErrorKind::NotFound => {
                            tracing::warn!("{}: broken link; skipped", p.display());
                            continue;
                        }
                        Some(io) => return Err(VeilError::io("cannot list", p, io)),
                        None => continue,
                    }
                }
            };
            let p = e.path();
            if !e.file_type().is_file() || media_kind(p).is_none() {
                continue;
            }
            // Our own temp files are never inputs.
            if e.file_name().to_string_lossy().contains(PARTIAL_MARKER) {
                continue;
            }
            let rel = p.strip_prefix(input).unwrap_or(p).to_path_buf();
            items.push(Item {
                input: p.to_path_buf(),
                rel,
            });
        }
    } else {
        let text = std::fs::read_to_string(input)
            .map_err(|e| VeilError::io("cannot read manifest", input, e))?;
        let base = input.parent().unwrap_or(Path::new("."));
        items = parse_manifest(&text, base).map_err(|msg| VeilError::Input {
            path: input.to_path_buf(),
            msg,
        })?;
    }
    items.sort();
    // The same file listed twice is one input; two files with one output name are not
    // dropped here: the batch reports the second as a conflict.
    items.dedup_by(|a, b| a.input == b.input);
    Ok(items)
}

/// Parses a manifest: one path per line; blank lines and `#` comments skipped; relative
/// paths are taken relative to `base`. The mirrored relative path never leaves the output folder.
pub fn parse_manifest(text: &str, base: &Path) -> std::result::Result<Vec<Item>, String> {
    let mut items = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.contains('\0') {
            return Err(format!("line {}: path contains a NUL byte", n + 1));
        }
        let p = Path::new(line);
        let full = if p.is_absolute() {
            p.to_path_buf()
        } else {
            base.join(p)
        };
        let rel =
            sanitize_rel(p).ok_or_else(|| format!("line {}: '{line}' names no file", n + 1))?;
        items.push(Item { input: full, rel });
    }
    Ok(items)
}

/// The output path for an item: mirrored under `outdir`. A video in a container veil does not
/// write keeps its name and gets `.mp4` added (`clip.avi` → `clip.avi.mp4`), so it never
/// takes the name of another input (`clip.mp4` beside it).
pub fn output_for(outdir: &Path, item: &Item) -> PathBuf {
    let rel = sanitize_rel(&item.rel).unwrap_or_else(|| PathBuf::from("unnamed"));
    let mut out = outdir.join(rel);
    if media_kind(&item.input) == Some(true) {
        let ext = out
            .extension()
            .and_then(|e| e.to_str())
            .map(|e| e.to_ascii_lowercase());
        if !matches!(ext.as_deref(), Some("mp4" | "m4v" | "mov" | "mkv")) {
            let mut name = out.file_name().unwrap_or_default().to_os_string();
            name.push(".mp4");
            out.set_file_name(name);
        }
    }
    out
}

/// Every file a batch writes for `item` with output `output`: the output, its audit record,
/// and for video its highlight files (unless `highlights` is off) and its review page.
fn outputs_of(item: &Item, output: &Path, opts: &RedactOptions, highlights: bool) -> Vec<PathBuf> {
    let mut v = opts.outputs(&item.input, output);
    if highlights && media_kind(&item.input) != Some(false) {
        v.extend(highlight_names(output).paths());
    }
    v
}

/// Why an item cannot be processed before it starts: its output is another item's, or one of
/// the files it would write is an input of the batch. `None` when it can go.
fn conflicts(items: &[Item], plans: &[Vec<PathBuf>]) -> Vec<Option<String>> {
    use std::collections::HashMap;
    let inputs: HashMap<PathBuf, usize> = items
        .iter()
        .enumerate()
        .filter_map(|(i, it)| Some((it.input.canonicalize().ok()?, i)))
        .collect();
    let mut owner: HashMap<PathBuf, usize> = HashMap::new();
    plans
        .iter()
        .enumerate()
        .map(|(i, outs)| {
            for o in outs {
                let key = crate::fsutil::resolve(o).unwrap_or_else(|| o.clone());
                if let Some(&j) = inputs.get(&key) {
                    return Some(format!(
                        "{} would be written over the input {}; nothing was written (choose an output folder outside the inputs)",
                        o.display(),
                        items[j].input.display()
                    ));
                }
                if let Some(&j) = owner.get(&key) {
                    if j != i {
                        return Some(format!(
                            "its output {} is also the output of {}; nothing was written for this file (rename one of them)",
                            o.display(),
                            items[j].input.display()
                        ));
                    }
                }
            }
            for o in outs {
                owner.insert(crate::fsutil::resolve(o).unwrap_or_else(|| o.clone()), i);
            }
            None
        })
        .collect()
}

/// True when `output` and its audit record exist and match `input` (its sha256) and each
/// other. A damaged or foreign record is not trusted.
pub fn already_done(input: &Path, output: &Path) -> bool {
    let audit_path = audit::audit_path(output);
    if !output.is_file() || !audit_path.is_file() {
        return false;
    }
    let Ok(rec) = AuditRecord::read(&audit_path) else {
        tracing::warn!(path = %audit_path.display(), "audit record unreadable; redoing");
        return false;
    };
    matches!(sha256_file(input), Ok(h) if h == rec.input.sha256)
        && matches!(sha256_file(output), Ok(h) if h == rec.output.sha256)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Done,
    Skipped,
    Failed,
    Interrupted,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileReport {
    pub input: String,
    pub output: String,
    pub status: Status,
    pub error: Option<String>,
    pub frames: u64,
    pub seconds: f64,
    pub fps: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchReport {
    pub schema: String,
    pub veil_version: String,
    pub created_unix: u64,
    pub shard: Option<String>,
    pub jobs: usize,
    pub threads_per_job: usize,
    pub seconds: f64,
    pub done: usize,
    pub skipped: usize,
    pub failed: usize,
    pub interrupted: usize,
    pub files: Vec<FileReport>,
}

impl BatchReport {
    pub fn table(&self) -> String {
        let mut s = format!(
            "{:<10} {:>8} {:>8}  {}\n",
            "status", "frames", "fps", "input"
        );
        for f in &self.files {
            s += &format!(
                "{:<10} {:>8} {:>8.1}  {}{}\n",
                format!("{:?}", f.status).to_lowercase(),
                f.frames,
                f.fps,
                f.input,
                f.error
                    .as_ref()
                    .map(|e| format!("\n{:>29}{e}", ""))
                    .unwrap_or_default()
            );
        }
        s += &format!(
            "{} done, {} skipped (already done), {} failed, {} interrupted in {:.1} s\n",
            self.done, self.skipped, self.failed, self.interrupted, self.seconds
        );
        s
    }
}

/// Batch settings.
#[derive(Debug, Clone)]
pub struct BatchOptions {
    pub jobs: usize,
    pub shard: Option<Shard>,
    pub redact: RedactOptions,
    /// Highlights per video (`veil process` outputs) unless `None`.
    pub highlights: Option<crate::highlights::HighlightOptions>,
}

impl BatchOptions {
    /// Checks every setting; the error names the flag, the value and what is allowed.
    pub fn validate(&self) -> Result<()> {
        if self.jobs == 0 || self.jobs > 1024 {
            return Err(InvalidSetting::out_of_range("--jobs", self.jobs, "1..1024").into());
        }
        self.redact.validate()?;
        if let Some(h) = &self.highlights {
            h.validate()?;
        }
        Ok(())
    }
}

/// The highlight files written beside a batch output: `<name>.highlights.json`,
/// `<name>.highlights.vtt` and `<name>.review.html`, where `<name>` is the output's file name.
pub fn highlight_names(output: &Path) -> crate::highlights::OutputNames {
    let dir = output.parent().unwrap_or(Path::new("."));
    let name = output
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    crate::highlights::OutputNames::new(dir, &format!("{name}."))
}

/// Default worker count. One file's pipeline leaves cores idle (decode, redact and encode run
/// beside inference), so small machines run one file per core: on 2 cores, 20 fixture clips took
/// 68 s with 2 workers against 83 s with 1 (scripts/bench-batch.sh). From 8 cores on, each
/// worker gets two inference threads to bound memory (each worker holds its own models).
pub fn default_jobs() -> usize {
    let cores = crate::job::cores();
    if cores < 8 {
        cores
    } else {
        cores / 2
    }
}

/// Progress hooks for a batch: called when a file starts and when it ends.
pub trait BatchProgress: Sync {
    fn total(&self, _n: usize) {}
    fn start(&self, _worker: usize, _item: &Item) {}
    fn frames(&self, _worker: usize, _done: u64, _total: Option<u64>) {}
    fn end(&self, _worker: usize, _report: &FileReport) {}
}

impl BatchProgress for () {}

/// Removes temp files a killed run left for this output.
fn remove_stale_partials(output: &Path) {
    let (Some(dir), Some(name)) = (output.parent(), output.file_name()) else {
        return;
    };
    let prefix = format!(".{}{PARTIAL_MARKER}", name.to_string_lossy());
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

/// One item of a batch, planned before any work starts.
struct Planned {
    output: PathBuf,
    /// The batch's options with this item's review folder.
    redact: RedactOptions,
    /// Every file it writes.
    outputs: Vec<PathBuf>,
    /// Why it must not run (its outputs clash with another item's or with an input).
    conflict: Option<String>,
}

fn process_one(
    item: &Item,
    plan: &Planned,
    opts: &BatchOptions,
    job: &Job,
    dets: &mut Option<Detectors>,
    progress: &(dyn Fn(u64, Option<u64>) + Sync),
) -> FileReport {
    let (ropts, hopts) = (&plan.redact, opts.highlights.as_ref());
    let output = &plan.output;
    let mut rep = FileReport {
        input: item.input.display().to_string(),
        output: output.display().to_string(),
        status: Status::Failed,
        error: plan.conflict.clone(),
        frames: 0,
        seconds: 0.0,
        fps: 0.0,
    };
    if plan.conflict.is_some() {
        return rep;
    }
    remove_stale_partials(output);
    let is_video = media_kind(&item.input) != Some(false);
    let names = highlight_names(output);
    // The review page is written last: without it the highlights are not complete.
    let highlights_done = hopts.is_none() || !is_video || names.html.is_file();
    if highlights_done && already_done(&item.input, output) {
        rep.status = Status::Skipped;
        if let Ok(a) = AuditRecord::read(&audit::audit_path(output)) {
            rep.frames = a.output.frames;
        }
        return rep;
    }
    let res = (|| -> Result<pipeline::RedactSummary> {
        let refs: Vec<&Path> = plan.outputs.iter().map(PathBuf::as_path).collect();
        let dirs = check_paths(&item.input, &refs)?;
        if dets.is_none() {
            let threads = ropts.threads_for(job);
            *dets = Some(Detectors::load(
                &ropts.detector_spec(),
                threads.ort,
                job.device,
            )?);
        }
        let d = dets.as_mut().expect("loaded above");
        let summary = if !is_video {
            pipeline::redact_image(&item.input, output, ropts, job, d)
        } else if let Some(h) = hopts {
            crate::process::process_video(
                &item.input,
                output,
                &names,
                ropts,
                h,
                job,
                d,
                Some(progress),
            )
            .map(|p| p.redact)
        } else {
            pipeline::redact_video(&item.input, output, ropts, job, d, Some(progress), None)
        }?;
        dirs.keep();
        Ok(summary)
    })();
    match res {
        Ok(s) => {
            rep.status = Status::Done;
            rep.frames = s.frames_out;
            rep.seconds = s.seconds;
            rep.fps = s.fps;
        }
        Err(e) if e.is_interrupted() => {
            rep.status = Status::Interrupted;
            rep.error = Some(VeilError::Interrupted.to_string());
        }
        Err(e) => rep.error = Some(e.to_string()),
    }
    rep
}

/// The report of a file whose worker panicked.
fn panicked_report(item: &Item, outdir: &Path, p: Box<dyn std::any::Any + Send>) -> FileReport {
    let why = p
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    tracing::error!("{}: internal error: {why}", item.input.display());
    FileReport {
        input: item.input.display().to_string(),
        output: output_for(outdir, item).display().to_string(),
        status: Status::Failed,
        error: Some(format!("internal error (please report): {why}")),
        frames: 0,
        seconds: 0.0,
        fps: 0.0,
    }
}

/// Runs the batch and writes `batch-report.json` (or `batch-report-K-of-N.json`) in `outdir`.
pub fn run_batch(
    input: &Path,
    outdir: &Path,
    opts: &BatchOptions,
    job: &Job,
    progress: &dyn BatchProgress,
) -> Result<BatchReport> {
    let started = Instant::now();
    opts.validate()?;
    job.validate()?;
    opts.redact.check_review_dir(outdir)?;
    let review_root = opts
        .redact
        .review_dir
        .clone()
        .unwrap_or_else(|| crate::review::default_review_dir(outdir));
    let exclude: Vec<PathBuf> = [outdir, review_root.as_path()]
        .iter()
        .filter_map(|p| crate::fsutil::resolve(p))
        .collect();
    if input.is_dir() && crate::fsutil::resolve(input).is_some_and(|i| exclude.contains(&i)) {
        return Err(crate::error::InvalidSetting::Path {
            path: outdir.to_path_buf(),
            why: "the output folder is the input folder: outputs would sit among (and be taken for) inputs; choose another -o (a folder inside the input folder is fine: it is left out of the inputs)".into(),
        }
        .into());
    }
    let mut items = collect_inputs(input, &exclude)?;
    if let Some(sh) = opts.shard {
        items.retain(|it| sh.contains(&it.rel.to_string_lossy().replace('\\', "/")));
    }
    let plans: Vec<Planned> = items
        .iter()
        .map(|it| {
            let output = output_for(outdir, it);
            let mut redact = opts.redact.clone();
            let sub = sanitize_rel(&it.rel)
                .and_then(|r| r.parent().map(Path::to_path_buf))
                .unwrap_or_default();
            redact.review_dir = Some(review_root.join(sub));
            let outputs = outputs_of(it, &output, &redact, opts.highlights.is_some());
            Planned {
                output,
                redact,
                outputs,
                conflict: None,
            }
        })
        .collect();
    let clashes = conflicts(
        &items,
        &plans.iter().map(|p| p.outputs.clone()).collect::<Vec<_>>(),
    );
    let plans: Vec<Planned> = plans
        .into_iter()
        .zip(clashes)
        .map(|(p, conflict)| Planned { conflict, ..p })
        .collect();
    let dirs = {
        let mut d = crate::fsutil::CreatedDirs::default();
        d.create(outdir)?;
        d
    };
    progress.total(items.len());
    let jobs = opts.jobs.min(items.len().max(1));
    let worker_job = job.with_threads(ThreadBudget::split(crate::job::cores(), jobs));
    let threads = opts.redact.threads_for(&worker_job).ort;
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, FileReport)>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for w in 0..jobs {
            let (items, plans, next, results, worker_job) =
                (&items, &plans, &next, &results, &worker_job);
            let builder = std::thread::Builder::new().name(format!("veil-worker-{w}"));
            let spawned = builder.spawn_scoped(s, move || {
                let mut dets: Option<Detectors> = None;
                while !worker_job.cancelled() {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(item) = items.get(i) else { break };
                    progress.start(w, item);
                    let cb = |d: u64, t: Option<u64>| progress.frames(w, d, t);
                    // A panic in one file (a bug, or a library's) fails that file, not the
                    // batch; its detectors are dropped, as their state is unknown.
                    let rep = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        process_one(item, &plans[i], opts, worker_job, &mut dets, &cb)
                    }))
                    .unwrap_or_else(|p| {
                        dets = None;
                        panicked_report(item, outdir, p)
                    });
                    progress.end(w, &rep);
                    results
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push((i, rep));
                }
            });
            if let Err(e) = spawned {
                tracing::error!("cannot start worker {w}: {e}");
            }
        }
    });
    let mut files = results.into_inner().unwrap_or_else(|e| e.into_inner());
    files.sort_by_key(|(i, _)| *i);
    let mut files: Vec<FileReport> = files.into_iter().map(|(_, r)| r).collect();
    // Files never started (interrupted batch) are listed too.
    if files.len() < items.len() {
        let seen: std::collections::HashSet<String> =
            files.iter().map(|f| f.input.clone()).collect();
        for it in &items {
            let s = it.input.display().to_string();
            if !seen.contains(&s) {
                files.push(FileReport {
                    input: s,
                    output: output_for(outdir, it).display().to_string(),
                    status: Status::Interrupted,
                    error: Some("not started".into()),
                    frames: 0,
                    seconds: 0.0,
                    fps: 0.0,
                });
            }
        }
    }
    let count = |st: Status| files.iter().filter(|f| f.status == st).count();
    let report = BatchReport {
        schema: BATCH_SCHEMA.into(),
        veil_version: env!("CARGO_PKG_VERSION").into(),
        created_unix: now_unix(),
        shard: opts.shard.map(|s| format!("{}/{}", s.index, s.count)),
        jobs,
        threads_per_job: threads,
        seconds: started.elapsed().as_secs_f64(),
        done: count(Status::Done),
        skipped: count(Status::Skipped),
        failed: count(Status::Failed),
        interrupted: count(Status::Interrupted),
        files,
    };
    let name = match opts.shard {
        Some(s) => format!("batch-report-{}-of-{}.json", s.index, s.count),
        None => "batch-report.json".into(),
    };
    let json =
        serde_json::to_vec_pretty(&report).map_err(|e| VeilError::serialize("batch report", e))?;
    write_atomic(&outdir.join(name), &json)?;
    dirs.keep();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn shard_parsing() {
        assert_eq!(Shard::parse("1/4").unwrap(), Shard { index: 1, count: 4 });
        for bad in ["4/4", "1", "a/b", "0/0", "-1/3"] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn shard_from_scheduler_env() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(Shard::from_env(env(&[])).unwrap(), None);
        assert_eq!(
            Shard::from_env(env(&[
                ("SLURM_ARRAY_TASK_ID", "3"),
                ("SLURM_ARRAY_TASK_COUNT", "4"),
                ("SLURM_ARRAY_TASK_MIN", "1")
            ]))
            .unwrap(),
            Some(Shard { index: 2, count: 4 })
        );
        assert_eq!(
            Shard::from_env(env(&[
                ("JOB_COMPLETION_INDEX", "0"),
                ("VEIL_SHARD_COUNT", "2")
            ]))
            .unwrap(),
            Some(Shard { index: 0, count: 2 })
        );
        assert!(Shard::from_env(env(&[("JOB_COMPLETION_INDEX", "0")])).is_err());
        assert!(Shard::from_env(env(&[
            ("SLURM_ARRAY_TASK_ID", "5"),
            ("SLURM_ARRAY_TASK_COUNT", "2")
        ]))
        .is_err());
    }

    #[test]
    fn hostile_relative_paths_stay_inside() {
        let out = Path::new("/out");
        for p in [
            "../../etc/passwd.mp4",
            "/abs/x.mp4",
            "a/../../b.mp4",
            "./c.avi",
        ] {
            let it = Item {
                input: PathBuf::from(p),
                rel: PathBuf::from(p),
            };
            let o = output_for(out, &it);
            assert!(o.starts_with(out), "{p} -> {}", o.display());
            assert!(!o.components().any(|c| c == Component::ParentDir), "{p}");
        }
        let it = Item {
            input: PathBuf::from("x/c.avi"),
            rel: PathBuf::from("x/c.avi"),
        };
        // The source extension stays in the name, so x/c.avi and x/c.mkv cannot collide.
        assert_eq!(output_for(out, &it), PathBuf::from("/out/x/c.avi.mp4"));
    }

    proptest! {
        /// N shards cover every key exactly once.
        #[test]
        fn shards_partition_inputs(keys in prop::collection::vec("[a-z/]{1,20}", 1..50), n in 1usize..8) {
            for k in &keys {
                let owners = (0..n).filter(|&i| Shard { index: i, count: n }.contains(k)).count();
                prop_assert_eq!(owners, 1);
            }
        }
    }
}
