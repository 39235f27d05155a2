//! Decode stage: opens the input, decodes its video into the working pixel format under one
//! damage policy, and hands the other streams' packets through. Stills are read here too.

mod convert;
mod gray;
mod log;
mod still;
mod stream;

use std::path::{Path, PathBuf};

use ffmpeg::{codec, format, media, Rational};
use ffmpeg_next as ffmpeg;

use crate::error::{Result, VeilError};

pub use convert::{
    chroma_shift, crop_rgb, luma, make_writable, working_format, yuv_to_rgb, FormatConverter,
    RgbScaler,
};
pub use gray::{decode_gray_frames, Gray};
pub use still::{is_image, load_rgb, load_upright, IMAGE_EXTS, MAX_IMAGE_PIXELS};
pub use stream::{DamagePolicy, DecodeStatus, Decoder};

/// Initialises FFmpeg once and keeps its log quiet unless asked.
pub fn init() -> Result<()> {
    static INIT: std::sync::OnceLock<std::result::Result<(), String>> = std::sync::OnceLock::new();
    INIT.get_or_init(|| {
        ffmpeg::init().map_err(|e| e.to_string())?;
        // Errors are watched (a demuxer's damage reports, `log`); the rest is printed only
        // with VEIL_FFMPEG_LOG.
        log::install(std::env::var_os("VEIL_FFMPEG_LOG").is_some());
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
    /// Keeps a file FFmpeg reads through `/proc/self/fd` open (see [`ffmpeg_path`]).
    _held: Option<std::fs::File>,
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
    /// Opens `path` with `threads` frame-decoding threads (one for 4K and larger frames).
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
        let (fpath, held) = ffmpeg_path(path, false)?;
        let ictx = format::input(&fpath)
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
        let threads = if crate::job::is_large_frame(pw, ph) {
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
            _held: held,
            ictx,
            video_index,
            decoder,
            info,
        })
    }

    pub fn time_base(&self) -> Rational {
        Rational::new(self.info.time_base[0], self.info.time_base[1])
    }

    /// Whether the file has an audio stream.
    pub fn has_audio(&self) -> bool {
        self.ictx
            .streams()
            .any(|s| s.parameters().medium() == media::Type::Audio)
    }

    /// The file's duration in seconds (the longest stream), when the container says.
    pub fn duration_s(&self) -> Option<f64> {
        let d = self.ictx.duration();
        (d > 0)
            .then(|| d as f64 / f64::from(ffmpeg::ffi::AV_TIME_BASE))
            .or(self.info.duration_s)
    }

    /// One frame at the stream's frame rate, in time-base ticks.
    pub fn frame_ticks(&self) -> i64 {
        let tb = self.time_base();
        let fr = self.info.frame_rate;
        let ticks =
            (tb.denominator() as f64 * fr[1] as f64) / (tb.numerator() as f64 * fr[0] as f64);
        if ticks.is_finite() {
            (ticks.round() as i64).max(1)
        } else {
            1
        }
    }
}

impl VideoInfo {
    /// Frames per second (30 when the container does not say).
    pub fn fps(&self) -> f64 {
        let f = self.frame_rate[0] as f64 / self.frame_rate[1].max(1) as f64;
        if f.is_finite() && f > 0.0 {
            f
        } else {
            30.0
        }
    }
}

/// A path FFmpeg can open for `path`. FFmpeg takes UTF-8 strings; a name that is not UTF-8
/// is opened here and handed over as `/proc/self/fd/N` (the returned file must stay open
/// while FFmpeg uses the path). `write` creates (or truncates) the file.
pub fn ffmpeg_path(path: &Path, write: bool) -> Result<(PathBuf, Option<std::fs::File>)> {
    if path.to_str().is_some() {
        return Ok((path.to_path_buf(), None));
    }
    let file = if write {
        std::fs::File::create(path)
    } else {
        std::fs::File::open(path)
    }
    .map_err(|e| VeilError::io("cannot open", path, e))?;
    #[cfg(unix)]
    {
        use std::os::fd::AsRawFd;
        let p = PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()));
        if p.exists() {
            return Ok((p, Some(file)));
        }
    }
    Err(VeilError::Input {
        path: path.to_path_buf(),
        msg: "the file name is not valid UTF-8 and this system cannot hand FFmpeg the open file; rename it".into(),
    })
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
