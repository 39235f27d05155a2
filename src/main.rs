//! The `veil` command line: parses arguments, calls the library, maps errors to exit codes.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use veil::redact::{Shape, Style};
use veil::{RedactOptions, VeilError};

#[derive(Parser)]
#[command(name = "veil", version, about = "Redact faces and licence plates in body-worn camera footage", long_about = None)]
struct Cli {
    /// Log more (repeat for debug output).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Redact every face and plate in a video or image, with an audit record beside the output.
    Redact(RedactArgs),
    /// List the models in the manifest, their licences and whether they are installed.
    Models {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Measure redaction recall on labelled media (labels/*.gt.json as in shared/data).
    Eval(EvalArgs),
    /// Redact a folder (recursively) or a manifest of paths into OUTDIR, resumably, in parallel.
    Batch(BatchArgs),
    /// Find escalation highlights (shouting, bangs, struggle, running, rising tension) and
    /// write highlights.json, highlights.vtt and review.html into DIR.
    Highlights(HighlightsArgs),
    /// Redact and find highlights in one decode: DIR gets the redacted video, its audit
    /// record, highlights.json, highlights.vtt and review.html.
    Process(ProcessArgs),
    /// Score highlights on clips with known event times (an index.json as written by
    /// scripts/make-event-clips.sh).
    EvalHighlights(EvalHighlightsArgs),
}

#[derive(Args, Clone)]
struct HlArgs {
    /// 0..1: higher finds more moments (and more false alarms).
    #[arg(long, default_value_t = 0.5)]
    sensitivity: f32,
    /// Skip the voice-activity model (speech presence is then guessed from pitch).
    #[arg(long)]
    no_vad: bool,
    /// An extra ONNX signal, PATH:KIND[:CLASS]: a model taking 1 s of 16 kHz mono audio
    /// [1,16000] and returning scores [1,C]; column CLASS feeds highlights of KIND.
    #[arg(long)]
    signal_model: Option<String>,
}

impl HlArgs {
    fn to_options(&self) -> anyhow::Result<veil::highlights::HighlightOptions> {
        if !(0.0..=1.0).contains(&self.sensitivity) {
            return Err(VeilError::Config(format!(
                "--sensitivity must be between 0 and 1, got {}",
                self.sensitivity
            ))
            .into());
        }
        Ok(veil::highlights::HighlightOptions {
            sensitivity: self.sensitivity,
            threads: 1,
            vad: !self.no_vad,
            extra: self
                .signal_model
                .as_deref()
                .map(veil::highlights::extra::ExtraSignal::parse)
                .transpose()?,
        })
    }
}

#[derive(Args)]
struct HighlightsArgs {
    /// Input video.
    input: PathBuf,
    /// Output folder.
    #[arg(short, long)]
    output: PathBuf,
    #[command(flatten)]
    hl: HlArgs,
    /// Print highlights.json on stdout too.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct ProcessArgs {
    /// Input video.
    input: PathBuf,
    /// Output folder.
    #[arg(short, long)]
    output: PathBuf,
    #[command(flatten)]
    hl: HlArgs,
    #[command(flatten)]
    opts: OptArgs,
    /// Print a JSON summary on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct EvalHighlightsArgs {
    /// Folder holding index.json and the clips it names.
    dir: PathBuf,
    /// Onset tolerance in seconds.
    #[arg(long, default_value_t = 5.0)]
    tolerance: f64,
    #[command(flatten)]
    hl: HlArgs,
    /// Print JSON instead of a summary.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct BatchArgs {
    /// A folder of media (searched recursively) or a manifest file with one path per line.
    input: PathBuf,
    /// Output folder; inputs are mirrored under it.
    #[arg(short, long)]
    output: PathBuf,
    /// Files processed at once (default: one per core below 8 cores, else one per two cores).
    /// Cores are shared out among them.
    #[arg(long)]
    jobs: Option<usize>,
    /// Process only shard K of N (0-based), e.g. 0/4. Without it, Slurm array and Kubernetes
    /// Indexed Job variables are used when set.
    #[arg(long)]
    shard: Option<String>,
    /// Print the report JSON on stdout.
    #[arg(long)]
    json: bool,
    /// Redact only: no highlights or review page per video.
    #[arg(long)]
    no_highlights: bool,
    #[command(flatten)]
    hl: HlArgs,
    #[command(flatten)]
    opts: OptArgs,
}

/// Terminal progress for a batch: one overall bar and one per active file.
struct BatchBars {
    multi: indicatif::MultiProgress,
    overall: ProgressBar,
    workers: Vec<ProgressBar>,
}

impl BatchBars {
    fn new(jobs: usize) -> Option<BatchBars> {
        if !std::io::stderr().is_terminal() {
            return None;
        }
        let multi = indicatif::MultiProgress::new();
        let overall = multi.add(ProgressBar::new(0));
        overall.set_style(
            ProgressStyle::with_template(
                "files {wide_bar} {pos}/{len} [{elapsed_precise}] ETA {eta}",
            )
            .expect("valid template"),
        );
        let workers = (0..jobs)
            .map(|_| {
                let b = multi.add(ProgressBar::new(0));
                b.set_style(
                    ProgressStyle::with_template(
                        "  {msg:30!} {bar:30} {pos}/{len} frames {per_sec}",
                    )
                    .expect("valid template"),
                );
                b
            })
            .collect();
        Some(BatchBars {
            multi,
            overall,
            workers,
        })
    }
}

impl veil::batch::BatchProgress for BatchBars {
    fn total(&self, n: usize) {
        self.overall.set_length(n as u64);
    }
    fn start(&self, w: usize, item: &veil::batch::Item) {
        if let Some(b) = self.workers.get(w) {
            b.reset();
            b.set_message(item.rel.display().to_string());
        }
    }
    fn frames(&self, w: usize, done: u64, total: Option<u64>) {
        if let Some(b) = self.workers.get(w) {
            if let Some(t) = total {
                b.set_length(t.max(done));
            }
            b.set_position(done);
        }
    }
    fn end(&self, _w: usize, r: &veil::batch::FileReport) {
        self.overall.inc(1);
        if let Some(e) = &r.error {
            let _ = self.multi.println(format!("failed: {}: {e}", r.input));
        }
    }
}

#[derive(Args)]
struct RedactArgs {
    /// Input video (any container or codec FFmpeg reads) or image (jpg, png).
    input: PathBuf,
    /// Output file (.mp4, .mov, .mkv for video; .jpg, .png for images).
    #[arg(short, long)]
    output: PathBuf,
    #[command(flatten)]
    opts: OptArgs,
    /// Print a JSON summary on stdout.
    #[arg(long)]
    json: bool,
    /// Apply a reviewer's corrections (edits.json from the review page): tracks marked not
    /// sensitive, manual boxes, audio spans to mute or bleep.
    #[arg(long)]
    edits: Option<PathBuf>,
    /// The audit record whose detections `--edits` re-uses (default: OUTPUT.audit.json when it
    /// exists and describes this input; otherwise detection runs again).
    #[arg(long, requires = "edits")]
    detections: Option<PathBuf>,
    /// Mute START-END (seconds or [hh:]mm:ss), repeatable. Audio is then re-encoded.
    #[arg(long, value_name = "START-END")]
    mute: Vec<String>,
    /// Replace START-END with a 1 kHz tone, repeatable. Audio is then re-encoded.
    #[arg(long, value_name = "START-END")]
    bleep: Vec<String>,
}

#[derive(Args, Clone)]
struct OptArgs {
    /// Face detection threshold (lower finds more faces and more false positives).
    #[arg(long, default_value_t = 0.2)]
    thresh: f32,
    /// Plate detection threshold.
    #[arg(long, default_value_t = 0.2)]
    plate_thresh: f32,
    /// Redaction style.
    #[arg(long, value_enum, default_value_t = Style::Blur)]
    replacewith: Style,
    /// Shape of face masks (plates are always boxes).
    #[arg(long, value_enum, default_value_t = Shape::Ellipse)]
    shape: Shape,
    /// Grow every box by this factor before redaction.
    #[arg(long, default_value_t = 1.3)]
    mask_scale: f32,
    /// Do not look for licence plates.
    #[arg(long)]
    no_plates: bool,
    /// Face model: a CenterFace- or YOLO-format ONNX file instead of the built-in one.
    #[arg(long)]
    face_model: Option<PathBuf>,
    /// Plate model: a YOLO-format ONNX file (v5/v8/v11 export), or the id of a model in the
    /// manifest (`veil models`), instead of the default one.
    #[arg(long)]
    plate_model: Option<PathBuf>,
    /// Width faces are detected at on every frame.
    #[arg(long, default_value_t = 640)]
    detect_width: usize,
    /// Width of the extra face pass for small faces, run on frames over 1.5x the detect width
    /// (0 turns it off).
    #[arg(long, default_value_t = 1280)]
    hires_width: usize,
    /// Run the extra face pass every N frames.
    #[arg(long, default_value_t = 4)]
    hires_every: u32,
    /// Run the plate model every N frames; tracking covers the frames between
    /// (0: every 0.2 s of footage).
    #[arg(long, default_value_t = 0)]
    plate_every: u32,
    /// Tile size for the extra plate pass on frames over 1.5x this size (0 turns it off).
    #[arg(long, default_value_t = 960)]
    plate_tile: usize,
    /// The plate model also looks at each view turned by +/- this many degrees, for plates
    /// tilted by a rolling camera (0 turns it off; each turn costs one more model run).
    #[arg(long, default_value_t = 15.0)]
    plate_rotate: f32,
    /// Seconds a face or plate is followed by its appearance after its last detection, and
    /// before its first within the look-ahead window (0 turns following off).
    #[arg(long, default_value_t = 1.0)]
    follow: f32,
    /// Frames a track may go undetected and still be redacted through.
    #[arg(long, default_value_t = 12)]
    max_gap: u32,
    /// Frames redacted before a track's first detection.
    #[arg(long, default_value_t = 6)]
    extend_before: u32,
    /// Frames redacted after a track's last detection.
    #[arg(long, default_value_t = 6)]
    extend_after: u32,
    /// x264 constant rate factor (lower is better quality).
    #[arg(long, default_value_t = 18)]
    crf: u8,
    /// x264 preset.
    #[arg(long, default_value = "veryfast")]
    preset: String,
    /// Drop audio streams (they are copied bit-exact by default).
    #[arg(long)]
    no_audio: bool,
    /// Redact every frame that decodes and record undecodable spans, instead of failing.
    #[arg(long)]
    allow_damaged: bool,
    /// Threads for inference and decoding (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Where the models run: cuda needs a build with `--features cuda`; auto uses CUDA when it
    /// works and says so when it falls back (default: auto in CUDA builds, else cpu).
    #[arg(long, value_enum)]
    device: Option<veil::accel::Device>,
    /// NVDEC/NVENC video decode and encode (default: auto in CUDA builds, else none).
    #[arg(long, value_enum)]
    hwaccel: Option<veil::accel::Hwaccel>,
}

impl OptArgs {
    fn to_options(&self) -> RedactOptions {
        let mut o = RedactOptions {
            thresh: self.thresh,
            plate_thresh: self.plate_thresh,
            detect_width: self.detect_width,
            hires_width: self.hires_width,
            hires_every: self.hires_every,
            plates: !self.no_plates,
            plate_every: self.plate_every,
            plate_tile: self.plate_tile,
            plate_rotate: self.plate_rotate,
            follow_s: self.follow,
            face_model: self.face_model.clone(),
            plate_model: self.plate_model.clone(),
            allow_damaged: self.allow_damaged,
            ..RedactOptions::default()
        };
        o.track.max_gap = self.max_gap;
        o.track.extend_before = self.extend_before;
        o.track.extend_after = self.extend_after;
        o.redact.style = self.replacewith;
        o.redact.face_shape = self.shape;
        o.redact.mask_scale = self.mask_scale;
        o.encode.crf = self.crf;
        o.encode.preset = self.preset.clone();
        o.encode.keep_audio = !self.no_audio;
        if let Some(t) = self.threads {
            o.threads = t;
        }
        if let Some(d) = self.device {
            o.device = d;
        }
        if let Some(h) = self.hwaccel {
            o.encode.hwaccel = h;
        }
        o
    }
}

#[derive(Args)]
struct EvalArgs {
    /// Data root holding the media and a labels/ folder (e.g. ../shared/data).
    #[arg(long, env = "VEIL_DATA")]
    data: PathBuf,
    /// Where redacted outputs are written (default: a temp folder).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Only media whose path contains this string.
    #[arg(long)]
    only: Option<String>,
    /// Score these already-redacted files instead of running veil: a folder holding
    /// `<media file name>` outputs (for comparing other tools).
    #[arg(long)]
    redacted_dir: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    opts: OptArgs,
}

fn progress_bar(enabled: bool) -> Option<ProgressBar> {
    if !enabled || !std::io::stderr().is_terminal() {
        return None;
    }
    let pb = ProgressBar::new(0);
    pb.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} frames {per_sec} ETA {eta}",
        )
        .expect("valid template"),
    );
    Some(pb)
}

/// Moves a frame progress bar (when there is one) to `done` of `total`.
fn show_progress(pb: &Option<ProgressBar>, done: u64, total: Option<u64>) {
    if let Some(pb) = pb {
        if let Some(t) = total {
            pb.set_length(t.max(done));
        }
        pb.set_position(done);
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let verbose = cli.verbose;
    match cli.cmd {
        Cmd::Redact(a) => {
            let mut opts = a.opts.to_options();
            for (list, action) in [
                (&a.mute, veil::edits::AudioAction::Mute),
                (&a.bleep, veil::edits::AudioAction::Bleep),
            ] {
                for s in list {
                    opts.encode
                        .audio_edits
                        .push(veil::edits::parse_span(s, action)?);
                }
            }
            if let Some(path) = &a.edits {
                let edits = veil::edits::Edits::read(path)?;
                let audit = a
                    .detections
                    .clone()
                    .unwrap_or_else(|| veil::audit::audit_path(&a.output));
                let plan = veil::edits::EditPlan::build(&a.input, &edits, path, Some(&audit))?;
                if plan.replay.is_none() && a.detections.is_some() {
                    return Err(VeilError::Config(format!(
                        "{} does not describe {}",
                        audit.display(),
                        a.input.display()
                    ))
                    .into());
                }
                opts.encode.audio_edits.extend(edits.audio.iter().cloned());
                opts.edits = Some(std::sync::Arc::new(plan));
            }
            if !opts.encode.audio_edits.is_empty() && !opts.encode.keep_audio {
                return Err(VeilError::Config(
                    "--mute/--bleep and audio edits need the audio; drop --no-audio".into(),
                )
                .into());
            }
            let pb = progress_bar(true);
            let cb = |done: u64, total: Option<u64>| show_progress(&pb, done, total);
            let summary = veil::redact_file(&a.input, &a.output, &opts, Some(&cb))?;
            if let Some(pb) = pb {
                pb.finish_and_clear();
            }
            if a.json {
                println!("{}", serde_json::to_string_pretty(&summary)?);
            } else {
                if verbose > 0 {
                    let t = &summary.timing;
                    eprintln!(
                        "veil: detect thread: faces {:.2} s, plates {:.2} s, following {:.2} s, redact {:.2} s, waiting for decode {:.2} s, for encode {:.2} s",
                        t.face_detect_s, t.plate_detect_s, t.follow_s, t.redact_s, t.wait_decode_s, t.wait_encode_s
                    );
                }
                eprintln!(
                    "veil: redacted {} frames ({} with redactions; {} face and {} plate tracks) in {:.1} s ({:.1} fps) -> {} (audit: {}{})",
                    summary.frames_out,
                    summary.redacted_frames,
                    summary.face_tracks,
                    summary.plate_tracks,
                    summary.seconds,
                    summary.fps,
                    summary.output.display(),
                    summary.audit.display(),
                    summary
                        .review
                        .as_deref()
                        .map(|p| format!("; review page: {}", p.display()))
                        .unwrap_or_default()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Models { json } => {
            let manifest = veil::models::Manifest::builtin()?;
            let list = veil::models::list_status(&manifest);
            let ort = veil::runtime::environment()
                .map(|_| {
                    format!(
                        "ok ({})",
                        veil::runtime::loaded_library()
                            .map(|p| p.display().to_string())
                            .unwrap_or_default()
                    )
                })
                .unwrap_or_else(|e| format!("missing: {e}"));
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "onnxruntime": {"version": manifest.onnxruntime.version, "license": manifest.onnxruntime.license, "status": ort},
                        "models": list,
                    }))?
                );
            } else {
                println!(
                    "onnxruntime {} ({}): {}",
                    manifest.onnxruntime.version, manifest.onnxruntime.license, ort
                );
                println!(
                    "{:<12} {:<6} {:<11} {:<8} {:<24} licence",
                    "id", "task", "family", "default", "status"
                );
                for m in &list {
                    println!(
                        "{:<12} {:<6} {:<11} {:<8} {:<24} {}",
                        m.id,
                        format!("{:?}", m.task).to_lowercase(),
                        format!("{:?}", m.family).to_lowercase(),
                        if m.default { "yes" } else { "" },
                        m.status,
                        m.license
                    );
                    println!("{:<12} source: {}", "", m.source);
                }
            }
            let all_ok = list.iter().all(|m| m.status.starts_with("ok")) && ort.starts_with("ok");
            Ok(if all_ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Cmd::Batch(a) => {
            let shard = match &a.shard {
                Some(s) => Some(veil::batch::Shard::parse(s)?),
                None => veil::batch::Shard::from_env(|k| std::env::var(k).ok())?,
            };
            let opts = veil::batch::BatchOptions {
                jobs: a.jobs.unwrap_or_else(veil::batch::default_jobs),
                shard,
                redact: a.opts.to_options(),
                highlights: if a.no_highlights {
                    None
                } else {
                    Some(a.hl.to_options()?)
                },
            };
            let bars = BatchBars::new(opts.jobs);
            let report = match &bars {
                Some(b) => veil::batch::run_batch(&a.input, &a.output, &opts, b)?,
                None => veil::batch::run_batch(&a.input, &a.output, &opts, &())?,
            };
            if let Some(b) = bars {
                b.overall.finish_and_clear();
                for w in &b.workers {
                    w.finish_and_clear();
                }
            }
            if a.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            }
            if std::io::stderr().is_terminal() {
                eprint!("{}", report.table());
            } else {
                for f in report.files.iter().filter(|f| f.error.is_some()) {
                    eprintln!(
                        "veil: failed: {}: {}",
                        f.input,
                        f.error.as_deref().unwrap_or("")
                    );
                }
                eprintln!(
                    "veil: batch: {} done, {} skipped, {} failed, {} interrupted in {:.1} s",
                    report.done, report.skipped, report.failed, report.interrupted, report.seconds
                );
            }
            Ok(if report.interrupted > 0 {
                ExitCode::from(130)
            } else if report.failed > 0 {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        Cmd::Highlights(a) => {
            let hopts = a.hl.to_options()?;
            if a.input.is_file() && veil::pipeline::is_image(&a.input) {
                return Err(VeilError::Config(format!(
                    "{}: highlights need a video",
                    a.input.display()
                ))
                .into());
            }
            let pb = progress_bar(true);
            let cb = |done: u64, total: Option<u64>| show_progress(&pb, done, total);
            let analysis = veil::highlights::analyze_file(&a.input, &hopts, Some(&cb))?;
            if let Some(pb) = pb {
                pb.finish_and_clear();
            }
            std::fs::create_dir_all(&a.output)
                .with_context(|| format!("cannot create {}", a.output.display()))?;
            let names = veil::highlights::OutputNames::new(&a.output, "");
            let sha = veil::util::sha256_file(&a.input).ok();
            veil::highlights::output::write(
                &analysis,
                &names,
                &a.input,
                sha.as_deref(),
                Some(&a.input),
                None,
            )?;
            if a.json {
                print!("{}", std::fs::read_to_string(&names.json)?);
            }
            eprintln!(
                "veil: {} highlights in {:.0} s of footage -> {}, {}, {}",
                analysis.highlights.len(),
                analysis.duration,
                names.json.display(),
                names.vtt.display(),
                names.html.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Process(a) => {
            let hopts = a.hl.to_options()?;
            let opts = a.opts.to_options();
            let pb = progress_bar(true);
            let cb = |done: u64, total: Option<u64>| show_progress(&pb, done, total);
            let s = veil::process::process_file(&a.input, &a.output, &opts, &hopts, Some(&cb))?;
            if let Some(pb) = pb {
                pb.finish_and_clear();
            }
            if a.json {
                println!("{}", serde_json::to_string_pretty(&s)?);
            } else {
                eprintln!(
                    "veil: redacted {} frames ({} face and {} plate tracks) and found {} highlights in {:.1} s -> {} (audit: {}); highlights: {}; redaction review: {}",
                    s.redact.frames_out,
                    s.redact.face_tracks,
                    s.redact.plate_tracks,
                    s.highlights,
                    s.seconds,
                    s.redact.output.display(),
                    s.redact.audit.display(),
                    s.review_html.display(),
                    s.redact
                        .review
                        .as_deref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::EvalHighlights(a) => {
            let hopts = a.hl.to_options()?;
            let r = veil::highlights::eval::run(&a.dir, &hopts, a.tolerance)
                .with_context(|| format!("highlight evaluation on {} failed", a.dir.display()))?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                print!("{}", veil::highlights::eval::summary(&r));
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Eval(a) => {
            let opts = a.opts.to_options();
            let report = veil::eval::run_dataset(
                &a.data,
                a.out.as_deref(),
                a.only.as_deref(),
                a.redacted_dir.as_deref(),
                &opts,
            )
            .with_context(|| format!("evaluation on {} failed", a.data.display()))?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.table());
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let level = match cli.verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("VEIL_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level)),
        )
        .with_writer(std::io::stderr)
        .try_init();
    veil::cancel::install_handlers();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            // One line: the error chain joined, so scripts and people both get it whole.
            let msg = e
                .chain()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(": ");
            eprintln!("veil: error: {msg}");
            let code = match e.downcast_ref::<VeilError>() {
                Some(VeilError::Interrupted) => 130,
                Some(VeilError::Config(_)) => 2,
                _ => 1,
            };
            ExitCode::from(code)
        }
    }
}
