//! Encode stage: the video encoder (x264, or NVENC), the muxer, and the audio streams, which
//! are copied packet for packet unless an audio edit applies (`audio_edit`). Timestamps stay
//! integers in the input stream's time base until the muxer rescales them.

mod audio_edit;

use std::path::Path;

use ffmpeg::format::Pixel;
use ffmpeg::{codec, format, frame, media, Dictionary, Packet, Rational};
use ffmpeg_next as ffmpeg;

use crate::decode::Input;
use crate::error::{InvalidSetting, Result, VeilError};
use audio_edit::AudioRewriter;

/// Encoder settings.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EncodeConfig {
    pub codec: String,
    pub crf: u8,
    pub preset: String,
    pub keep_audio: bool,
    /// NVENC instead of `codec` when CUDA is asked for (`auto` falls back to `codec`).
    pub hwaccel: crate::accel::Hwaccel,
    /// Audio spans to mute or bleep; audio streams are then re-encoded instead of copied.
    pub audio_edits: Vec<crate::edits::AudioEdit>,
}

impl Default for EncodeConfig {
    fn default() -> Self {
        EncodeConfig {
            codec: "libx264".into(),
            crf: 18,
            preset: "veryfast".into(),
            keep_audio: true,
            hwaccel: crate::accel::Hwaccel::default_for_build(),
            audio_edits: Vec::new(),
        }
    }
}

const PRESETS: [&str; 10] = [
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
    "placebo",
];

impl EncodeConfig {
    pub fn validate(&self) -> Result<()> {
        if self.crf > 51 {
            return Err(InvalidSetting::out_of_range("--crf", self.crf, "0..51").into());
        }
        if !PRESETS.contains(&self.preset.as_str()) {
            return Err(InvalidSetting::NotOneOf {
                flag: "--preset",
                value: self.preset.clone(),
                allowed: PRESETS.join(", "),
            }
            .into());
        }
        Ok(())
    }
}

/// Whether a send/receive call of a codec gave something (`Ok(true)`), needs more input or is
/// drained (`Ok(false)`); any other error is returned as it is, never taken for "nothing left".
pub(crate) fn ready(r: std::result::Result<(), ffmpeg::Error>, what: &'static str) -> Result<bool> {
    match r {
        Ok(()) => Ok(true),
        Err(ffmpeg::Error::Eof) => Ok(false),
        Err(ffmpeg::Error::Other { errno }) if errno == libc::EAGAIN => Ok(false),
        Err(e) => Err(VeilError::ffmpeg(what, e)),
    }
}

/// The containers veil writes video into: (extension, FFmpeg muxer).
pub const CONTAINERS: [(&str, &str); 5] = [
    ("mp4", "mp4"),
    ("m4v", "mp4"),
    ("mov", "mov"),
    ("mkv", "matroska"),
    ("avi", "avi"),
];

/// The container format for an output path, from its extension.
pub fn container_for(path: &Path) -> Result<&'static str> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase())
        .unwrap_or_default();
    CONTAINERS
        .iter()
        .find(|(e, _)| *e == ext)
        .map(|(_, m)| *m)
        .ok_or_else(|| {
            InvalidSetting::Path {
                path: path.to_path_buf(),
                why: "video output must end in .mp4, .m4v, .mov, .mkv or .avi".into(),
            }
            .into()
        })
}

/// A copied (not re-encoded) input stream.
struct CopiedStream {
    in_index: usize,
    out_index: usize,
    in_tb: Rational,
    out_tb: Rational,
    last_dts: Option<i64>,
    last_duration: i64,
    /// Added to this stream's timestamps since its last backward jump.
    offset: i64,
    /// Set when audio edits apply: the stream is decoded, edited and re-encoded.
    rewrite: Option<AudioRewriter>,
}

/// How the video is encoded: x264 threads and whether the frames are 4K or larger.
#[derive(Debug, Clone, Copy)]
pub struct EncodeBudget {
    pub threads: usize,
    pub low_memory: bool,
}

/// The muxer with the video encoder and the copied audio streams.
pub struct Output {
    octx: format::context::Output,
    /// Keeps a file FFmpeg writes through `/proc/self/fd` open.
    _held: Option<std::fs::File>,
    encoder: ffmpeg::encoder::Video,
    video_out: usize,
    enc_tb: Rational,
    video_tb: Rational,
    copied: Vec<CopiedStream>,
    /// Frame durations by pts, so each encoded packet gets its frame's duration.
    durations: std::collections::HashMap<i64, i64>,
    pub packets_written: u64,
}

fn ferr(c: &'static str) -> impl Fn(ffmpeg::Error) -> VeilError {
    move |e| VeilError::ffmpeg(c, e)
}

/// Opens the video encoder: NVENC when asked for and available, else `cfg.codec`.
fn open_video_encoder(
    input: &Input,
    fmt: Pixel,
    cfg: &EncodeConfig,
    budget: EncodeBudget,
    global_header: bool,
) -> Result<(ffmpeg::encoder::Video, ffmpeg::Codec)> {
    let tb = input.time_base();
    let fr = Rational::new(input.info.frame_rate[0], input.info.frame_rate[1]);
    let make = |codec: ffmpeg::Codec| -> Result<ffmpeg::encoder::video::Video> {
        let mut enc = codec::context::Context::new_with_codec(codec)
            .encoder()
            .video()
            .map_err(ferr("video encoder"))?;
        enc.set_width(input.info.width);
        enc.set_height(input.info.height);
        enc.set_format(fmt);
        enc.set_time_base(tb);
        enc.set_frame_rate(Some(fr));
        enc.set_aspect_ratio(input.decoder.aspect_ratio());
        enc.set_color_range(input.decoder.color_range());
        enc.set_colorspace(input.decoder.color_space());
        if global_header {
            enc.set_flags(codec::Flags::GLOBAL_HEADER);
        }
        Ok(enc)
    };
    if cfg.hwaccel.wants_cuda() {
        let nv = crate::accel::nvenc_for(&cfg.codec)
            .and_then(|n| ffmpeg::encoder::find_by_name(n).map(|c| (n, c)));
        let res = match nv {
            None => Err(format!("no NVENC encoder for {} in this FFmpeg", cfg.codec)),
            Some((name, c)) => {
                let mut opts = Dictionary::new();
                // Constant quality like x264's CRF; p4 is NVENC's balanced preset.
                opts.set("rc", "vbr");
                opts.set("cq", &cfg.crf.max(1).to_string());
                opts.set("b", "0");
                opts.set("preset", "p4");
                make(c)?
                    .open_with(opts)
                    .map(|e| (e, c))
                    .map_err(|e| format!("{name} did not open: {e}"))
            }
        };
        match res {
            Ok(x) => return Ok(x),
            Err(why) if cfg.hwaccel == crate::accel::Hwaccel::Auto => {
                crate::accel::fallback("encode", &why)
            }
            Err(why) => return Err(VeilError::ffmpeg("open video encoder", why)),
        }
    }
    let sw_codec = ffmpeg::encoder::find_by_name(&cfg.codec).ok_or_else(|| {
        VeilError::setting(
            "video encoder",
            format!("'{}' is not available in this FFmpeg", cfg.codec),
        )
    })?;
    let mut opts = Dictionary::new();
    opts.set("crf", &cfg.crf.to_string());
    opts.set("preset", &cfg.preset);
    opts.set("threads", &x264_threads(cfg, budget).to_string());
    if cfg.codec == "libx264" {
        opts.set("x264-params", x264_params(budget));
        if budget.low_memory {
            // x264 holds rc-lookahead frames plus their analysis (veryfast: 10); at 4K each
            // costs about 25 MiB. 3 still feeds macroblock-tree rate control.
            opts.set("rc-lookahead", "3");
        }
    }
    let e = make(sw_codec)?
        .open_with(opts)
        .map_err(ferr("open video encoder"))?;
    Ok((e, sw_codec))
}

/// x264's own parameters. The output must be the same bytes on every run of the same input
/// and settings, so that anyone can redact again and check the output hash in the audit
/// record: x264's threaded lookahead decides frame types from however many frames have
/// arrived, which under load (the detectors share the cores) changed a few macroblocks from
/// run to run (`sync-lookahead=0` runs the lookahead in step with the encoder). At 4K
/// (`low_memory`) slice threads, which share one frame in flight, replace frame threads.
fn x264_params(budget: EncodeBudget) -> &'static str {
    if budget.low_memory {
        "sliced-threads=1:sync-lookahead=0"
    } else {
        "sync-lookahead=0"
    }
}

/// x264's threads: the job's share of the cores, plus two frame threads where the job has
/// several cores and frames are not large. With the lookahead in step with the encoder
/// ([`x264_params`]) the frame threads wait on it more; two more of them keep the cores as
/// busy as the threaded lookahead did (face_1080p 8.76 s with the job's 2 threads, 8.08 s
/// with 4, 8.02 s before, on 2 cores). They block rather than spin, and each holds one frame.
/// A job given one core (a one-core machine, or a batch worker's share of two) keeps one
/// thread (`--threads` holds inference and decoding only).
fn x264_threads(cfg: &EncodeConfig, budget: EncodeBudget) -> usize {
    let threads = budget.threads.max(1);
    if cfg.codec == "libx264" && !budget.low_memory && threads > 1 {
        threads + 2
    } else {
        threads
    }
}

/// Adds the video stream, with the input's metadata and display matrix (rotation).
fn add_video_stream(
    octx: &mut format::context::Output,
    input: &Input,
    codec: ffmpeg::Codec,
    encoder: &ffmpeg::encoder::Video,
) -> Result<usize> {
    let in_stream = input
        .ictx
        .stream(input.video_index)
        .ok_or_else(|| VeilError::Internal("the input's video stream vanished".into()))?;
    let mut ost = octx.add_stream(codec).map_err(ferr("add video stream"))?;
    ost.set_parameters(encoder);
    ost.set_time_base(input.time_base());
    ost.set_avg_frame_rate(Rational::new(
        input.info.frame_rate[0],
        input.info.frame_rate[1],
    ));
    ost.set_metadata(in_stream.metadata().to_owned());
    for sd in in_stream.side_data() {
        if sd.kind() == codec::packet::side_data::Type::DisplayMatrix {
            let data = sd.data();
            // SAFETY: the stream is live; FFmpeg allocates `data.len()` bytes (or returns null)
            // and we copy exactly that many into them.
            unsafe {
                let dst = ffmpeg::ffi::av_stream_new_side_data(
                    ost.as_mut_ptr(),
                    ffmpeg::ffi::AVPacketSideDataType::AV_PKT_DATA_DISPLAYMATRIX,
                    data.len(),
                );
                if !dst.is_null() {
                    std::ptr::copy_nonoverlapping(data.as_ptr(), dst, data.len());
                }
            }
        }
    }
    Ok(ost.index())
}

/// Adds every audio stream of the input, copied or (with audio edits) rewritten.
fn add_audio_streams(
    octx: &mut format::context::Output,
    input: &Input,
    cfg: &EncodeConfig,
    global_header: bool,
) -> Result<Vec<CopiedStream>> {
    let mut copied = Vec::new();
    if !cfg.keep_audio {
        return Ok(copied);
    }
    for s in input.ictx.streams() {
        if s.parameters().medium() != media::Type::Audio {
            continue;
        }
        let id = s.parameters().id();
        // SAFETY: both pointers come from live FFmpeg objects; the call only reads them.
        let fits = unsafe {
            ffmpeg::ffi::avformat_query_codec(
                octx.format().as_ptr(),
                id.into(),
                ffmpeg::ffi::FF_COMPLIANCE_NORMAL,
            )
        };
        if fits == 0 {
            return Err(VeilError::setting(
                "-o",
                format!(
                    "audio stream {} ({id:?}) cannot be stored in this container; write .mkv (which takes it as it is) or drop the audio with --no-audio",
                    s.index()
                ),
            ));
        }
        let rewrite = if cfg.audio_edits.is_empty() {
            None
        } else {
            Some(AudioRewriter::new(&s, &cfg.audio_edits, global_header)?)
        };
        let mut ost = octx
            .add_stream(ffmpeg::encoder::find(codec::Id::None))
            .map_err(ferr("add audio stream"))?;
        match &rewrite {
            Some((rw, _)) if rw.splice.is_none() => {
                ost.set_parameters(&rw.encoder);
                ost.set_time_base(rw.encoder.time_base());
            }
            _ => {
                ost.set_parameters(s.parameters());
                ost.set_time_base(s.time_base());
            }
        }
        // SAFETY: the stream's parameters are live; codec_tag is a plain field.
        unsafe {
            (*ost.parameters().as_mut_ptr()).codec_tag = 0;
        }
        ost.set_metadata(s.metadata().to_owned());
        copied.push(CopiedStream {
            in_index: s.index(),
            out_index: ost.index(),
            in_tb: s.time_base(),
            out_tb: s.time_base(),
            last_dts: None,
            last_duration: 0,
            offset: 0,
            rewrite: rewrite.map(|r| r.0),
        });
    }
    Ok(copied)
}

impl Output {
    /// Creates `tmp_path` (muxed as `container`) with an encoder matching `input`.
    pub fn create(
        tmp_path: &Path,
        container: &str,
        input: &Input,
        fmt: Pixel,
        cfg: &EncodeConfig,
        budget: EncodeBudget,
    ) -> Result<Output> {
        let (fpath, held) = crate::decode::ffmpeg_path(tmp_path, true)?;
        let mut octx = format::output_as(&fpath, container).map_err(|e| VeilError::Io {
            context: "cannot create output",
            path: tmp_path.to_path_buf(),
            source: std::io::Error::other(e.to_string()),
        })?;
        let global_header = octx.format().flags().contains(format::Flags::GLOBAL_HEADER);
        let (encoder, codec) = open_video_encoder(input, fmt, cfg, budget, global_header)?;
        let video_out = add_video_stream(&mut octx, input, codec, &encoder)?;
        let mut copied = add_audio_streams(&mut octx, input, cfg, global_header)?;
        octx.set_metadata(input.ictx.metadata().to_owned());
        octx.write_header().map_err(|e| VeilError::Io {
            context: "cannot write output header",
            path: tmp_path.to_path_buf(),
            source: std::io::Error::other(e.to_string()),
        })?;
        let tb = input.time_base();
        let video_tb = octx.stream(video_out).map(|s| s.time_base()).unwrap_or(tb);
        for c in &mut copied {
            if let Some(s) = octx.stream(c.out_index) {
                c.out_tb = s.time_base();
            }
        }
        Ok(Output {
            octx,
            _held: held,
            encoder,
            video_out,
            enc_tb: tb,
            video_tb,
            copied,
            durations: Default::default(),
            packets_written: 0,
        })
    }

    /// Input stream indices whose packets are copied.
    pub fn copied_streams(&self) -> Vec<usize> {
        self.copied.iter().map(|c| c.in_index).collect()
    }

    /// Encodes one frame; `pts` and `duration` are in the input stream's time base.
    pub fn encode(&mut self, f: &mut frame::Video, pts: i64, duration: i64) -> Result<()> {
        f.set_pts(Some(pts));
        f.set_kind(ffmpeg::picture::Type::None);
        self.durations.insert(pts, duration.max(1));
        self.encoder
            .send_frame(f)
            .map_err(|e| VeilError::ffmpeg("encode", e))?;
        self.drain()
    }

    fn drain(&mut self) -> Result<()> {
        let mut pkt = Packet::empty();
        while ready(self.encoder.receive_packet(&mut pkt), "encode")? {
            if let Some(d) = pkt.pts().and_then(|p| self.durations.remove(&p)) {
                pkt.set_duration(d);
            }
            pkt.set_stream(self.video_out);
            pkt.rescale_ts(self.enc_tb, self.video_tb);
            pkt.write_interleaved(&mut self.octx)
                .map_err(|e| VeilError::ffmpeg("write video packet", e))?;
            self.packets_written += 1;
        }
        Ok(())
    }

    /// Writes a copied packet from input stream `in_index` unchanged (timestamps rescaled only).
    pub fn copy_packet(&mut self, in_index: usize, mut pkt: Packet) -> Result<()> {
        let Some(c) = self.copied.iter_mut().find(|c| c.in_index == in_index) else {
            return Ok(());
        };
        // Timestamps that jump back (segments joined end to end) would be refused by the
        // muxer: the packets from there on move forward by the jump, as the video does.
        if c.offset != 0 {
            pkt.set_pts(pkt.pts().map(|p| p.saturating_add(c.offset)));
            pkt.set_dts(pkt.dts().map(|p| p.saturating_add(c.offset)));
        }
        if let (Some(prev), Some(d)) = (c.last_dts, pkt.dts()) {
            if d <= prev {
                let shift = prev.saturating_add(c.last_duration.max(1)) - d;
                tracing::info!(
                    "audio stream {in_index}: timestamps jump back at {prev}; moved forward by {shift}"
                );
                c.offset = c.offset.saturating_add(shift);
                pkt.set_pts(pkt.pts().map(|p| p.saturating_add(shift)));
                pkt.set_dts(Some(d.saturating_add(shift)));
            }
        }
        c.last_dts = pkt.dts().or(c.last_dts);
        c.last_duration = pkt.duration();
        if let Some(rw) = c.rewrite.as_mut() {
            rw.decoder
                .send_packet(&pkt)
                .map_err(|e| VeilError::ffmpeg("decode audio for editing", e))?;
            if rw.splice.is_none() {
                return audio_edit::pump_audio(&mut self.octx, c.out_index, c.out_tb, rw, false);
            }
            let mut frames = Vec::new();
            let mut f = frame::Audio::empty();
            while ready(rw.decoder.receive_frame(&mut f), "decode audio for editing")? {
                frames.push(std::mem::replace(&mut f, frame::Audio::empty()));
            }
            if rw.affects(&pkt) {
                return audio_edit::splice_feed(rw, &pkt, frames, true);
            }
            if rw.splice.as_ref().is_some_and(|s| s.open.is_some()) {
                // The first packet after a range ends it (its audio completes the overlap).
                audio_edit::splice_feed(rw, &pkt, frames.clone(), false)?;
                audio_edit::splice_close(&mut self.octx, c.out_index, c.in_tb, c.out_tb, rw)?;
            }
            if let Some(sp) = rw.splice.as_mut() {
                sp.prev = frames.pop();
            }
        }
        pkt.set_stream(c.out_index);
        pkt.rescale_ts(c.in_tb, c.out_tb);
        pkt.set_position(-1);
        pkt.write_interleaved(&mut self.octx)
            .map_err(|e| VeilError::ffmpeg("write audio packet", e))?;
        Ok(())
    }

    /// Flushes the encoder and writes the trailer; returns the video packets written.
    pub fn finish(mut self) -> Result<u64> {
        self.encoder
            .send_eof()
            .map_err(|e| VeilError::ffmpeg("flush encoder", e))?;
        self.drain()?;
        for c in self.copied.iter_mut() {
            if let Some(rw) = c.rewrite.as_mut() {
                if rw.splice.is_some() {
                    audio_edit::splice_close(&mut self.octx, c.out_index, c.in_tb, c.out_tb, rw)?;
                } else {
                    audio_edit::pump_audio(&mut self.octx, c.out_index, c.out_tb, rw, true)?;
                }
            }
        }
        self.octx
            .write_trailer()
            .map_err(|e| VeilError::ffmpeg("write trailer", e))?;
        Ok(self.packets_written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn x264_gets_two_more_frame_threads_only_where_the_job_has_several_cores() {
        let x264 = EncodeConfig::default();
        let budget = |threads, low_memory| EncodeBudget {
            threads,
            low_memory,
        };
        assert_eq!(x264_threads(&x264, budget(2, false)), 4);
        assert_eq!(x264_threads(&x264, budget(8, false)), 10);
        // One core asked for: one thread. 4K: slice threads, one frame in flight.
        assert_eq!(x264_threads(&x264, budget(1, false)), 1);
        assert_eq!(x264_threads(&x264, budget(2, true)), 2);
        let other = EncodeConfig {
            codec: "libx265".into(),
            ..EncodeConfig::default()
        };
        assert_eq!(x264_threads(&other, budget(2, false)), 2);
        // The lookahead runs in step with the encoder either way.
        assert!(x264_params(budget(2, false)).contains("sync-lookahead=0"));
        assert!(x264_params(budget(2, true)).contains("sliced-threads=1"));
    }

    #[test]
    fn containers_follow_the_extension() {
        assert_eq!(container_for(Path::new("a/b.MP4")).unwrap(), "mp4");
        assert_eq!(container_for(Path::new("b.mkv")).unwrap(), "matroska");
        let e = container_for(Path::new("b.webm")).unwrap_err();
        assert_eq!(e.exit_code(), 2, "{e}");
    }

    #[test]
    fn codec_statuses_are_not_errors_but_errors_are() {
        assert!(ready(Ok(()), "x").unwrap());
        assert!(!ready(Err(ffmpeg::Error::Eof), "x").unwrap());
        assert!(!ready(
            Err(ffmpeg::Error::Other {
                errno: libc::EAGAIN
            }),
            "x"
        )
        .unwrap());
        let e = ready(Err(ffmpeg::Error::InvalidData), "encode").unwrap_err();
        assert!(e.to_string().contains("encode"), "{e}");
    }
}
