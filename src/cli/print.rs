//! What the command line shows: progress bars on a terminal, and one-line summaries.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

/// A frame progress bar on a terminal (none when stderr is not one).
pub struct FrameBar(Option<ProgressBar>);

impl FrameBar {
    pub fn new() -> FrameBar {
        if !std::io::stderr().is_terminal() {
            return FrameBar(None);
        }
        let pb = ProgressBar::new(0);
        pb.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} frames {per_sec} ETA {eta}",
            )
            .expect("valid template"),
        );
        FrameBar(Some(pb))
    }

    /// Moves the bar to `done` of `total` frames.
    pub fn show(&self, done: u64, total: Option<u64>) {
        if let Some(pb) = &self.0 {
            if let Some(t) = total {
                pb.set_length(t.max(done));
            }
            pb.set_position(done);
        }
    }

    pub fn finish(self) {
        if let Some(pb) = self.0 {
            pb.finish_and_clear();
        }
    }
}

/// Terminal progress for a batch: one overall bar and one per active file.
pub struct BatchBars {
    multi: indicatif::MultiProgress,
    overall: ProgressBar,
    workers: Vec<ProgressBar>,
}

impl BatchBars {
    pub fn new(jobs: usize) -> Option<BatchBars> {
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

impl BatchBars {
    pub fn finish(&self) {
        self.overall.finish_and_clear();
        for w in &self.workers {
            w.finish_and_clear();
        }
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

/// The summary of `veil redact`, with where the time went when `verbose`.
pub fn redact_summary(s: &veil::RedactSummary, verbose: bool) {
    if verbose {
        let t = &s.timing;
        eprintln!(
            "veil: detect thread: faces {:.2} s, plates {:.2} s, following {:.2} s, redact {:.2} s, waiting for decode {:.2} s, for encode {:.2} s",
            t.face_detect_s, t.plate_detect_s, t.follow_s, t.redact_s, t.wait_decode_s, t.wait_encode_s
        );
        let p = &s.passes;
        eprintln!(
            "veil: passes on {} frames: {} face keyframes, {} small-face passes, {} face crops, {} plate samples ({} turned everywhere, {} pieces, tiles and regions, {} side by side)",
            p.frames, p.keys, p.hires, p.crops, p.plate_samples, p.all_turns, p.plate_tiles, p.side_by_side
        );
    }
    eprintln!(
        "veil: redacted {} frames ({} with redactions; {} face and {} plate tracks) in {:.1} s ({:.1} fps) -> {} (audit: {}{})",
        s.frames_out,
        s.redacted_frames,
        s.face_tracks,
        s.plate_tracks,
        s.seconds,
        s.fps,
        s.output.display(),
        s.audit.display(),
        s.review
            .as_deref()
            .map(|p| format!("; review page: {}", p.display()))
            .unwrap_or_default()
    );
    damage_notes(s);
}

/// Warns of what the audit records about the input's damage and timestamp jumps.
fn damage_notes(s: &veil::RedactSummary) {
    if s.damaged > 0 {
        eprintln!(
            "veil: warning: the input is damaged: {} damaged stretch(es) were skipped or concealed; they are listed under \"damaged\" in {}",
            s.damaged,
            s.audit.display()
        );
    }
    if s.discontinuities > 0 {
        eprintln!(
            "veil: note: the input's timestamps jump back {} time(s) (joined segments); each segment keeps its duration, see \"discontinuities\" in {}",
            s.discontinuities,
            s.audit.display()
        );
    }
    if s.whole_frames > 0 {
        eprintln!(
            "veil: note: {} frame(s) at the start or end of the video, smeared by fast camera motion, were redacted whole; see \"whole_frames\" in {}",
            s.whole_frames,
            s.audit.display()
        );
    }
}

/// The summary of `veil process`.
pub fn process_summary(s: &veil::process::ProcessSummary) {
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
    damage_notes(&s.redact);
}

/// The table of `veil models`.
pub fn models_table(r: &veil::models::ModelsReport) {
    println!(
        "onnxruntime {} ({}): {}",
        r.onnxruntime.version, r.onnxruntime.license, r.onnxruntime.status
    );
    println!(
        "{:<14} {:<6} {:<11} {:<8} {:<24} licence",
        "id", "task", "family", "default", "status"
    );
    for m in &r.models {
        println!(
            "{:<14} {:<6} {:<11} {:<8} {:<24} {}",
            m.id,
            format!("{:?}", m.task).to_lowercase(),
            format!("{:?}", m.family).to_lowercase(),
            if m.default { "yes" } else { "" },
            m.status,
            m.license
        );
        println!("{:<14} source: {}", "", m.source);
    }
}

/// The end of a batch: a table on a terminal, else the failures and one count line.
pub fn batch_summary(report: &veil::batch::BatchReport) {
    if std::io::stderr().is_terminal() {
        eprint!("{}", report.table());
        return;
    }
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
