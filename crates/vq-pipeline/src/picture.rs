//! Pictures from users: reading and decoding them with bounded memory, and fitting them to the
//! model's size.
//!
//! A picture handed to `--init-image` or `--mask` is as untrusted as a weights file: its header
//! can declare any size, its compressed data can expand a thousandfold. [`read_picture`] reads
//! only a regular file of at most [`PICTURE_MAX_BYTES`], and [`decode_picture`] refuses a
//! picture whose sides exceed [`PICTURE_MAX_SIDE`] or whose decoding would allocate more than
//! [`PICTURE_MAX_ALLOC`], before decoding it. [`fit_image`] never allocates more than its input
//! and its output, whatever the aspect ratio.

use std::io::Cursor;
use std::path::Path;

use image::imageops::{self, FilterType};
use image::{DynamicImage, ImageBuffer, ImageReader, Limits, Pixel, Primitive};
use num_traits::ToPrimitive;

use crate::PipelineError;

/// Largest picture file read: 64 MiB.
pub const PICTURE_MAX_BYTES: u64 = 64 << 20;

/// Longest side of a picture decoded: 8,192 pixels (the models draw 256 × 256 or smaller).
pub const PICTURE_MAX_SIDE: u32 = 8_192;

/// Most memory a picture's decoding may allocate: 256 MiB (an 8,192 × 8,192 RGBA picture at 8
/// bits a channel).
pub const PICTURE_MAX_ALLOC: u64 = 256 << 20;

/// Reads and decodes the picture at `path` (PNG, and JPEG or WebP where the `image` crate's
/// features for them are on), with [`decode_picture`]'s limits.
///
/// # Errors
///
/// [`PipelineError::Io`] when the file is missing, not a regular file or larger than
/// [`PICTURE_MAX_BYTES`]; [`PipelineError::Picture`] when it cannot be decoded.
pub fn read_picture(path: &Path) -> Result<DynamicImage, PipelineError> {
    let bytes = vq_weights::read_file_capped(path, PICTURE_MAX_BYTES)
        .map_err(|source| PipelineError::Io { path: path.to_path_buf(), source })?;
    decode_picture(&bytes).map_err(|e| PipelineError::Picture { path: path.to_path_buf(), message: e.to_string() })
}

/// Decodes a picture from `bytes`, its format guessed from its first bytes.
///
/// # Errors
///
/// The `image` crate's error for an unknown format, malformed data, a side longer than
/// [`PICTURE_MAX_SIDE`] or a decoding that would allocate more than [`PICTURE_MAX_ALLOC`], and
/// for a picture with no pixels.
pub fn decode_picture(bytes: &[u8]) -> Result<DynamicImage, image::ImageError> {
    let mut reader = ImageReader::new(Cursor::new(bytes)).with_guessed_format()?;
    let mut limits = Limits::default();
    limits.max_image_width = Some(PICTURE_MAX_SIDE);
    limits.max_image_height = Some(PICTURE_MAX_SIDE);
    limits.max_alloc = Some(PICTURE_MAX_ALLOC);
    reader.limits(limits);
    let picture = reader.decode()?;
    if picture.width() == 0 || picture.height() == 0 {
        return Err(image::ImageError::Limits(image::error::LimitError::from_kind(
            image::error::LimitErrorKind::DimensionError,
        )));
    }
    Ok(picture)
}

/// A picture resized (Lanczos) so that it covers `size` and cropped to it around its centre
/// — what the original VQ-Diffusion's validation preprocessing does to a non-square picture.
/// Works on pictures and masks alike (a resized mask is thresholded by
/// [`VQDiffusionPipeline::latent_mask`](crate::VQDiffusionPipeline::latent_mask)).
///
/// The centred window of `size`'s aspect ratio is cut first and then resized (averaged down
/// first where it is four or more times too large), so the work and memory are bounded by the
/// picture and the result: a 1 × 8,192 strip resized first to cover 64 × 64 would grow to half
/// a million rows. A picture without pixels gives a black one.
pub fn fit_image<P>(
    image: &ImageBuffer<P, Vec<P::Subpixel>>,
    (width, height): (u32, u32),
) -> ImageBuffer<P, Vec<P::Subpixel>>
where
    P: Pixel + 'static,
    P::Subpixel: 'static,
{
    let (w, h) = image.dimensions();
    if (w, h) == (width, height) {
        return image.clone();
    }
    if w == 0 || h == 0 || width == 0 || height == 0 {
        return ImageBuffer::new(width, height);
    }
    let (window_w, window_h) = cover_window((w, h), (width, height));
    let origin = ((w - window_w) / 2, (h - window_h) / 2);
    // Lanczos' support grows with the reduction (6 source pixels per output pixel and side, times
    // the ratio): a large window is first averaged down to two to four times the result's size,
    // in one pass over it, and Lanczos does the rest.
    let factor = (window_w / width.saturating_mul(2)).min(window_h / height.saturating_mul(2));
    let window = if factor >= 2 {
        box_shrink(image, origin, (window_w, window_h), factor)
    } else {
        imageops::crop_imm(image, origin.0, origin.1, window_w, window_h).to_image()
    };
    imageops::resize(&window, width, height, FilterType::Lanczos3)
}

/// The window of `image` at `origin` of `size`, shrunk by `factor` on each side: each pixel the
/// mean of a `factor × factor` block (the window's last `size % factor` columns and rows are
/// left out).
fn box_shrink<P>(
    image: &ImageBuffer<P, Vec<P::Subpixel>>,
    origin: (u32, u32),
    size: (u32, u32),
    factor: u32,
) -> ImageBuffer<P, Vec<P::Subpixel>>
where
    P: Pixel + 'static,
    P::Subpixel: 'static,
{
    let (w, h) = (size.0 / factor, size.1 / factor);
    let channels = usize::from(P::CHANNEL_COUNT);
    let (stride, factor_px) = (image.width() as usize * channels, factor as usize);
    // Integer channels round to the nearest level; float ones (maximum 1.0) keep the mean.
    let rounding = if P::Subpixel::DEFAULT_MAX_VALUE.to_f64().is_some_and(|max| max > 1.0) { 0.5 } else { 0.0 };
    let samples = f64::from(factor * factor);
    let samples_in = image.as_raw();
    let mut sums = vec![0f64; w as usize * channels];
    let mut out = ImageBuffer::<P, Vec<P::Subpixel>>::new(w, h);
    for (block_y, out_row) in out.as_mut().chunks_exact_mut(w as usize * channels).enumerate() {
        sums.fill(0.0);
        for y in 0..factor_px {
            let row = (origin.1 as usize + block_y * factor_px + y) * stride + origin.0 as usize * channels;
            let row = &samples_in[row..row + w as usize * factor_px * channels];
            for (sum, block) in sums.chunks_exact_mut(channels).zip(row.chunks_exact(factor_px * channels)) {
                for pixel in block.chunks_exact(channels) {
                    for (total, value) in sum.iter_mut().zip(pixel) {
                        *total += value.to_f64().unwrap_or(0.0);
                    }
                }
            }
        }
        for (value, total) in out_row.iter_mut().zip(&sums) {
            *value = num_traits::NumCast::from(total / samples + rounding).unwrap_or(*value);
        }
    }
    out
}

/// The largest window of a `(w, h)` picture with the aspect ratio of `(width, height)`, at
/// least one pixel a side (all sides non-zero).
fn cover_window((w, h): (u32, u32), (width, height): (u32, u32)) -> (u32, u32) {
    let (w, h, width, height) = (u64::from(w), u64::from(h), u64::from(width), u64::from(height));
    // Rounded to the nearest pixel; each side is at most the picture's own.
    let side = |a: u64, num: u64, den: u64| ((a * num + den / 2) / den).clamp(1, a) as u32;
    if w * height > h * width {
        (side(h, width, height), h as u32)
    } else {
        (w as u32, side(w, height, width))
    }
}
