//! Progress reporting from long loops to whoever shows it (a terminal bar, a batch report).

/// Called with (frames done, expected total if known).
pub type ProgressFn<'a> = &'a (dyn Fn(u64, Option<u64>) + Sync);
