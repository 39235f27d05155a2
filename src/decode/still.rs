//! Still images (JPEG, PNG, ...), decoded with the `image` crate.

use std::path::Path;

use image::{ImageReader, RgbImage};

use crate::error::{Result, VeilError};

/// The still-image extensions veil reads (through the `image` crate, not FFmpeg).
pub const IMAGE_EXTS: [&str; 5] = ["jpg", "jpeg", "png", "bmp", "webp"];

/// True when the path names a still image veil redacts through the image path.
pub fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .map(|e| IMAGE_EXTS.contains(&e.to_ascii_lowercase().as_str()))
        .unwrap_or(false)
}

/// Largest image accepted, in pixels (guards against decompression bombs).
pub const MAX_IMAGE_PIXELS: u64 = 100_000_000;

pub fn load_rgb(path: &Path) -> Result<RgbImage> {
    let reader = ImageReader::open(path)
        .map_err(|e| VeilError::io("cannot open image", path, e))?
        .with_guessed_format()
        .map_err(|e| VeilError::io("cannot read image", path, e))?;
    let (w, h) = reader.into_dimensions().map_err(|e| VeilError::Input {
        path: path.to_path_buf(),
        msg: format!("not a readable image ({e})"),
    })?;
    if w as u64 * h as u64 > MAX_IMAGE_PIXELS {
        return Err(VeilError::Input {
            path: path.to_path_buf(),
            msg: format!("image {w}x{h} exceeds the {MAX_IMAGE_PIXELS}-pixel limit"),
        });
    }
    let img = ImageReader::open(path)
        .map_err(|e| VeilError::io("cannot open image", path, e))?
        .with_guessed_format()
        .map_err(|e| VeilError::io("cannot read image", path, e))?
        .decode()
        .map_err(|e| VeilError::Input {
            path: path.to_path_buf(),
            msg: format!("not a readable image ({e})"),
        })?;
    Ok(img.to_rgb8())
}
