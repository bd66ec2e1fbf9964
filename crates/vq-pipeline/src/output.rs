//! Generated images and tokens: raw arrays, `image` buffers, PNG files with metadata, JSON.

use std::io::{BufWriter, Write};
use std::path::Path;

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor};

use crate::PipelineError;

/// The result of a generation.
#[derive(Debug, Clone)]
pub struct Generation<B: Backend> {
    /// Final tokens `[B, h·w]` in batch order (prompt-major).
    pub tokens: Tensor<B, 2, Int>,
    /// Images `[B, H, W, 3]` in [0, 1] (NHWC, diffusers' `output_type="np"`).
    pub images: Tensor<B, 4>,
    /// Things the user should know (e.g. a prompt cut at 77 tokens).
    pub warnings: Vec<String>,
}

impl<B: Backend> Generation<B> {
    /// The tokens as rows of row-major latent-pixel ids, one row per image.
    pub fn token_ids(&self) -> Vec<Vec<i64>> {
        let [batch, pixels] = self.tokens.dims();
        let ids = self.tokens.clone().into_data().convert::<i64>().to_vec::<i64>().unwrap_or_default();
        (0..batch).map(|b| ids[b * pixels..(b + 1) * pixels].to_vec()).collect()
    }

    /// The images as f32 values in [0, 1], NHWC, with their shape.
    pub fn image_arrays(&self) -> (Vec<f32>, [usize; 4]) {
        let shape = self.images.dims();
        let values = self.images.clone().into_data().convert::<f32>().to_vec::<f32>().unwrap_or_default();
        (values, shape)
    }

    /// 8-bit RGB images, rounded as diffusers' `numpy_to_pil` does.
    pub fn rgb8(&self) -> Vec<image::RgbImage> {
        let [batch, height, width, _] = self.images.dims();
        let bytes = vq_model::to_rgb8(self.images.clone()).to_vec::<u8>().unwrap_or_default();
        let per_image = height * width * 3;
        (0..batch)
            .map(|b| {
                let pixels = bytes[b * per_image..(b + 1) * per_image].to_vec();
                image::RgbImage::from_raw(width as u32, height as u32, pixels).expect("buffer matches its size")
            })
            .collect()
    }
}

/// Writes an RGB image as PNG with text chunks (keyword, text), e.g. the prompt and seed.
pub fn write_png(path: &Path, image: &image::RgbImage, text: &[(&str, String)]) -> Result<(), PipelineError> {
    let error = |message: String| PipelineError::Output { path: path.into(), message };
    let file = std::fs::File::create(path).map_err(|e| error(e.to_string()))?;
    encode_png(BufWriter::new(file), image, text).map_err(|e| error(e.to_string()))
}

/// Encodes an RGB image as PNG into `writer`, with one iTXt chunk per (keyword, text).
pub fn encode_png(
    writer: impl Write,
    image: &image::RgbImage,
    text: &[(&str, String)],
) -> Result<(), png::EncodingError> {
    let mut encoder = png::Encoder::new(writer, image.width(), image.height());
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    for (keyword, value) in text {
        // tEXt is Latin-1; iTXt carries any UTF-8 prompt.
        encoder.add_itxt_chunk(keyword.to_string(), value.clone())?;
    }
    let mut writer = encoder.write_header()?;
    writer.write_image_data(image.as_raw())?;
    writer.finish()
}
