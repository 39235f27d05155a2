//! Pixel formats: the working format frames are redacted and encoded in, conversion into it,
//! and the RGB pictures the detectors see.

use ffmpeg::format::Pixel;
use ffmpeg::frame;
use ffmpeg_next as ffmpeg;

use crate::error::{Result, VeilError};
use crate::motion::Luma;

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

/// The luma plane of a decoded frame in a planar 8-bit format.
pub fn luma(f: &frame::Video) -> Luma<'_> {
    Luma {
        data: f.data(0),
        stride: f.stride(0),
        width: f.width() as usize,
        height: f.height() as usize,
    }
}

/// One pixel's luma and centred chroma (`u`, `v` minus 128) as RGB, BT.601, limited range
/// (or full range for `YUVJ*` frames, `full`).
pub fn yuv_to_rgb(l: f32, u: f32, v: f32, full: bool) -> [u8; 3] {
    let (l, k) = if full {
        (l, 1.0)
    } else {
        ((l - 16.0) * 1.164, 1.138)
    };
    let r = l + 1.402 * k * v;
    let g = l - 0.344 * k * u - 0.714 * k * v;
    let b = l + 1.772 * k * u;
    [r, g, b].map(|c| c.round().clamp(0.0, 255.0) as u8)
}

/// A region of a planar 8-bit YUV frame (`x0, y0, x1, y1` in frame pixels) as packed RGB24
/// of `ow`x`oh`, bilinear, with BT.601 coefficients (limited range, or full for `YUVJ*`).
/// Used for the small face crops between keyframes, where a scaler context per crop size
/// would cost more than the conversion.
pub fn crop_rgb(f: &frame::Video, region: (f32, f32, f32, f32), ow: usize, oh: usize) -> Vec<u8> {
    let (fw, fh) = (f.width() as usize, f.height() as usize);
    let (sx, sy) = chroma_shift(f.format());
    let full = matches!(f.format(), Pixel::YUVJ420P | Pixel::YUVJ444P);
    let (x0, y0, x1, y1) = region;
    let (ys, us, vs) = (f.stride(0), f.stride(1), f.stride(2));
    let (yp, up, vp) = (f.data(0), f.data(1), f.data(2));
    let (cw, ch) = (fw.div_ceil(1 << sx), fh.div_ceil(1 << sy));
    let sample = |plane: &[u8], stride: usize, w: usize, h: usize, x: f32, y: f32| -> f32 {
        let x = x.clamp(0.0, (w - 1) as f32);
        let y = y.clamp(0.0, (h - 1) as f32);
        let (xa, ya) = (x as usize, y as usize);
        let (xb, yb) = ((xa + 1).min(w - 1), (ya + 1).min(h - 1));
        let (fx, fy) = (x - xa as f32, y - ya as f32);
        let at = |xx: usize, yy: usize| plane[yy * stride + xx] as f32;
        let top = at(xa, ya) + (at(xb, ya) - at(xa, ya)) * fx;
        let bot = at(xa, yb) + (at(xb, yb) - at(xa, yb)) * fx;
        top + (bot - top) * fy
    };
    let (kx, ky) = ((x1 - x0) / ow.max(1) as f32, (y1 - y0) / oh.max(1) as f32);
    let mut out = Vec::with_capacity(ow * oh * 3);
    for oy in 0..oh {
        let y = y0 + (oy as f32 + 0.5) * ky - 0.5;
        let cy = (y + 0.5) / (1 << sy) as f32 - 0.5;
        for ox in 0..ow {
            let x = x0 + (ox as f32 + 0.5) * kx - 0.5;
            let cx = (x + 0.5) / (1 << sx) as f32 - 0.5;
            let l = sample(yp, ys, fw, fh, x, y);
            let u = sample(up, us, cw, ch, cx, cy) - 128.0;
            let v = sample(vp, vs, cw, ch, cx, cy) - 128.0;
            out.extend(yuv_to_rgb(l, u, v, full));
        }
    }
    out
}
