//! Grey frames for the evaluation tool, decoded under the fail-closed policy: a frame that
//! cannot be decoded is an error, never silently missing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use ffmpeg::format::Pixel;
use ffmpeg_next as ffmpeg;

use super::{DamagePolicy, DecodeStatus, Decoder, Input};
use crate::error::Result;

/// An 8-bit grey image.
#[derive(Debug, Clone)]
pub struct Gray {
    pub width: usize,
    pub height: usize,
    pub data: Vec<u8>,
}

/// Decodes the frames whose indices (in presentation order, 0-based) are in `wanted`, as grey
/// images.
pub fn decode_gray_frames(path: &Path, wanted: &BTreeSet<u64>) -> Result<BTreeMap<u64, Gray>> {
    let input = Input::open(path, 2)?;
    let (w, h) = (input.info.width as usize, input.info.height as usize);
    let mut dec = Decoder::new(input, DamagePolicy::FailClosed, Some(Pixel::GRAY8));
    let mut out = BTreeMap::new();
    let mut index: u64 = 0;
    let last = wanted.iter().next_back().copied();
    loop {
        match dec.receive()? {
            DecodeStatus::Frame { frame, .. } => {
                if wanted.contains(&index) {
                    let stride = frame.stride(0);
                    let mut data = Vec::with_capacity(w * h);
                    for y in 0..h {
                        data.extend_from_slice(&frame.data(0)[y * stride..y * stride + w]);
                    }
                    out.insert(
                        index,
                        Gray {
                            width: w,
                            height: h,
                            data,
                        },
                    );
                }
                index += 1;
                if last.is_some_and(|l| index > l) {
                    break;
                }
            }
            DecodeStatus::End => break,
            DecodeStatus::Packet(_) | DecodeStatus::Damaged { .. } => {}
        }
    }
    Ok(out)
}
