//! veil: redaction and escalation highlights for police body-worn camera footage.
//!
//! Stages (see ARCHITECTURE.md): decode ([`video`]) → detect ([`detect`]) → track ([`track`])
//! → redact ([`redact`]) → encode ([`video`]), run by [`pipeline`], with an audit record
//! ([`audit`]) beside every output.

pub mod accel;
pub mod audit;
pub mod batch;
pub mod cancel;
pub mod detect;
pub mod edits;
pub mod error;
pub mod eval;
pub mod follow;
pub mod highlights;
pub mod image_io;
pub mod models;
pub mod paths;
pub mod pipeline;
pub mod process;
pub mod redact;
pub mod review;
pub mod runtime;
pub mod track;
pub mod util;
pub mod video;

pub use error::{Result, VeilError};
pub use pipeline::{redact_file, RedactOptions, RedactSummary};
