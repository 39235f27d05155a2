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

/// Reads an image as RGB, turned upright as its EXIF orientation says (so faces are detected
/// the way a viewer sees them, and the output, written without EXIF, shows the same way).
pub fn load_rgb(path: &Path) -> Result<RgbImage> {
    load_upright(path).map(|(img, _)| img)
}

/// [`load_rgb`], and the EXIF orientation that was applied (`NoTransforms` when none).
pub fn load_upright(path: &Path) -> Result<(RgbImage, image::metadata::Orientation)> {
    let bad = |e: image::ImageError| VeilError::Input {
        path: path.to_path_buf(),
        msg: format!("not a readable image ({e})"),
    };
    let reader = || -> Result<ImageReader<std::io::BufReader<std::fs::File>>> {
        ImageReader::open(path)
            .map_err(|e| VeilError::io("cannot open image", path, e))?
            .with_guessed_format()
            .map_err(|e| VeilError::io("cannot read image", path, e))
    };
    let (w, h) = reader()?.into_dimensions().map_err(bad)?;
    if w as u64 * h as u64 > MAX_IMAGE_PIXELS {
        return Err(VeilError::Input {
            path: path.to_path_buf(),
            msg: format!("image {w}x{h} exceeds the {MAX_IMAGE_PIXELS}-pixel limit"),
        });
    }
    use image::ImageDecoder;
    let mut decoder = reader()?.into_decoder().map_err(bad)?;
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = image::DynamicImage::from_decoder(decoder).map_err(bad)?;
    img.apply_orientation(orientation);
    Ok((img.to_rgb8(), orientation))
}
