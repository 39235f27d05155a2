//! Decode and encode stages (FFmpeg through ffmpeg-next). Timestamps stay integers in the
//! stream's time base from demuxing to muxing.

use std::path::{Path, PathBuf};

use ffmpeg::format::Pixel;
use ffmpeg::{codec, format, frame, media, Dictionary, Packet, Rational, Rescale};
use ffmpeg_next as ffmpeg;

use crate::error::{Result, VeilError};

/// Initialises FFmpeg once and keeps its log quiet unless asked.
pub fn init() -> Result<()> {
    static INIT: std::sync::OnceLock<std::result::Result<(), String>> = std::sync::OnceLock::new();
    INIT.get_or_init(|| {
        ffmpeg::init().map_err(|e| e.to_string())?;
        ffmpeg::log::set_level(if std::env::var_os("VEIL_FFMPEG_LOG").is_some() {
            ffmpeg::log::Level::Info
        } else {
            ffmpeg::log::Level::Fatal
        });
        Ok(())
    })
    .clone()
    .map_err(|e| VeilError::ffmpeg("init", e))
}

/// What we know of the input's video stream.
#[derive(Debug, Clone, serde::Serialize)]
pub struct VideoInfo {
    pub width: u32,
    pub height: u32,
    /// Stream time base as `[num, den]`.
    pub time_base: [i32; 2],
    /// Average frame rate as `[num, den]` (guessed as 30/1 when the container does not say).
    pub frame_rate: [i32; 2],
    /// Frame count from the container, when it states one.
    pub frames_hint: Option<u64>,
    pub duration_s: Option<f64>,
    /// Display rotation in degrees (counter-clockwise, as FFmpeg reports it), 0 when none.
    pub rotation: i32,
    pub codec: String,
    pub pixel_format: String,
}

/// An opened input: the demuxer, the chosen video stream and its decoder.
pub struct Input {
    pub path: PathBuf,
    pub ictx: format::context::Input,
    pub video_index: usize,
    pub decoder: ffmpeg::decoder::Video,
    pub info: VideoInfo,
}

fn input_err(path: &Path, msg: impl Into<String>) -> VeilError {
    VeilError::Input {
        path: path.to_path_buf(),
        msg: msg.into(),
    }
}

impl Input {
    pub fn open(path: &Path, threads: usize) -> Result<Input> {
        Self::open_with(path, threads, crate::accel::Hwaccel::None)
    }

    /// Opens `path`; with `hw` asking for CUDA, the video is decoded by NVDEC when FFmpeg has
    /// a `*_cuvid` decoder for it that opens (`auto` falls back to the CPU decoder).
    pub fn open_with(path: &Path, threads: usize, hw: crate::accel::Hwaccel) -> Result<Input> {
        init()?;
        let meta =
            std::fs::metadata(path).map_err(|e| VeilError::io("cannot open input", path, e))?;
        if meta.is_dir() {
            return Err(input_err(path, "is a directory, not a media file"));
        }
        if meta.len() == 0 {
            return Err(input_err(path, "file is empty (0 bytes)"));
        }
        let ictx = format::input(&path)
            .map_err(|e| input_err(path, format!("not a readable media file ({e})")))?;
        let stream = ictx
            .streams()
            .best(media::Type::Video)
            .ok_or_else(|| input_err(path, "has no video stream"))?;
        let video_index = stream.index();
        let mut ctx = codec::context::Context::from_parameters(stream.parameters())
            .map_err(|e| input_err(path, format!("video codec parameters unusable ({e})")))?;
        // SAFETY: reads two ints of the parameters the stream owns.
        let (pw, ph) = unsafe {
            let p = stream.parameters().as_ptr();
            ((*p).width.max(0) as usize, (*p).height.max(0) as usize)
        };
        // Each frame-decoding thread holds frames of its own (12 MiB each at 4K); one thread
        // decodes 4K H.264 at about 60 fps here, far ahead of detection.
        let threads = if crate::runtime::is_large_frame(pw, ph) {
            1
        } else {
            threads
        };
        ctx.set_threading(codec::threading::Config {
            kind: codec::threading::Type::Frame,
            count: threads.max(1),
            ..Default::default()
        });
        let mut decoder = None;
        if hw.wants_cuda() {
            match open_nvdec(&stream) {
                Ok(d) => decoder = Some(d),
                Err(why) if hw == crate::accel::Hwaccel::Auto => {
                    crate::accel::fallback("decode", &why)
                }
                Err(why) => return Err(input_err(path, format!("NVDEC: {why}"))),
            }
        }
        let decoder = match decoder {
            Some(d) => d,
            None => ctx
                .decoder()
                .video()
                .map_err(|e| input_err(path, format!("no decoder for the video codec ({e})")))?,
        };
        let (w, h) = (decoder.width(), decoder.height());
        if w == 0 || h == 0 {
            return Err(input_err(
                path,
                "video stream has no valid frame size (missing, or over FFmpeg's limit of about 268 million pixels a frame)",
            ));
        }
        if (w as u64) * (h as u64) > 8192 * 8192 || w > 16384 || h > 16384 {
            return Err(input_err(
                path,
                format!("video frame size {w}x{h} is larger than the supported 8192x8192"),
            ));
        }
        let tb = stream.time_base();
        if tb.numerator() <= 0 || tb.denominator() <= 0 {
            return Err(input_err(path, "video stream has no valid time base"));
        }
        let mut fr = stream.avg_frame_rate();
        if fr.numerator() <= 0 || fr.denominator() <= 0 {
            fr = stream.rate();
        }
        if fr.numerator() <= 0 || fr.denominator() <= 0 {
            fr = Rational::new(30, 1);
        }
        let frames_hint = (stream.frames() > 0).then_some(stream.frames() as u64);
        let duration_s = if stream.duration() > 0 {
            Some(stream.duration() as f64 * f64::from(tb))
        } else if ictx.duration() > 0 {
            Some(ictx.duration() as f64 / 1_000_000.0)
        } else {
            None
        };
        let rotation = display_rotation(&stream);
        let info = VideoInfo {
            width: w,
            height: h,
            time_base: [tb.numerator(), tb.denominator()],
            frame_rate: [fr.numerator(), fr.denominator()],
            frames_hint,
            duration_s,
            rotation,
            codec: decoder
                .codec()
                .map(|c| c.name().to_string())
                .unwrap_or_else(|| "unknown".into()),
            pixel_format: format!("{:?}", decoder.format()).to_lowercase(),
        };
        Ok(Input {
            path: path.to_path_buf(),
            ictx,
            video_index,
            decoder,
            info,
        })
    }

    pub fn time_base(&self) -> Rational {
        Rational::new(self.info.time_base[0], self.info.time_base[1])
    }
}

/// Opens FFmpeg's NVDEC (`*_cuvid`) decoder for a stream; frames come back in system memory.
fn open_nvdec(
    stream: &format::stream::Stream,
) -> std::result::Result<ffmpeg::decoder::Video, String> {
    let id = stream.parameters().id();
    let name = crate::accel::nvdec_for(id).ok_or_else(|| format!("no NVDEC decoder for {id:?}"))?;
    let codec =
        ffmpeg::decoder::find_by_name(name).ok_or_else(|| format!("this FFmpeg has no {name}"))?;
    let ctx =
        codec::context::Context::from_parameters(stream.parameters()).map_err(|e| e.to_string())?;
    ctx.decoder()
        .open_as(codec)
        .and_then(|o| o.video())
        .map_err(|e| format!("{name} did not open: {e}"))
}

/// Rotation from the stream's display matrix, in degrees, rounded to a multiple of 90.
fn display_rotation(stream: &format::stream::Stream) -> i32 {
    for sd in stream.side_data() {
        if sd.kind() == codec::packet::side_data::Type::DisplayMatrix && sd.data().len() >= 36 {
            let m: Vec<i32> = sd
                .data()
                .chunks_exact(4)
                .take(9)
                .map(|c| i32::from_ne_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            let deg = unsafe { ffmpeg::ffi::av_display_rotation_get(m.as_ptr()) };
            if deg.is_finite() {
                let r = ((deg / 90.0).round() as i32 * 90).rem_euclid(360);
                return r;
            }
        }
    }
    0
}

/// The planar 8-bit format frames are redacted and encoded in.
pub fn working_format(src: Pixel, w: u32, h: u32) -> Pixel {
    let even = w % 2 == 0 && h % 2 == 0;
    match src {
        Pixel::YUV420P | Pixel::YUVJ420P if even => src,
        Pixel::YUV444P | Pixel::YUVJ444P => src,
        Pixel::YUVJ420P | Pixel::YUVJ422P => Pixel::YUVJ444P,
        _ if even => Pixel::YUV420P,
        _ => Pixel::YUV444P,
    }
}

/// Chroma subsampling shift (log2) of a working format.
pub fn chroma_shift(fmt: Pixel) -> (u32, u32) {
    match fmt {
        Pixel::YUV420P | Pixel::YUVJ420P => (1, 1),
        _ => (0, 0),
    }
}

/// Makes a frame's buffers private so writing into it cannot corrupt decoder references.
pub fn make_writable(f: &mut frame::Video) -> Result<()> {
    let r = unsafe { ffmpeg::ffi::av_frame_make_writable(f.as_mut_ptr()) };
    if r < 0 {
        return Err(VeilError::ffmpeg(
            "make frame writable",
            ffmpeg::Error::from(r),
        ));
    }
    Ok(())
}

/// Encoder settings.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EncodeConfig {
    pub codec: String,
    pub crf: u8,
    pub preset: String,
    pub keep_audio: bool,
    /// x264 threads (0 lets x264 choose). The default leaves half the cores to inference, as
    /// x264 threads that outnumber their share stall the ONNX Runtime workers.
    pub threads: usize,
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
            threads: (std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
                / 2)
            .max(1),
            hwaccel: crate::accel::Hwaccel::default_for_build(),
            audio_edits: Vec::new(),
        }
    }
}

impl EncodeConfig {
    pub fn validate(&self) -> Result<()> {
        if self.crf > 51 {
            return Err(VeilError::Config(format!(
                "--crf must be 0..51, got {}",
                self.crf
            )));
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
        if !PRESETS.contains(&self.preset.as_str()) {
            return Err(VeilError::Config(format!(
                "--preset must be one of {}, got '{}'",
                PRESETS.join(", "),
                self.preset
            )));
        }
        Ok(())
    }
}

/// A copied (not re-encoded) input stream.
struct CopiedStream {
    in_index: usize,
    out_index: usize,
    in_tb: Rational,
    out_tb: Rational,
    last_dts: Option<i64>,
    /// Set when audio edits apply: the stream is decoded, edited and re-encoded.
    rewrite: Option<AudioRewriter>,
}

/// Decodes an audio stream, mutes or bleeps the edited spans, and re-encodes it with the
/// same codec. The whole stream is re-encoded: packets outside the spans are not bit-exact.
struct AudioRewriter {
    decoder: ffmpeg::decoder::Audio,
    encoder: ffmpeg::encoder::Audio,
    spans: Vec<crate::edits::AudioEdit>,
    in_tb: Rational,
    /// Samples sent to the encoder so far (its pts, in 1/rate).
    next_pts: i64,
    frame: frame::Audio,
    /// Splice mode: only the packets around the spans are re-encoded; the rest are copied.
    splice: Option<Splice>,
    bit_rate: usize,
}

/// A range of packets being re-encoded: its encoder, the original packets it replaces, and
/// the packets the encoder produced so far.
type OpenRange = (ffmpeg::encoder::Audio, Vec<Packet>, Vec<Packet>);

/// State of span-only re-encoding.
struct Splice {
    codec: ffmpeg::Codec,
    global_header: bool,
    /// The decoded frame of the last copied packet: primes the encoder of the next range.
    prev: Option<frame::Audio>,
    open: Option<OpenRange>,
}

impl AudioRewriter {
    fn new(
        s: &format::stream::Stream,
        spans: &[crate::edits::AudioEdit],
        global_header: bool,
    ) -> Result<(AudioRewriter, ffmpeg::Codec)> {
        let ferr = |c: &'static str| move |e: ffmpeg::Error| VeilError::ffmpeg(c, e);
        let dctx = codec::context::Context::from_parameters(s.parameters())
            .map_err(ferr("audio edit decoder"))?;
        let decoder = dctx.decoder().audio().map_err(ferr("audio edit decoder"))?;
        let id = s.parameters().id();
        let codec = ffmpeg::encoder::find(id).ok_or_else(|| {
            VeilError::Config(format!(
                "audio edits need re-encoding, and this FFmpeg has no encoder for {id:?}"
            ))
        })?;
        let mut enc = codec::context::Context::new_with_codec(codec)
            .encoder()
            .audio()
            .map_err(ferr("audio edit encoder"))?;
        let fmt = codec
            .audio()
            .ok()
            .and_then(|a| a.formats().and_then(|mut f| f.next()))
            .unwrap_or(decoder.format());
        let layout = if decoder.channel_layout().bits() == 0 {
            ffmpeg::ChannelLayout::default(decoder.channels() as i32)
        } else {
            decoder.channel_layout()
        };
        enc.set_rate(decoder.rate() as i32);
        enc.set_channel_layout(layout);
        enc.set_format(fmt);
        enc.set_time_base(Rational::new(1, decoder.rate() as i32));
        let br = decoder.bit_rate();
        enc.set_bit_rate(if br > 0 { br } else { 128_000 });
        if global_header {
            enc.set_flags(codec::Flags::GLOBAL_HEADER);
        }
        let encoder = enc
            .open_as(codec)
            .map_err(ferr("open audio edit encoder"))?;
        // Splicing keeps the original stream's parameters, so the re-encoded packets must be
        // decodable with them: AAC-LC (or a codec without profiles, like PCM) only.
        let profile = unsafe { (*s.parameters().as_ptr()).profile };
        let spliceable = match id {
            codec::Id::AAC => profile == ffmpeg::ffi::FF_PROFILE_AAC_LOW,
            codec::Id::PCM_S16LE | codec::Id::PCM_S24LE | codec::Id::PCM_F32LE => true,
            _ => false,
        };
        if encoder.format() != decoder.format() {
            return Err(VeilError::Config(format!(
                "audio edits: the {id:?} encoder wants {:?} samples but the decoder gives {:?}",
                encoder.format(),
                decoder.format()
            )));
        }
        Ok((
            AudioRewriter {
                decoder,
                encoder,
                spans: spans.to_vec(),
                in_tb: s.time_base(),
                next_pts: 0,
                frame: frame::Audio::empty(),
                bit_rate: if br > 0 { br } else { 128_000 },
                splice: spliceable.then_some(Splice {
                    codec,
                    global_header,
                    prev: None,
                    open: None,
                }),
            },
            codec,
        ))
    }

    /// A fresh encoder with the settings of the first (for each spliced range).
    fn fresh_encoder(
        &self,
        codec: ffmpeg::Codec,
        global_header: bool,
    ) -> Result<ffmpeg::encoder::Audio> {
        let ferr = |c: &'static str| move |e: ffmpeg::Error| VeilError::ffmpeg(c, e);
        let mut enc = codec::context::Context::new_with_codec(codec)
            .encoder()
            .audio()
            .map_err(ferr("audio edit encoder"))?;
        enc.set_rate(self.encoder.rate() as i32);
        enc.set_channel_layout(self.encoder.channel_layout());
        enc.set_format(self.encoder.format());
        enc.set_time_base(self.encoder.time_base());
        enc.set_bit_rate(self.bit_rate);
        if global_header {
            enc.set_flags(codec::Flags::GLOBAL_HEADER);
        }
        enc.open_as(codec).map_err(ferr("open audio edit encoder"))
    }

    /// True when the packet's audio is within one packet of a span (the neighbours are
    /// re-encoded too, so the transform's overlap at the boundaries is consistent).
    fn affects(&self, pkt: &Packet) -> bool {
        let tb = f64::from(self.in_tb);
        let Some(pts) = pkt.pts() else {
            return true;
        };
        let dur = pkt.duration().max(1);
        let (a, b) = (pts as f64 * tb, (pts + dur) as f64 * tb);
        let d = dur as f64 * tb;
        self.spans
            .iter()
            .any(|sp| a < sp.end + d && b > sp.start - d)
    }

    /// Mutes or bleeps the samples of `f` (starting at `t0` seconds) that fall in a span.
    fn edit(&self, f: &mut frame::Audio, t0: f64) {
        let rate = f.rate().max(1) as f64;
        let n = f.samples();
        let planar = f.is_planar();
        let chans = f.channels() as usize;
        for sp in &self.spans {
            let a = (((sp.start - t0) * rate).ceil().max(0.0) as usize).min(n);
            let b = (((sp.end - t0) * rate).ceil().max(0.0) as usize).min(n);
            if a >= b {
                continue;
            }
            let value = |i: usize| -> f32 {
                match sp.action {
                    crate::edits::AudioAction::Mute => 0.0,
                    crate::edits::AudioAction::Bleep => {
                        let t = t0 + i as f64 / rate;
                        (0.3 * (2.0 * std::f64::consts::PI * 1000.0 * t).sin()) as f32
                    }
                }
            };
            let planes = if planar { chans } else { 1 };
            let step = if planar { 1 } else { chans };
            for p in 0..planes {
                match f.format() {
                    format::Sample::F32(_) => {
                        let d = f.plane_mut::<f32>(p);
                        for i in a..b {
                            for c in 0..step {
                                d[i * step + c] = value(i);
                            }
                        }
                    }
                    format::Sample::I16(_) => {
                        let d = f.plane_mut::<i16>(p);
                        for i in a..b {
                            for c in 0..step {
                                d[i * step + c] = (value(i) * 32767.0) as i16;
                            }
                        }
                    }
                    format::Sample::I32(_) => {
                        let d = f.plane_mut::<i32>(p);
                        for i in a..b {
                            for c in 0..step {
                                d[i * step + c] = (value(i) as f64 * 2147483647.0) as i32;
                            }
                        }
                    }
                    _ => {
                        // Zero bytes are silence for signed and float formats alike.
                        let bps = f.format().bytes();
                        let d = f.data_mut(p);
                        let (lo, hi) = (a * step * bps, (b * step * bps).min(d.len()));
                        d[lo..hi].fill(0);
                    }
                }
            }
        }
    }
}

/// The muxer with the video encoder and the copied audio streams.
pub struct Output {
    octx: format::context::Output,
    encoder: ffmpeg::encoder::Video,
    video_out: usize,
    enc_tb: Rational,
    video_tb: Rational,
    copied: Vec<CopiedStream>,
    /// Frame durations by pts, so each encoded packet gets its frame's duration.
    durations: std::collections::HashMap<i64, i64>,
    pub packets_written: u64,
}

/// The container format for an output path, from its extension.
pub fn container_for(path: &Path) -> Result<&'static str> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase())
        .unwrap_or_default();
    Ok(match ext.as_str() {
        "mp4" | "m4v" => "mp4",
        "mov" => "mov",
        "mkv" => "matroska",
        "avi" => "avi",
        _ => {
            return Err(VeilError::Config(format!(
                "output must end in .mp4, .m4v, .mov, .mkv or .avi, got '{}'",
                path.display()
            )))
        }
    })
}

impl Output {
    /// Creates `tmp_path` (muxed as `container`) with an encoder matching `input`.
    pub fn create(
        tmp_path: &Path,
        container: &str,
        input: &Input,
        fmt: Pixel,
        cfg: &EncodeConfig,
    ) -> Result<Output> {
        let ferr = |c: &str| {
            let c = c.to_string();
            move |e: ffmpeg::Error| VeilError::ffmpeg(c.clone(), e)
        };
        let mut octx = format::output_as(&tmp_path, container).map_err(|e| VeilError::Io {
            context: "cannot create output",
            path: tmp_path.to_path_buf(),
            source: std::io::Error::other(e.to_string()),
        })?;
        let global_header = octx.format().flags().contains(format::Flags::GLOBAL_HEADER);
        let sw_codec = ffmpeg::encoder::find_by_name(&cfg.codec).ok_or_else(|| {
            VeilError::Config(format!(
                "video encoder '{}' is not available in this FFmpeg",
                cfg.codec
            ))
        })?;
        let in_stream = input
            .ictx
            .stream(input.video_index)
            .ok_or_else(|| VeilError::ffmpeg("input", "video stream vanished"))?;
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
        let mut opened = None;
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
                Ok(x) => opened = Some(x),
                Err(why) if cfg.hwaccel == crate::accel::Hwaccel::Auto => {
                    crate::accel::fallback("encode", &why)
                }
                Err(why) => return Err(VeilError::ffmpeg("open video encoder", why)),
            }
        }
        let (encoder, codec) = match opened {
            Some(x) => x,
            None => {
                let mut opts = Dictionary::new();
                opts.set("crf", &cfg.crf.to_string());
                opts.set("preset", &cfg.preset);
                if cfg.threads > 0 {
                    opts.set("threads", &cfg.threads.to_string());
                }
                let (w, h) = (input.info.width as usize, input.info.height as usize);
                if crate::runtime::is_large_frame(w, h) && cfg.codec == "libx264" {
                    // x264 holds rc-lookahead frames plus their analysis (veryfast: 10); at 4K
                    // each costs about 25 MiB. 3 still feeds macroblock-tree rate control.
                    opts.set("rc-lookahead", "3");
                }
                let e = make(sw_codec)?
                    .open_with(opts)
                    .map_err(ferr("open video encoder"))?;
                (e, sw_codec)
            }
        };

        let video_out;
        {
            let mut ost = octx.add_stream(codec).map_err(ferr("add video stream"))?;
            ost.set_parameters(&encoder);
            ost.set_time_base(tb);
            ost.set_avg_frame_rate(fr);
            ost.set_metadata(in_stream.metadata().to_owned());
            video_out = ost.index();
            // Keep the display matrix (rotation) as side data on the output stream.
            for sd in in_stream.side_data() {
                if sd.kind() == codec::packet::side_data::Type::DisplayMatrix {
                    unsafe {
                        let data = sd.data();
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
        }

        let mut copied = Vec::new();
        if cfg.keep_audio {
            for s in input.ictx.streams() {
                if s.parameters().medium() != media::Type::Audio {
                    continue;
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
                    rewrite: rewrite.map(|r| r.0),
                });
            }
        }
        octx.set_metadata(input.ictx.metadata().to_owned());
        octx.write_header().map_err(|e| VeilError::Io {
            context: "cannot write output header",
            path: tmp_path.to_path_buf(),
            source: std::io::Error::other(e.to_string()),
        })?;
        let video_tb = octx.stream(video_out).map(|s| s.time_base()).unwrap_or(tb);
        for c in &mut copied {
            if let Some(s) = octx.stream(c.out_index) {
                c.out_tb = s.time_base();
            }
        }
        Ok(Output {
            octx,
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
        while self.encoder.receive_packet(&mut pkt).is_ok() {
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
        // A muxer rejects non-increasing dts; such a packet is damaged input, not ours to fix.
        if let (Some(prev), Some(d)) = (c.last_dts, pkt.dts()) {
            if d < prev {
                return Err(VeilError::ffmpeg(
                    "copy audio",
                    format!(
                        "audio stream {in_index} has timestamps going backwards ({prev} then {d})"
                    ),
                ));
            }
        }
        c.last_dts = pkt.dts().or(c.last_dts);
        if let Some(rw) = c.rewrite.as_mut() {
            rw.decoder
                .send_packet(&pkt)
                .map_err(|e| VeilError::ffmpeg("decode audio for editing", e))?;
            if rw.splice.is_none() {
                return Self::pump_audio(&mut self.octx, c.out_index, c.out_tb, rw, false);
            }
            let mut frames = Vec::new();
            let mut f = frame::Audio::empty();
            while rw.decoder.receive_frame(&mut f).is_ok() {
                frames.push(std::mem::replace(&mut f, frame::Audio::empty()));
            }
            if rw.affects(&pkt) {
                return Self::splice_feed(rw, &pkt, frames, true);
            }
            if rw.splice.as_ref().is_some_and(|s| s.open.is_some()) {
                // The first packet after a range ends it (its audio completes the overlap).
                Self::splice_feed(rw, &pkt, frames.clone(), false)?;
                Self::splice_close(&mut self.octx, c.out_index, c.in_tb, c.out_tb, rw)?;
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

    /// Feeds one packet's audio to the range encoder (opening a range, primed with the
    /// previous packet's audio, if none is open). `edited` packets are replaced in the output;
    /// the packet after a range only completes the encoder's overlap and is copied.
    fn splice_feed(
        rw: &mut AudioRewriter,
        pkt: &Packet,
        frames: Vec<frame::Audio>,
        edited: bool,
    ) -> Result<()> {
        let aerr = |c: &'static str| move |e: ffmpeg::Error| VeilError::ffmpeg(c, e);
        let rate = rw.encoder.rate().max(1) as i32;
        let enc_tb = Rational::new(1, rate);
        let in_tb = rw.in_tb;
        if rw.splice.as_ref().is_some_and(|s| s.open.is_none()) {
            let (codec, gh) = {
                let sp = rw.splice.as_ref().expect("splice mode");
                (sp.codec, sp.global_header)
            };
            let mut enc = rw.fresh_encoder(codec, gh)?;
            if let Some(mut p) = rw.splice.as_mut().and_then(|s| s.prev.take()) {
                let fs = enc.frame_size() as usize;
                if (fs == 0 || p.samples() == fs) && p.pts().is_some() {
                    let pts = p.pts().map(|t| t.rescale(in_tb, enc_tb));
                    p.set_pts(pts);
                    enc.send_frame(&p).map_err(aerr("prime audio encoder"))?;
                }
            }
            rw.splice.as_mut().expect("splice").open = Some((enc, Vec::new(), Vec::new()));
        }
        // One frame per packet at the packet's time: a packet that decoded to fewer samples
        // (the trimmed start of a stream) is padded at the front with silence.
        let pts = pkt.pts().unwrap_or(0);
        let fmt = rw.decoder.format();
        let (fs, layout) = {
            let open = rw
                .splice
                .as_ref()
                .and_then(|s| s.open.as_ref())
                .expect("opened");
            (open.0.frame_size() as usize, open.0.channel_layout())
        };
        let mut f = match frames.into_iter().next() {
            Some(f) if fs == 0 || f.samples() == fs => f,
            other => {
                let n = if fs > 0 {
                    fs
                } else {
                    other.as_ref().map(|f| f.samples()).unwrap_or(0)
                };
                let mut z = frame::Audio::new(fmt, n, layout);
                z.set_rate(rate as u32);
                for i in 0..z.planes() {
                    z.data_mut(i).fill(0);
                }
                if let Some(src) = other {
                    let per = if fmt.is_planar() {
                        1
                    } else {
                        src.channels() as usize
                    };
                    let bps = fmt.bytes() * per;
                    let k = src.samples().min(n);
                    for i in 0..z.planes().min(src.planes()) {
                        let off = (n - k) * bps;
                        let dst = z.data_mut(i);
                        dst[off..off + k * bps].copy_from_slice(&src.data(i)[..k * bps]);
                    }
                }
                z
            }
        };
        if edited {
            rw.edit(&mut f, pts as f64 * f64::from(in_tb));
        }
        f.set_pts(Some(pts.rescale(in_tb, enc_tb)));
        let open = rw
            .splice
            .as_mut()
            .and_then(|s| s.open.as_mut())
            .expect("opened");
        open.0.send_frame(&f).map_err(aerr("encode edited audio"))?;
        let mut p = Packet::empty();
        while open.0.receive_packet(&mut p).is_ok() {
            open.2.push(std::mem::replace(&mut p, Packet::empty()));
        }
        if edited {
            open.1.push(pkt.clone());
        }
        Ok(())
    }

    /// Ends the open range: flushes its encoder and writes, for each replaced packet, the
    /// re-encoded packet with the same timestamp. A missing one fails the job (fail closed).
    fn splice_close(
        octx: &mut format::context::Output,
        out_index: usize,
        in_tb: Rational,
        out_tb: Rational,
        rw: &mut AudioRewriter,
    ) -> Result<()> {
        let rate = rw.encoder.rate().max(1) as i32;
        let enc_tb = Rational::new(1, rate);
        let Some((mut enc, originals, mut encoded)) =
            rw.splice.as_mut().and_then(|s| s.open.take())
        else {
            return Ok(());
        };
        let _ = enc.send_eof();
        let mut p = Packet::empty();
        while enc.receive_packet(&mut p).is_ok() {
            encoded.push(std::mem::replace(&mut p, Packet::empty()));
        }
        for o in originals {
            let want = o.pts().unwrap_or(0).rescale(in_tb, enc_tb);
            let Some(e) = encoded.iter().find(|e| e.pts() == Some(want)) else {
                return Err(VeilError::ffmpeg(
                    "edit audio",
                    format!(
                        "no re-encoded packet for the audio at {want}/{rate} s; output rejected"
                    ),
                ));
            };
            let mut n = e.clone();
            n.set_pts(o.pts());
            n.set_dts(o.dts());
            n.set_duration(o.duration());
            n.set_stream(out_index);
            n.rescale_ts(in_tb, out_tb);
            n.set_position(-1);
            n.write_interleaved(octx)
                .map_err(|e| VeilError::ffmpeg("write edited audio packet", e))?;
        }
        Ok(())
    }

    /// Moves decoded audio through the edits into the encoder, and encoded packets to the
    /// muxer. `eof` flushes both.
    fn pump_audio(
        octx: &mut format::context::Output,
        out_index: usize,
        out_tb: Rational,
        rw: &mut AudioRewriter,
        eof: bool,
    ) -> Result<()> {
        let aerr = |c: &'static str| move |e: ffmpeg::Error| VeilError::ffmpeg(c, e);
        if eof {
            let _ = rw.decoder.send_eof();
        }
        let mut f = std::mem::replace(&mut rw.frame, frame::Audio::empty());
        while rw.decoder.receive_frame(&mut f).is_ok() {
            let t0 = f
                .pts()
                .map(|p| p as f64 * f64::from(rw.in_tb))
                .unwrap_or(rw.next_pts as f64 / f.rate().max(1) as f64);
            rw.edit(&mut f, t0);
            f.set_pts(Some(rw.next_pts));
            rw.next_pts += f.samples() as i64;
            rw.encoder
                .send_frame(&f)
                .map_err(aerr("encode edited audio"))?;
            Self::drain_audio(octx, out_index, out_tb, rw)?;
        }
        rw.frame = f;
        if eof {
            rw.encoder.send_eof().map_err(aerr("flush audio encoder"))?;
            Self::drain_audio(octx, out_index, out_tb, rw)?;
        }
        Ok(())
    }

    fn drain_audio(
        octx: &mut format::context::Output,
        out_index: usize,
        out_tb: Rational,
        rw: &mut AudioRewriter,
    ) -> Result<()> {
        let mut p = Packet::empty();
        while rw.encoder.receive_packet(&mut p).is_ok() {
            p.set_stream(out_index);
            p.rescale_ts(rw.encoder.time_base(), out_tb);
            p.set_position(-1);
            p.write_interleaved(octx)
                .map_err(|e| VeilError::ffmpeg("write edited audio packet", e))?;
        }
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
                    Self::splice_close(&mut self.octx, c.out_index, c.in_tb, c.out_tb, rw)?;
                } else {
                    Self::pump_audio(&mut self.octx, c.out_index, c.out_tb, rw, true)?;
                }
            }
        }
        self.octx
            .write_trailer()
            .map_err(|e| VeilError::ffmpeg("write trailer", e))?;
        Ok(self.packets_written)
    }
}

/// Converts frames to packed RGB24 at a given size, for the detectors.
#[derive(Default)]
pub struct RgbScaler {
    /// One scaler and output frame per (source format and size, target size), most recent
    /// last: detection asks for a few sizes per frame (face pass, small-face pass, plate
    /// view, full frame for tiles), and rebuilding the scaler and its output frame at each
    /// switch cost time and, at 4K, a 24 MiB allocation each time.
    cache: Vec<ScalerEntry>,
}

struct ScalerEntry {
    key: (Pixel, u32, u32, u32, u32),
    ctx: ffmpeg::software::scaling::Context,
    out: frame::Video,
}

/// Scalers kept by [`RgbScaler`]; detection uses at most four sizes.
const SCALER_CACHE: usize = 4;

impl RgbScaler {
    /// Scales `src` to `w`x`h` RGB24; returns the buffer and its stride.
    pub fn run(&mut self, src: &frame::Video, w: u32, h: u32) -> Result<(&[u8], usize)> {
        let key = (src.format(), src.width(), src.height(), w, h);
        match self.cache.iter().position(|e| e.key == key) {
            Some(i) => {
                let e = self.cache.remove(i);
                self.cache.push(e);
            }
            None => {
                let ctx = ffmpeg::software::scaling::Context::get(
                    key.0,
                    key.1,
                    key.2,
                    Pixel::RGB24,
                    w,
                    h,
                    ffmpeg::software::scaling::Flags::BILINEAR,
                )
                .map_err(|e| VeilError::ffmpeg("create scaler", e))?;
                if self.cache.len() >= SCALER_CACHE {
                    self.cache.remove(0);
                }
                self.cache.push(ScalerEntry {
                    key,
                    ctx,
                    out: frame::Video::new(Pixel::RGB24, w, h),
                });
            }
        }
        let e = self.cache.last_mut().expect("entry pushed above");
        e.ctx
            .run(src, &mut e.out)
            .map_err(|e| VeilError::ffmpeg("scale frame", e))?;
        let stride = e.out.stride(0);
        Ok((e.out.data(0), stride))
    }
}

/// Converts decoded frames into the working format (same size).
pub struct FormatConverter {
    ctx: Option<ffmpeg::software::scaling::Context>,
    key: (Pixel, u32, u32),
    pub target: Pixel,
}

impl FormatConverter {
    pub fn new(target: Pixel) -> Self {
        FormatConverter {
            ctx: None,
            key: (Pixel::None, 0, 0),
            target,
        }
    }

    /// Returns the frame in the working format at the first frame's size (a size change is an
    /// error: the encoder was opened for one size).
    pub fn convert(&mut self, f: frame::Video, w: u32, h: u32) -> Result<frame::Video> {
        if f.format() == self.target && f.width() == w && f.height() == h {
            return Ok(f);
        }
        if f.width() != w || f.height() != h {
            return Err(VeilError::ffmpeg(
                "decode",
                format!(
                    "frame size changed mid-stream from {w}x{h} to {}x{}; veil does not re-scale footage",
                    f.width(),
                    f.height()
                ),
            ));
        }
        let key = (f.format(), f.width(), f.height());
        if self.ctx.is_none() || self.key != key {
            self.ctx = Some(
                ffmpeg::software::scaling::Context::get(
                    key.0,
                    key.1,
                    key.2,
                    self.target,
                    w,
                    h,
                    ffmpeg::software::scaling::Flags::BICUBIC,
                )
                .map_err(|e| VeilError::ffmpeg("create converter", e))?,
            );
            self.key = key;
        }
        let mut out = frame::Video::new(self.target, w, h);
        self.ctx
            .as_mut()
            .expect("set above")
            .run(&f, &mut out)
            .map_err(|e| VeilError::ffmpeg("convert frame", e))?;
        out.set_pts(f.timestamp());
        Ok(out)
    }
}

/// An 8-bit grey image.
#[derive(Debug, Clone)]
pub struct Gray {
    pub width: usize,
    pub height: usize,
    pub data: Vec<u8>,
}

/// Decodes the frames whose indices (in presentation order, 0-based) are in `wanted`, as grey
/// images. Used by the evaluation tool; it never skips a frame silently.
pub fn decode_gray_frames(
    path: &Path,
    wanted: &std::collections::BTreeSet<u64>,
) -> Result<std::collections::BTreeMap<u64, Gray>> {
    let mut input = Input::open(path, 2)?;
    let (w, h) = (input.info.width, input.info.height);
    let mut scaler: Option<ffmpeg::software::scaling::Context> = None;
    let mut out = std::collections::BTreeMap::new();
    let mut index: u64 = 0;
    let mut decoded = frame::Video::empty();
    let mut gray = frame::Video::empty();
    let mut take = |dec: &mut ffmpeg::decoder::Video,
                    out: &mut std::collections::BTreeMap<u64, Gray>,
                    index: &mut u64|
     -> Result<()> {
        while dec.receive_frame(&mut decoded).is_ok() {
            if wanted.contains(index) {
                if scaler.is_none() {
                    scaler = Some(
                        ffmpeg::software::scaling::Context::get(
                            decoded.format(),
                            w,
                            h,
                            Pixel::GRAY8,
                            w,
                            h,
                            ffmpeg::software::scaling::Flags::POINT,
                        )
                        .map_err(|e| VeilError::ffmpeg("create scaler", e))?,
                    );
                }
                scaler
                    .as_mut()
                    .expect("set")
                    .run(&decoded, &mut gray)
                    .map_err(|e| VeilError::ffmpeg("scale", e))?;
                let stride = gray.stride(0);
                let mut data = Vec::with_capacity(w as usize * h as usize);
                for y in 0..h as usize {
                    data.extend_from_slice(&gray.data(0)[y * stride..y * stride + w as usize]);
                }
                out.insert(
                    *index,
                    Gray {
                        width: w as usize,
                        height: h as usize,
                        data,
                    },
                );
            }
            *index += 1;
        }
        Ok(())
    };
    let vi = input.video_index;
    let mut pkt = Packet::empty();
    loop {
        match pkt.read(&mut input.ictx) {
            Ok(()) => {}
            Err(ffmpeg::Error::Eof) => break,
            Err(e) => return Err(VeilError::ffmpeg("demux", e)),
        }
        if pkt.stream() == vi {
            input
                .decoder
                .send_packet(&pkt)
                .map_err(|e| VeilError::ffmpeg("decode", e))?;
            take(&mut input.decoder, &mut out, &mut index)?;
        }
    }
    input
        .decoder
        .send_eof()
        .map_err(|e| VeilError::ffmpeg("decode", e))?;
    take(&mut input.decoder, &mut out, &mut index)?;
    Ok(out)
}
