//! The decode loop: demux, decode, convert to the working format. One loop for every caller
//! (redaction, highlights, evaluation), each choosing what damage means for it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use ffmpeg::{frame, Packet};
use ffmpeg_next as ffmpeg;

use super::{FormatConverter, Input};
use crate::error::{Result, Stage, VeilError};

/// What a damaged packet, an undecodable frame or a truncated file does to the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DamagePolicy {
    /// Stop with an error naming the frame (redaction by default: nothing unseen may pass).
    FailClosed,
    /// Go on, and report each damaged span as [`DecodeStatus::Damaged`] for the record
    /// (`--allow-damaged`).
    Record,
    /// Go on with a warning in the log (highlights, which are advisory).
    WarnAndSkip,
}

/// What [`Decoder::receive`] found.
pub enum DecodeStatus {
    /// A decoded frame in the working format; `corrupt` when the decoder concealed errors in
    /// it (only returned so under `Record` and `WarnAndSkip`).
    Frame {
        frame: frame::Video,
        pts: Option<i64>,
        corrupt: bool,
    },
    /// A packet of one of the other streams the caller asked for, unchanged.
    Packet(Packet),
    /// Data was lost here (only under `Record`).
    Damaged { pts: Option<i64>, reason: String },
    /// The end of the input.
    End,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Reading,
    Flushing,
    Done,
}

/// Decodes an [`Input`]'s video stream frame by frame.
pub struct Decoder {
    input: Input,
    policy: DamagePolicy,
    /// Other streams whose packets are handed through.
    streams: Vec<usize>,
    conv: Option<FormatConverter>,
    decoded: frame::Video,
    pkt: Packet,
    state: State,
    frames: u64,
    video_packets: u64,
    /// The timestamp of the last frame decoded, to place damage that has none of its own.
    last_pts: Option<i64>,
    cancel: Option<Arc<AtomicBool>>,
    /// The demuxer's logged errors (damage it skipped over).
    watch: super::log::Watch,
}

impl Decoder {
    /// Decodes `input`; with `to` set, frames come out in that pixel format.
    pub fn new(input: Input, policy: DamagePolicy, to: Option<ffmpeg::format::Pixel>) -> Self {
        // SAFETY: only the context's address is taken (as a key for its log messages).
        let ptr = unsafe { input.ictx.as_ptr() } as *const libc::c_void;
        let watch = super::log::Watch::new(ptr);
        Decoder {
            watch,
            input,
            policy,
            streams: Vec::new(),
            conv: to.map(FormatConverter::new),
            decoded: frame::Video::empty(),
            pkt: Packet::empty(),
            state: State::Reading,
            frames: 0,
            video_packets: 0,
            last_pts: None,
            cancel: None,
        }
    }

    /// Also hands through the packets of these streams.
    pub fn with_streams(mut self, streams: Vec<usize>) -> Self {
        self.streams = streams;
        self
    }

    /// Stops with `Interrupted` once `flag` is set.
    pub fn with_cancel(mut self, flag: Arc<AtomicBool>) -> Self {
        self.cancel = Some(flag);
        self
    }

    pub fn input(&self) -> &Input {
        &self.input
    }

    /// Frames decoded so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    fn when(&self, pts: Option<i64>) -> String {
        let tb = f64::from(self.input.time_base());
        match (pts, self.last_pts) {
            (Some(p), _) => crate::util::format_time(p as f64 * tb),
            (None, Some(p)) => format!("after {}", crate::util::format_time(p as f64 * tb)),
            (None, None) => "time unknown".into(),
        }
    }

    /// Applies the damage policy: an error, a `Damaged` status, or nothing (logged).
    fn damage(&self, pts: Option<i64>, reason: String, fix: &str) -> Result<Option<DecodeStatus>> {
        match self.policy {
            DamagePolicy::FailClosed => Err(VeilError::Damaged(format!("{reason}; {fix}"))
                .at_frame(self.frames, self.when(pts), Stage::Decode)),
            DamagePolicy::Record => Ok(Some(DecodeStatus::Damaged { pts, reason })),
            DamagePolicy::WarnAndSkip => {
                tracing::warn!(
                    "{}: damaged video near frame {} skipped: {reason}",
                    self.input.path.display(),
                    self.frames
                );
                Ok(None)
            }
        }
    }

    /// The next frame, packet, damaged span, or the end.
    pub fn receive(&mut self) -> Result<DecodeStatus> {
        loop {
            if self.state == State::Done {
                return Ok(DecodeStatus::End);
            }
            match self.input.decoder.receive_frame(&mut self.decoded) {
                Ok(()) => return self.frame_ready(),
                Err(ffmpeg::Error::Eof) => {
                    self.state = State::Done;
                    return Ok(DecodeStatus::End);
                }
                Err(ffmpeg::Error::Other { errno }) if errno == libc::EAGAIN => {
                    if self.state == State::Flushing {
                        // A flushed decoder answers EOF; anything else also means it is empty.
                        self.state = State::Done;
                        return Ok(DecodeStatus::End);
                    }
                }
                Err(e) => {
                    let fix = "re-run with --allow-damaged to skip undecodable frames";
                    if let Some(s) = self.damage(None, e.to_string(), fix)? {
                        return Ok(s);
                    }
                    continue;
                }
            }
            if let Some(s) = self.read_packet()? {
                return Ok(s);
            }
        }
    }

    /// Reads one packet and feeds it to the decoder; returns what the caller must see now.
    fn read_packet(&mut self) -> Result<Option<DecodeStatus>> {
        if self
            .cancel
            .as_ref()
            .is_some_and(|c| c.load(Ordering::Relaxed))
        {
            return Err(VeilError::Interrupted);
        }
        // Damage the demuxer logged while reading the last packets, placed where it was met.
        let logged = self.watch.take();
        if !logged.is_empty() {
            let fix = "re-run with --allow-damaged to redact what can be read and record the loss";
            let why = format!(
                "the demuxer skipped damaged data (it said: {})",
                logged.join("; ")
            );
            if let Some(s) = self.damage(None, why, fix)? {
                return Ok(Some(s));
            }
        }
        match self.pkt.read(&mut self.input.ictx) {
            Ok(()) => {}
            Err(ffmpeg::Error::Eof) => return self.at_end_of_file(),
            Err(e) if matches!(e, ffmpeg::Error::InvalidData) && self.policy != DamagePolicy::FailClosed => {
                return self.damage(None, format!("unreadable packet: {e}"), "");
            }
            Err(e) => {
                return Err(VeilError::Input {
                    path: self.input.path.clone(),
                    msg: format!(
                        "demuxing failed after {} frames: {e} (the file is damaged or truncated; --allow-damaged redacts what decodes)",
                        self.frames
                    ),
                })
            }
        }
        let si = self.pkt.stream();
        if si == self.input.video_index {
            self.video_packets += 1;
            if let Err(e) = self.input.decoder.send_packet(&self.pkt) {
                let fix = "re-run with --allow-damaged to skip undecodable frames";
                return self.damage(self.pkt.pts(), e.to_string(), fix);
            }
            return Ok(None);
        }
        if self.streams.contains(&si) {
            let p = std::mem::replace(&mut self.pkt, Packet::empty());
            return Ok(Some(DecodeStatus::Packet(p)));
        }
        Ok(None)
    }

    /// The demuxer is done: flushes the decoder, then checks the file was whole.
    fn at_end_of_file(&mut self) -> Result<Option<DecodeStatus>> {
        self.state = State::Flushing;
        self.input
            .decoder
            .send_eof()
            .map_err(|e| VeilError::ffmpeg("flush decoder", e))?;
        let logged = self.watch.take();
        let said = if logged.is_empty() {
            String::new()
        } else {
            format!(" (the demuxer said: {})", logged.join("; "))
        };
        // A demuxer can report a clean end of file on a truncated file: compare with the
        // container's own count, so a cut-short file is never taken for a complete one.
        if let Some(expected) = self
            .input
            .info
            .frames_hint
            .filter(|&n| self.video_packets < n)
        {
            let msg = format!(
                "the file ends early: {} of the {expected} video packets its index lists could be read (truncated or damaged){said}",
                self.video_packets
            );
            return match self.policy {
                DamagePolicy::FailClosed => Err(VeilError::Input {
                    path: self.input.path.clone(),
                    msg: format!("{msg}; --allow-damaged redacts what decodes"),
                }),
                _ => self.damage(None, msg, ""),
            };
        }
        if !logged.is_empty() {
            let fix = "re-run with --allow-damaged to redact what can be read and record the loss";
            let why = format!("the demuxer skipped damaged data{said}");
            return self.damage(None, why, fix);
        }
        Ok(None)
    }

    fn frame_ready(&mut self) -> Result<DecodeStatus> {
        // SAFETY: reads two plain fields of the frame the decoder just filled.
        let corrupt = unsafe {
            let f = self.decoded.as_ptr();
            (*f).decode_error_flags != 0 || ((*f).flags & ffmpeg::ffi::AV_FRAME_FLAG_CORRUPT) != 0
        };
        let pts = self.decoded.timestamp();
        if pts.is_some() {
            self.last_pts = pts;
        }
        if corrupt && self.policy == DamagePolicy::FailClosed {
            return Err(VeilError::Damaged(
                "the decoder reported a corrupt frame; re-run with --allow-damaged to redact the frames that decode and record the rest".into(),
            )
            .at_frame(self.frames, self.when(pts), Stage::Decode));
        }
        let f = std::mem::replace(&mut self.decoded, frame::Video::empty());
        let (w, h) = (self.input.info.width, self.input.info.height);
        let frame = match self.conv.as_mut() {
            Some(c) => c
                .convert(f, w, h)
                .map_err(|e| e.at_frame(self.frames, self.when(pts), Stage::Decode))?,
            None => f,
        };
        self.frames += 1;
        Ok(DecodeStatus::Frame {
            frame,
            pts,
            corrupt,
        })
    }
}
