//! The image file formats of `--output`, chosen by the file's extension, and their encoders:
//! PNG with the parameters in iTXt chunks; JPEG (quality 95) and lossless WebP with the
//! parameters as EXIF (see [`crate::exif`]).

use std::io::Write;
use std::path::Path;

use image::{ExtendedColorType, ImageEncoder, RgbImage};

use crate::error::CliError;
use crate::exif::{ascii_json, exif};

/// JPEG quality (1–100): high enough that the 8-bit pixels barely change.
const JPEG_QUALITY: u8 = 95;

/// The largest EXIF structure a JPEG APP1 segment holds: 65,535 bytes minus the segment's
/// length field (2) and its `Exif\0\0` header (6).
const MAX_JPEG_EXIF: usize = 65_535 - 2 - 6;

/// An image file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    /// `.png`, and files without an extension.
    Png,
    /// `.jpg`, `.jpeg`.
    Jpeg,
    /// `.webp` (lossless).
    WebP,
}

/// What the parameters of an image became in its file (ordered from all kept to none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kept {
    /// All of them.
    All,
    /// All but the batch's list of prompts, which did not fit (JPEG's 64 KiB EXIF segment).
    WithoutBatchPrompts,
    /// None: even the image's own parameters do not fit.
    None,
}

impl ImageFormat {
    /// The format `path`'s extension names (case-insensitive): `png`, `jpg`/`jpeg`, `webp`;
    /// no extension is PNG; any other extension is a usage error.
    pub fn of(path: &Path) -> Result<Self, CliError> {
        let Some(extension) = path.extension() else { return Ok(Self::Png) };
        match extension.to_string_lossy().to_ascii_lowercase().as_str() {
            "png" => Ok(Self::Png),
            "jpg" | "jpeg" => Ok(Self::Jpeg),
            "webp" => Ok(Self::WebP),
            other => Err(CliError::Usage(format!(
                "--output {}: unknown image format `.{other}` (the extension picks the format: .png, .jpg or .jpeg, .webp)",
                path.display()
            ))),
        }
    }

    /// Encodes `image` with `parameters` (keyword, text) into `out`. `batch_prompts` names the
    /// parameter that JPEG may drop when the whole set does not fit its EXIF segment.
    pub fn encode(
        self,
        image: &RgbImage,
        parameters: &[(&str, String)],
        batch_prompts: &str,
        out: impl Write,
    ) -> Result<Kept, String> {
        let software = concat!("vq-diffusion ", env!("CARGO_PKG_VERSION"));
        match self {
            Self::Png => vq_pipeline::encode_png(out, image, parameters).map(|()| Kept::All).map_err(|e| e.to_string()),
            Self::WebP => {
                let mut encoder = image::codecs::webp::WebPEncoder::new_lossless(out);
                encoder.set_exif_metadata(exif(software, &ascii_json(parameters))).map_err(|e| e.to_string())?;
                write(encoder, image).map(|()| Kept::All)
            }
            Self::Jpeg => {
                let without_prompts: Vec<(&str, String)> =
                    parameters.iter().filter(|(k, _)| *k != batch_prompts).cloned().collect();
                let (blob, kept) = [(parameters, Kept::All), (&without_prompts[..], Kept::WithoutBatchPrompts)]
                    .into_iter()
                    .map(|(p, kept)| (exif(software, &ascii_json(p)), kept))
                    .find(|(blob, _)| blob.len() <= MAX_JPEG_EXIF)
                    .unwrap_or((Vec::new(), Kept::None));
                let mut encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(out, JPEG_QUALITY);
                if !blob.is_empty() {
                    encoder.set_exif_metadata(blob).map_err(|e| e.to_string())?;
                }
                write(encoder, image).map(|()| kept)
            }
        }
    }
}

fn write(encoder: impl ImageEncoder, image: &RgbImage) -> Result<(), String> {
    encoder
        .write_image(image.as_raw(), image.width(), image.height(), ExtendedColorType::Rgb8)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_extension_picks_the_format() {
        for (name, format) in [
            ("a.png", ImageFormat::Png),
            ("a.PNG", ImageFormat::Png),
            ("img", ImageFormat::Png),
            ("a.jpg", ImageFormat::Jpeg),
            ("a.JPEG", ImageFormat::Jpeg),
            ("dir.x/a.webp", ImageFormat::WebP),
        ] {
            assert_eq!(ImageFormat::of(Path::new(name)).unwrap(), format, "{name}");
        }
        for name in ["a.gif", "a.txt", "a.png.bak", "a."] {
            let error = ImageFormat::of(Path::new(name)).unwrap_err();
            assert_eq!(error.exit_code(), 2, "{name}");
            assert!(error.to_string().contains(".png, .jpg or .jpeg, .webp"), "{error}");
        }
    }

    #[test]
    fn a_jpeg_drops_the_batch_prompts_when_they_do_not_fit_and_says_so() {
        let image = RgbImage::new(8, 8);
        let small = [("prompt", "a cat".to_string()), ("prompts", "[\"a cat\"]".to_string())];
        let mut bytes = Vec::new();
        assert_eq!(ImageFormat::Jpeg.encode(&image, &small, "prompts", &mut bytes), Ok(Kept::All));
        let long = [("prompt", "a cat".to_string()), ("prompts", "x".repeat(70_000))];
        assert_eq!(ImageFormat::Jpeg.encode(&image, &long, "prompts", &mut bytes), Ok(Kept::WithoutBatchPrompts));
        let longer = [("prompt", "x".repeat(70_000))];
        assert_eq!(ImageFormat::Jpeg.encode(&image, &longer, "prompts", &mut bytes), Ok(Kept::None));
        // WebP keeps everything.
        assert_eq!(ImageFormat::WebP.encode(&image, &long, "prompts", &mut bytes), Ok(Kept::All));
    }
}
