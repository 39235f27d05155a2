//! veil: redaction and escalation highlights for police body-worn camera footage.
//!
//! The redaction path, stage by stage (see ARCHITECTURE.md): [`decode`] → [`detect`] →
//! [`track`] → [`follow`] → [`redact`] → [`encode`], run by [`pipeline`] with the settings of
//! [`options`] inside a [`job`], and an [`audit`] record beside every output. Highlights
//! ([`highlights`]) are a second consumer of the decoded frames and audio.

pub mod accel;
pub mod audit;
pub mod batch;
pub mod decode;
pub mod detect;
pub mod edits;
pub mod encode;
pub mod error;
pub mod eval;
pub mod follow;
pub mod fsutil;
pub mod highlights;
pub mod html;
pub mod job;
pub mod models;
pub mod motion;
pub mod options;
pub mod paths;
pub mod pipeline;
pub mod process;
pub mod progress;
pub mod redact;
pub mod rerender;
pub mod review;
pub mod runtime;
pub mod schedule;
pub mod track;
pub mod util;

pub use error::{Result, VeilError};
pub use job::Job;
pub use options::RedactOptions;
pub use pipeline::{redact_file, RedactSummary};
