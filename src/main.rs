//! The `veil` command line: parses arguments, installs the signal flags, calls the library
//! (through `cli`), and maps errors to exit codes (`VeilError::exit_code`).

mod cli;

use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use clap::Parser;
use veil::VeilError;

fn main() -> ExitCode {
    let cli = cli::args::Cli::parse();
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
    let cancel = Arc::new(AtomicBool::new(false));
    // SIGINT and SIGTERM set the job's cancel flag: the loops stop within a frame and remove
    // their temp files. A file-size limit (or quota) must surface as a write error to clean up
    // after, not kill the process: SIGXFSZ gets a handler, so writes fail with EFBIG instead.
    let xfsz = Arc::new(AtomicBool::new(false));
    for (sig, flag) in [
        (signal_hook::consts::SIGINT, &cancel),
        (signal_hook::consts::SIGTERM, &cancel),
        (signal_hook::consts::SIGXFSZ, &xfsz),
    ] {
        if let Err(e) = signal_hook::flag::register(sig, flag.clone()) {
            eprintln!("veil: warning: cannot handle signal {sig}: {e}");
        }
    }
    match cli::run(cli.cmd, cli.verbose > 0, &cancel) {
        Ok(code) => code,
        Err(e) => {
            // One line: the error chain joined, so scripts and people both get it whole (a
            // cause already spelled out by the message above it is not repeated).
            let mut msg = String::new();
            for c in e.chain().map(|c| c.to_string()) {
                if msg.is_empty() {
                    msg = c;
                } else if !msg.contains(&c) {
                    msg = format!("{msg}: {c}");
                }
            }
            eprintln!("veil: error: {msg}");
            ExitCode::from(
                e.downcast_ref::<VeilError>()
                    .map_or(1, VeilError::exit_code),
            )
        }
    }
}
