//! GPU use: where inference runs (`--device`) and whether FFmpeg's NVIDIA decoders and
//! encoders are used (`--hwaccel`), with a CPU fallback and one clear log line per stage.
//!
//! The CUDA paths exist only in builds with the `cuda` cargo feature. Without it, `auto`
//! means the CPU and asking for `cuda` is a configuration error that says how to get it.

use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};

use crate::error::{InvalidSetting, Result};

/// Where ONNX models run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Device {
    Cpu,
    Cuda,
    /// CUDA when it can be used, else the CPU (with one log line saying why).
    Auto,
}

/// Hardware video decode and encode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Hwaccel {
    None,
    Cuda,
    /// NVDEC/NVENC when they open, else FFmpeg's software codecs (with one log line).
    Auto,
}

/// True in builds with the `cuda` feature.
pub const CUDA_BUILT: bool = cfg!(feature = "cuda");

impl Device {
    /// The default: `auto` in CUDA builds, `cpu` otherwise.
    pub fn default_for_build() -> Device {
        if CUDA_BUILT {
            Device::Auto
        } else {
            Device::Cpu
        }
    }
    pub fn wants_cuda(self) -> bool {
        CUDA_BUILT && self != Device::Cpu
    }
}

impl Hwaccel {
    pub fn default_for_build() -> Hwaccel {
        if CUDA_BUILT {
            Hwaccel::Auto
        } else {
            Hwaccel::None
        }
    }
    pub fn wants_cuda(self) -> bool {
        CUDA_BUILT && self != Hwaccel::None
    }
}

/// Rejects GPU requests a CPU-only build cannot honour.
pub fn validate(device: Device, hw: Hwaccel) -> Result<()> {
    if !CUDA_BUILT && (device == Device::Cuda || hw == Hwaccel::Cuda) {
        return Err(InvalidSetting::Unsupported(
            "this veil was built without GPU support; rebuild with `cargo build --release --features cuda` (see deploy/GPU.md), or use --device cpu --hwaccel none".into(),
        )
        .into());
    }
    Ok(())
}

static WARNED_EP: AtomicBool = AtomicBool::new(false);
static WARNED_DEC: AtomicBool = AtomicBool::new(false);
static WARNED_ENC: AtomicBool = AtomicBool::new(false);

/// Logs a fallback once per process and stage.
pub fn fallback(stage: &'static str, why: &str) {
    let flag = match stage {
        "inference" => &WARNED_EP,
        "decode" => &WARNED_DEC,
        _ => &WARNED_ENC,
    };
    if !flag.swap(true, Ordering::Relaxed) {
        tracing::warn!("GPU {stage} unavailable ({why}); using the CPU for {stage}");
    }
}

/// The NVDEC decoder FFmpeg offers for a codec, if any.
pub fn nvdec_for(codec: ffmpeg_next::codec::Id) -> Option<&'static str> {
    use ffmpeg_next::codec::Id;
    match codec {
        Id::H264 => Some("h264_cuvid"),
        Id::HEVC => Some("hevc_cuvid"),
        Id::VP9 => Some("vp9_cuvid"),
        Id::AV1 => Some("av1_cuvid"),
        Id::MPEG4 => Some("mpeg4_cuvid"),
        _ => None,
    }
}

/// The NVENC encoder for a software encoder name.
pub fn nvenc_for(codec: &str) -> Option<&'static str> {
    match codec {
        "libx264" | "h264" => Some("h264_nvenc"),
        "libx265" | "hevc" => Some("hevc_nvenc"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_builds_refuse_cuda_with_a_way_out() {
        if CUDA_BUILT {
            return;
        }
        assert!(validate(Device::Cpu, Hwaccel::None).is_ok());
        assert!(validate(Device::Auto, Hwaccel::Auto).is_ok());
        let e = validate(Device::Cuda, Hwaccel::None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("--features cuda"), "{e}");
        assert!(validate(Device::Cpu, Hwaccel::Cuda).is_err());
        assert!(!Device::Auto.wants_cuda() && !Hwaccel::Auto.wants_cuda());
    }

    #[test]
    fn nvidia_codec_names() {
        assert_eq!(nvdec_for(ffmpeg_next::codec::Id::H264), Some("h264_cuvid"));
        assert_eq!(nvenc_for("libx264"), Some("h264_nvenc"));
        assert_eq!(nvenc_for("mpeg4"), None);
    }
}
