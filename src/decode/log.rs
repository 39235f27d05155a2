//! FFmpeg's log, watched: a demuxer that meets damaged data (a broken Matroska cluster, a
//! corrupt MPEG-TS packet) often says so only in its log and then skips ahead, so the packets
//! lost never surface as an error. The decode loop registers its demuxer here and treats the
//! errors logged for it as damage, under the run's damage policy.

use std::collections::HashMap;
use std::ffi::CStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

use ffmpeg_next::ffi;

/// Errors logged per watched context (keyed by the context's address).
fn watched() -> &'static Mutex<HashMap<usize, Vec<String>>> {
    static W: OnceLock<Mutex<HashMap<usize, Vec<String>>>> = OnceLock::new();
    W.get_or_init(Default::default)
}

/// Whether FFmpeg's messages are also printed (`VEIL_FFMPEG_LOG`).
static PRINT: AtomicBool = AtomicBool::new(false);

unsafe extern "C" fn on_log(
    ptr: *mut libc::c_void,
    level: libc::c_int,
    fmt: *const libc::c_char,
    vl: *mut ffi::__va_list_tag,
) {
    let print = PRINT.load(Ordering::Relaxed);
    if level > ffi::AV_LOG_ERROR && !(print && level <= ffi::AV_LOG_INFO) {
        return;
    }
    let mut line = [0 as libc::c_char; 1024];
    let mut prefix: libc::c_int = 1;
    // SAFETY: FFmpeg hands us its own format string and argument list; the line buffer is
    // ours and its size is passed. The list is read once, here.
    unsafe {
        ffi::av_log_format_line2(
            ptr,
            level,
            fmt,
            vl,
            line.as_mut_ptr(),
            line.len() as _,
            &mut prefix,
        );
    }
    // SAFETY: av_log_format_line2 always NUL-terminates within the buffer.
    let text = unsafe { CStr::from_ptr(line.as_ptr()) }
        .to_string_lossy()
        .trim()
        .to_string();
    if print {
        eprintln!("{text}");
    }
    if level <= ffi::AV_LOG_ERROR {
        if let Ok(mut w) = watched().lock() {
            if let Some(v) = w.get_mut(&(ptr as usize)) {
                if v.len() < 16 {
                    v.push(tidy(&text));
                }
            }
        }
    }
}

/// `[matroska,webm @ 0x55d0] Element exceeds...` as `matroska,webm: Element exceeds...`: the
/// address means nothing to a reader.
fn tidy(line: &str) -> String {
    let Some(rest) = line.strip_prefix('[') else {
        return line.to_string();
    };
    match rest.split_once("] ") {
        Some((who, msg)) => {
            let who = who.split(" @ ").next().unwrap_or(who);
            format!("{who}: {msg}")
        }
        None => line.to_string(),
    }
}

/// Routes FFmpeg's log through [`on_log`] (once, at start-up).
pub(super) fn install(print: bool) {
    PRINT.store(print, Ordering::Relaxed);
    // SAFETY: sets FFmpeg's global log callback to a function that is valid for the whole run.
    unsafe {
        ffi::av_log_set_level(if print {
            ffi::AV_LOG_INFO
        } else {
            ffi::AV_LOG_ERROR
        });
        ffi::av_log_set_callback(Some(on_log));
    }
}

/// The errors FFmpeg logs for one context, while this lives.
pub struct Watch {
    key: usize,
}

impl Watch {
    /// Watches the context at `ptr` (a demuxer's `AVFormatContext`).
    pub fn new(ptr: *const libc::c_void) -> Watch {
        let key = ptr as usize;
        if let Ok(mut w) = watched().lock() {
            w.insert(key, Vec::new());
        }
        Watch { key }
    }

    /// The errors logged since the last call.
    pub fn take(&self) -> Vec<String> {
        watched()
            .lock()
            .ok()
            .and_then(|mut w| w.get_mut(&self.key).map(std::mem::take))
            .unwrap_or_default()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if let Ok(mut w) = watched().lock() {
            w.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn log_lines_lose_their_addresses() {
        assert_eq!(
            super::tidy("[matroska,webm @ 0x55d0c0] Element at 0x1 ends past its parent"),
            "matroska,webm: Element at 0x1 ends past its parent"
        );
        assert_eq!(super::tidy("plain line"), "plain line");
        assert_eq!(super::tidy("[unclosed"), "[unclosed");
    }
}
