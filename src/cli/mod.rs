//! One function per subcommand: build the library's options and job, call the library, show
//! the result. The work itself lives in the library.

pub mod args;
pub mod print;

use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::Context;
use args::{BatchArgs, Cmd, EvalArgs, EvalHighlightsArgs, HighlightsArgs, ProcessArgs, RedactArgs};
use print::{BatchBars, FrameBar};
use veil::accel::Device;
use veil::job::{Job, ThreadBudget};

/// Runs one subcommand; `cancel` is set by SIGINT and SIGTERM.
pub fn run(cmd: Cmd, verbose: bool, cancel: &Arc<AtomicBool>) -> anyhow::Result<ExitCode> {
    match cmd {
        Cmd::Redact(a) => redact(a, verbose, cancel),
        Cmd::Models { json } => models(json),
        Cmd::Batch(a) => batch(a, cancel),
        Cmd::Highlights(a) => highlights(a, cancel),
        Cmd::Process(a) => process(a, cancel),
        Cmd::EvalHighlights(a) => eval_highlights(a, cancel),
        Cmd::Eval(a) => eval(a, cancel),
    }
}

/// A job on the default device with all cores, for the commands without `--device`.
fn default_job(cancel: &Arc<AtomicBool>) -> Job {
    let mut job = Job::new(Device::default_for_build(), ThreadBudget::for_machine(1));
    job.cancel = cancel.clone();
    job
}

fn redact(a: RedactArgs, verbose: bool, cancel: &Arc<AtomicBool>) -> anyhow::Result<ExitCode> {
    let mut opts = a.opts.to_options();
    let job = a.opts.job(cancel);
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
        let fresh_opts = opts.clone();
        let settings = |fps, size| fresh_opts.settings_value(fps, size, &job);
        let fresh = fresh_opts.fresh_run(&settings)?;
        let plan =
            veil::rerender::plan(&a.input, &a.output, path, a.detections.as_deref(), &fresh)?;
        opts.encode
            .audio_edits
            .extend(plan.record.audio.iter().cloned());
        opts.edits = Some(Arc::new(plan));
    }
    let bar = FrameBar::new();
    let cb = |done: u64, total: Option<u64>| bar.show(done, total);
    let summary = veil::redact_file(&a.input, &a.output, &opts, &job, Some(&cb))?;
    bar.finish();
    if a.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print::redact_summary(&summary, verbose);
    }
    Ok(ExitCode::SUCCESS)
}

fn models(json: bool) -> anyhow::Result<ExitCode> {
    let report = veil::models::ModelsReport::new()?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print::models_table(&report);
    }
    Ok(if report.all_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn batch(a: BatchArgs, cancel: &Arc<AtomicBool>) -> anyhow::Result<ExitCode> {
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
    let job = a.opts.job(cancel);
    let bars = BatchBars::new(opts.jobs);
    let report = match &bars {
        Some(b) => veil::batch::run_batch(&a.input, &a.output, &opts, &job, b)?,
        None => veil::batch::run_batch(&a.input, &a.output, &opts, &job, &())?,
    };
    if let Some(b) = bars {
        b.finish();
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    print::batch_summary(&report);
    Ok(if report.interrupted > 0 {
        ExitCode::from(130)
    } else if report.failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn highlights(a: HighlightsArgs, cancel: &Arc<AtomicBool>) -> anyhow::Result<ExitCode> {
    let hopts = a.hl.to_options()?;
    let bar = FrameBar::new();
    let cb = |done: u64, total: Option<u64>| bar.show(done, total);
    let job = default_job(cancel);
    let (analysis, names) =
        veil::highlights::highlights_file(&a.input, &a.output, &hopts, &job, Some(&cb))?;
    bar.finish();
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

fn process(a: ProcessArgs, cancel: &Arc<AtomicBool>) -> anyhow::Result<ExitCode> {
    let hopts = a.hl.to_options()?;
    let opts = a.opts.to_options();
    let job = a.opts.job(cancel);
    let bar = FrameBar::new();
    let cb = |done: u64, total: Option<u64>| bar.show(done, total);
    let s = veil::process::process_file(&a.input, &a.output, &opts, &hopts, &job, Some(&cb))?;
    bar.finish();
    if a.json {
        println!("{}", serde_json::to_string_pretty(&s)?);
    } else {
        print::process_summary(&s);
    }
    Ok(ExitCode::SUCCESS)
}

fn eval_highlights(a: EvalHighlightsArgs, cancel: &Arc<AtomicBool>) -> anyhow::Result<ExitCode> {
    let hopts = a.hl.to_options()?;
    let r = veil::highlights::eval::run(&a.dir, &hopts, a.tolerance, &default_job(cancel))
        .with_context(|| format!("highlight evaluation on {} failed", a.dir.display()))?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        print!("{}", veil::highlights::eval::summary(&r));
    }
    Ok(ExitCode::SUCCESS)
}

fn eval(a: EvalArgs, cancel: &Arc<AtomicBool>) -> anyhow::Result<ExitCode> {
    let opts = a.opts.to_options();
    let report = veil::eval::run_dataset(
        &a.data,
        a.out.as_deref(),
        a.only.as_deref(),
        a.redacted_dir.as_deref(),
        &opts,
        &a.opts.job(cancel),
    )
    .with_context(|| format!("evaluation on {} failed", a.data.display()))?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.table());
    }
    Ok(ExitCode::SUCCESS)
}
