//! Cancellation by SIGINT/SIGTERM: an atomic flag that long loops check, so temp files are
//! removed and nothing half-written is left behind.

use std::sync::atomic::{AtomicBool, Ordering};

static CANCELLED: AtomicBool = AtomicBool::new(false);

pub fn requested() -> bool {
    CANCELLED.load(Ordering::Relaxed)
}

pub fn request() {
    CANCELLED.store(true, Ordering::Relaxed);
}

extern "C" fn on_signal(_: libc::c_int) {
    CANCELLED.store(true, Ordering::Relaxed);
}

/// Installs SIGINT and SIGTERM handlers that set the flag (a second signal is not special: the
/// loops stop within one frame).
pub fn install_handlers() {
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
        // A file-size limit (or quota) must surface as a write error we can clean up after,
        // not kill the process with a half-written temp file.
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
}
