//! The context one run works in: its cancel flag, the device its models run on, and its share
//! of the machine's cores. Nothing here is process-wide, so a library caller can run several
//! jobs side by side and stop one without stopping the others.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use serde::Serialize;

use crate::accel::Device;
use crate::error::{InvalidSetting, Result, VeilError};

/// Threads one job may use, per stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ThreadBudget {
    /// ONNX Runtime intra-op threads per model.
    pub ort: usize,
    /// x264 threads (frame threads get two more: see `encode::x264_threads`).
    pub x264: usize,
    /// FFmpeg frame-decoding threads.
    pub decode: usize,
}

impl ThreadBudget {
    /// The share of `cores` each of `jobs` concurrent jobs gets. Inference and x264 both take
    /// the job's cores: their threads do not spin, and with detection on keyframes only the
    /// encoder is busy most of the time (on 2 cores, x264 on 2 threads instead of 1 took
    /// `veil redact fixtures/face_720p.mp4` from 5.9 to 5.1 s). Decoding more than 4 threads
    /// wide gains nothing at these frame rates.
    pub fn split(cores: usize, jobs: usize) -> ThreadBudget {
        let per = (cores.max(1) / jobs.max(1)).max(1);
        ThreadBudget {
            ort: per,
            x264: per,
            decode: per.min(4),
        }
    }

    /// This machine's cores shared among `jobs` jobs.
    pub fn for_machine(jobs: usize) -> ThreadBudget {
        Self::split(cores(), jobs)
    }

    /// The budget with inference (and decoding) held to `threads`, as `--threads` asks.
    pub fn with_threads(self, threads: Option<usize>) -> ThreadBudget {
        match threads {
            Some(t) => ThreadBudget {
                ort: t.max(1),
                decode: t.clamp(1, 4),
                ..self
            },
            None => self,
        }
    }
}

/// The machine's cores (the only caller of `available_parallelism`).
pub fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
}

/// Everything a run needs besides its settings.
#[derive(Debug, Clone)]
pub struct Job {
    /// Set to stop the run at the next frame; it then fails with `Interrupted` and leaves
    /// nothing behind.
    pub cancel: Arc<AtomicBool>,
    /// Where the models run.
    pub device: Device,
    pub threads: ThreadBudget,
}

impl Default for Job {
    fn default() -> Self {
        Job::new(Device::default_for_build(), ThreadBudget::for_machine(1))
    }
}

impl Job {
    pub fn new(device: Device, threads: ThreadBudget) -> Job {
        Job {
            cancel: Arc::new(AtomicBool::new(false)),
            device,
            threads,
        }
    }

    /// A job sharing this one's cancel flag and device, with another thread budget (a batch
    /// worker).
    pub fn with_threads(&self, threads: ThreadBudget) -> Job {
        Job {
            threads,
            ..self.clone()
        }
    }

    pub fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    /// `Err(Interrupted)` once the job was asked to stop.
    pub fn check(&self) -> Result<()> {
        if self.cancelled() {
            Err(VeilError::Interrupted)
        } else {
            Ok(())
        }
    }

    pub fn validate(&self) -> Result<()> {
        for (flag, v) in [
            ("--threads", self.threads.ort),
            ("x264 threads", self.threads.x264),
            ("decode threads", self.threads.decode),
        ] {
            if v == 0 || v > 256 {
                return Err(InvalidSetting::out_of_range(flag, v, "1..256").into());
            }
        }
        Ok(())
    }
}

/// Frames of at least this many pixels (3840x2160 less 10%) run in low-memory mode.
pub const LOW_MEMORY_PIXELS: usize = 3840 * 2160 * 9 / 10;

/// Whether frames of `w`x`h` are large enough for the low-memory settings:
/// - glibc's malloc serves blocks of 1 MiB and more with their own mappings, returned to the
///   system when freed, instead of letting its dynamic threshold grow to 32 MiB and keeping
///   freed frame-sized blocks in fragmented per-thread heaps ([`LowMemoryGuard`]);
/// - each model run ends by shrinking ONNX Runtime's CPU arena back to its first chunk
///   (`memory.enable_memory_arena_shrinkage`), instead of keeping the largest extension
///   (167 MiB for the 1280-px face pass on a 4K frame);
/// - frames are decoded on one thread, and x264 looks ahead 3 frames, not 10.
///
/// Measured on a 4 s 4K clip: peak RSS from 1175 to 1016 MiB (`scripts/bench_e2e.py
/// --memory`), for about 10-14% more time; so it is not used below 4K.
pub fn is_large_frame(w: usize, h: usize) -> bool {
    w.saturating_mul(h) >= LOW_MEMORY_PIXELS
}

/// Jobs in low-memory mode right now (the allocator setting is process-wide by nature).
static LOW_MEMORY_JOBS: AtomicUsize = AtomicUsize::new(0);

/// The allocator's share of low-memory mode, for as long as the guard lives: glibc's mmap
/// threshold held at 1 MiB while any job needs it, and raised to 32 MiB (where glibc's own
/// dynamic threshold ends up) when the last one ends, so a 4K file in a batch no longer slows
/// every later file.
pub struct LowMemoryGuard {
    on: bool,
}

impl LowMemoryGuard {
    pub fn new(on: bool) -> LowMemoryGuard {
        if on && LOW_MEMORY_JOBS.fetch_add(1, Ordering::SeqCst) == 0 {
            set_mmap_threshold(1 << 20);
            tracing::debug!("low-memory mode on");
        }
        LowMemoryGuard { on }
    }

    pub fn is_on(&self) -> bool {
        self.on
    }
}

impl Drop for LowMemoryGuard {
    fn drop(&mut self) {
        if self.on && LOW_MEMORY_JOBS.fetch_sub(1, Ordering::SeqCst) == 1 {
            set_mmap_threshold(32 << 20);
            tracing::debug!("low-memory mode off");
        }
    }
}

fn set_mmap_threshold(bytes: i32) {
    // SAFETY: mallopt only changes allocator parameters; M_MMAP_THRESHOLD takes a size.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, bytes);
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = bytes;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_budget_shares_the_cores_among_jobs() {
        let b = ThreadBudget::split(2, 1);
        assert_eq!((b.ort, b.x264, b.decode), (2, 2, 2));
        let b = ThreadBudget::split(16, 1);
        assert_eq!((b.ort, b.x264, b.decode), (16, 16, 4));
        let b = ThreadBudget::split(16, 4);
        assert_eq!((b.ort, b.x264, b.decode), (4, 4, 4));
        // More jobs than cores: everyone still gets one thread per stage.
        let b = ThreadBudget::split(2, 8);
        assert_eq!((b.ort, b.x264, b.decode), (1, 1, 1));
        let b = ThreadBudget::split(8, 1).with_threads(Some(3));
        assert_eq!((b.ort, b.x264, b.decode), (3, 8, 3));
    }

    #[test]
    fn low_memory_is_for_4k_and_larger() {
        assert!(!is_large_frame(1920, 1080));
        assert!(!is_large_frame(2560, 1920));
        assert!(is_large_frame(3840, 2160));
        assert!(is_large_frame(4096, 2160));
        assert!(!is_large_frame(usize::MAX, 0));
    }

    #[test]
    fn cancelling_one_job_leaves_another_running() {
        let a = Job::default();
        let b = Job::default();
        let a2 = a.with_threads(ThreadBudget::split(4, 2));
        a.cancel.store(true, Ordering::Relaxed);
        assert!(a2.check().is_err());
        assert!(b.check().is_ok());
    }
}
