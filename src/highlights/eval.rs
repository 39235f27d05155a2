//! Scores highlights against clips with known event times (`index.json` as written by
//! `scripts/make-event-clips.sh`): event recall at an onset tolerance, false alarms per hour
//! on calm clips, and onset error.

use std::path::Path;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::{analyze_file, HighlightOptions, Kind};
use crate::error::{Result, VeilError};
use crate::job::Job;

#[derive(Debug, Deserialize)]
pub struct Index {
    pub clips: Vec<ClipTruth>,
}

#[derive(Debug, Deserialize)]
pub struct ClipTruth {
    pub file: String,
    #[serde(default)]
    pub calm: bool,
    #[serde(default)]
    pub events: Vec<EventTruth>,
}

#[derive(Debug, Deserialize, Clone)]
pub struct EventTruth {
    pub kind: String,
    pub onset: f64,
    #[serde(default)]
    pub detail: Option<String>,
}

#[derive(Debug, Serialize, Clone)]
pub struct EventResult {
    pub clip: String,
    pub kind: String,
    pub detail: Option<String>,
    pub onset: f64,
    pub found: bool,
    /// The matched highlight's kind (or one of its co-occurring kinds) equals the event's.
    pub kind_match: bool,
    pub onset_error_s: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct ClipResult {
    pub clip: String,
    pub calm: bool,
    pub duration_s: f64,
    pub highlights: usize,
    pub false_alarms: usize,
    pub false_alarm_kinds: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub tolerance_s: f64,
    pub events: usize,
    pub found: usize,
    pub recall: f64,
    pub kind_accuracy: f64,
    pub median_onset_error_s: Option<f64>,
    pub calm_hours: f64,
    pub calm_false_alarms: usize,
    pub false_alarms_per_hour: f64,
    pub event_clip_false_alarms: usize,
    pub per_kind: Vec<(String, usize, usize)>,
    pub clips: Vec<ClipResult>,
    pub event_results: Vec<EventResult>,
}

/// Matches a clip's highlights to its known events: the nearest unused highlight whose onset
/// is within `tolerance` of each event; the highlights left over are false alarms.
fn score_clip(
    c: &ClipTruth,
    a: &super::Analysis,
    tolerance: f64,
) -> (ClipResult, Vec<EventResult>) {
    let mut used = vec![false; a.highlights.len()];
    let mut evs = Vec::new();
    for e in &c.events {
        // The nearest unused highlight whose onset is within the tolerance.
        let best = a
            .highlights
            .iter()
            .enumerate()
            .filter(|(i, h)| !used[*i] && (h.onset - e.onset).abs() <= tolerance)
            .min_by(|x, y| {
                (x.1.onset - e.onset)
                    .abs()
                    .total_cmp(&(y.1.onset - e.onset).abs())
            });
        let (found, kind_match, err) = match best {
            Some((i, h)) => {
                used[i] = true;
                let k = Kind::parse(&e.kind);
                let km = k.is_some_and(|k| h.kind == k || h.also.contains(&k));
                (true, km, Some(h.onset - e.onset))
            }
            None => (false, false, None),
        };
        evs.push(EventResult {
            clip: c.file.clone(),
            kind: e.kind.clone(),
            detail: e.detail.clone(),
            onset: e.onset,
            found,
            kind_match,
            onset_error_s: err,
        });
    }
    let fa: Vec<String> = a
        .highlights
        .iter()
        .zip(&used)
        .filter(|(_, u)| !**u)
        .map(|(h, _)| format!("{}@{:.0}s", h.kind.name(), h.onset))
        .collect();
    (
        ClipResult {
            clip: c.file.clone(),
            calm: c.calm,
            duration_s: a.duration,
            highlights: a.highlights.len(),
            false_alarms: fa.len(),
            false_alarm_kinds: fa,
        },
        evs,
    )
}

/// Runs highlights on every clip of `dir/index.json` (one clip per core, on a pool of its
/// own) and scores them.
pub fn run(dir: &Path, opts: &HighlightOptions, tolerance: f64, job: &Job) -> Result<Report> {
    opts.validate()?;
    let idx_path = dir.join("index.json");
    let text = std::fs::read_to_string(&idx_path)
        .map_err(|e| VeilError::io("cannot read the event index", &idx_path, e))?;
    let index: Index = serde_json::from_str(&text).map_err(|e| {
        VeilError::setting(
            "DIR",
            format!("{}: not an event index: {e}", idx_path.display()),
        )
    })?;
    let workers = crate::job::cores();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(workers)
        .thread_name(|i| format!("veil-eval-{i}"))
        .build()
        .map_err(|e| VeilError::Internal(format!("cannot start the evaluation pool: {e}")))?;
    let clip_job = job.with_threads(crate::job::ThreadBudget::split(workers, workers));
    let results: Vec<Result<(ClipResult, Vec<EventResult>)>> = pool.install(|| {
        index
            .clips
            .par_iter()
            .map(|c| {
                let a = analyze_file(&dir.join(&c.file), opts, &clip_job, None)?;
                Ok(score_clip(c, &a, tolerance))
            })
            .collect()
    });
    let mut clips = Vec::new();
    let mut event_results = Vec::new();
    for r in results {
        let (c, e) = r?;
        clips.push(c);
        event_results.extend(e);
    }
    let events = event_results.len();
    let found = event_results.iter().filter(|e| e.found).count();
    let kind_ok = event_results.iter().filter(|e| e.kind_match).count();
    let mut errs: Vec<f64> = event_results
        .iter()
        .filter_map(|e| e.onset_error_s.map(f64::abs))
        .collect();
    errs.sort_by(f64::total_cmp);
    let calm_hours: f64 = clips
        .iter()
        .filter(|c| c.calm)
        .map(|c| c.duration_s)
        .sum::<f64>()
        / 3600.0;
    let calm_fa: usize = clips
        .iter()
        .filter(|c| c.calm)
        .map(|c| c.false_alarms)
        .sum();
    let ev_fa: usize = clips
        .iter()
        .filter(|c| !c.calm)
        .map(|c| c.false_alarms)
        .sum();
    let mut kinds: Vec<String> = event_results.iter().map(|e| e.kind.clone()).collect();
    kinds.sort();
    kinds.dedup();
    let per_kind = kinds
        .into_iter()
        .map(|k| {
            let n = event_results.iter().filter(|e| e.kind == k).count();
            let f = event_results
                .iter()
                .filter(|e| e.kind == k && e.found)
                .count();
            (k, f, n)
        })
        .collect();
    Ok(Report {
        tolerance_s: tolerance,
        events,
        found,
        recall: if events > 0 {
            found as f64 / events as f64
        } else {
            0.0
        },
        kind_accuracy: if found > 0 {
            kind_ok as f64 / found as f64
        } else {
            0.0
        },
        median_onset_error_s: errs.get(errs.len() / 2).copied(),
        calm_hours,
        calm_false_alarms: calm_fa,
        false_alarms_per_hour: if calm_hours > 0.0 {
            calm_fa as f64 / calm_hours
        } else {
            0.0
        },
        event_clip_false_alarms: ev_fa,
        per_kind,
        clips,
        event_results,
    })
}

/// The human-readable summary `veil eval-highlights` prints.
pub fn summary(r: &Report) -> String {
    let mut s = String::new();
    for e in &r.event_results {
        s.push_str(&format!(
            "  {:<14} {:<13} {:<9} onset {:>6.1}s  {}\n",
            e.clip,
            e.kind,
            e.detail.as_deref().unwrap_or(""),
            e.onset,
            match e.onset_error_s {
                Some(d) => format!(
                    "found ({d:+.1}s){}",
                    if e.kind_match { "" } else { ", other kind" }
                ),
                None => "MISSED".into(),
            }
        ));
    }
    for c in r.clips.iter().filter(|c| c.false_alarms > 0) {
        s.push_str(&format!(
            "  {:<14} false alarms: {}\n",
            c.clip,
            c.false_alarm_kinds.join(", ")
        ));
    }
    for (k, f, n) in &r.per_kind {
        s.push_str(&format!("kind {k}: {f}/{n}\n"));
    }
    s.push_str(&format!(
        "event recall (onset within ±{:.0} s): {}/{} = {:.3}\n",
        r.tolerance_s, r.found, r.events, r.recall
    ));
    s.push_str(&format!(
        "kind accuracy of found events: {:.3}\n",
        r.kind_accuracy
    ));
    s.push_str(&format!(
        "median onset error: {}\n",
        r.median_onset_error_s
            .map(|v| format!("{v:.2} s"))
            .unwrap_or_else(|| "n/a".into())
    ));
    if r.calm_hours > 0.0 {
        s.push_str(&format!(
            "false alarms on calm clips: {} in {:.2} h = {:.2}/h\n",
            r.calm_false_alarms, r.calm_hours, r.false_alarms_per_hour
        ));
    } else {
        s.push_str("false alarms on calm clips: no calm clips in this set\n");
    }
    s.push_str(&format!(
        "unmatched highlights on event clips: {}\n",
        r.event_clip_false_alarms
    ));
    s
}
