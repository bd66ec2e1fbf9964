//! Editing in token space: image variations and inpainting.
//!
//! A picture is encoded by the VQ-VAE's encoder and quantizer into codebook ids
//! ([`VQDiffusionPipeline::encode_images`]), one per latent pixel. Then:
//!
//! * **image variations** ([`GenerateRequest::with_strength`] s < 1): the tokens are noised
//!   forward to timestep ⌊s·T⌋ − 1 with the scheduler's cumulative mask-and-replace transition
//!   (keep w.p. ᾱ + β̄, any other class w.p. β̄, the mask w.p. γ̄) and denoised from there under
//!   the prompt; s = 1 starts from the mask, an ordinary generation;
//! * **inpainting** ([`GenerateRequest::with_mask`]): the masked latent pixels start at the
//!   mask class (or, with s < 1, noised) and are drawn anew; every other pixel is set back to
//!   its encoded token after every step, the last one included, so the kept region's tokens
//!   come out exactly as encoded. A picture-sized mask maps to latent pixels with
//!   [`VQDiffusionPipeline::latent_mask`]: a latent pixel is regenerated when any picture pixel
//!   of its patch is masked (brighter than 50 % grey).
//!
//! The crate documentation has an example.

use burn::tensor::backend::Backend;
use burn::tensor::{Bool, Int, Tensor, TensorData};
use image::{GrayImage, RgbImage};
use vq_kernels::KernelBackend;
use vq_scheduler::{UniformSource, VQDiffusionScheduler};

use crate::{GenerateRequest, PipelineError, VQDiffusionPipeline};

/// What the network sees of an inpainting's kept latent pixels before each call. Either way
/// they are set back to their encoded tokens after every step, so the result keeps them exactly;
/// the choice changes only what the model is conditioned on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeptRegion {
    /// The encoded tokens as they are: the most context, no extra noise drawn; on the shipped
    /// shapes model it drew the new object right less often than [`Self::Renoised`]
    /// (docs/editing-and-fast-sampling.md has the numbers).
    AsEncoded,
    /// The encoded tokens noised forward to the call's timestep, q(x_t | x₀) (RePaint's choice
    /// for continuous diffusion), so that the model sees a state consistent with t (the
    /// default). Draws one `[batch, K + 1, pixels]` uniform tensor per call.
    #[default]
    Renoised,
}

/// The range of an edit's strength: (0, 1]. The error reads after the argument's name.
pub fn check_strength(strength: f32) -> Result<(), String> {
    match strength > 0.0 && strength <= 1.0 {
        true => Ok(()),
        false => Err(format!("{strength} is outside (0, 1]")),
    }
}

impl GenerateRequest {
    /// Edits a picture instead of drawing from nothing: its codebook ids
    /// ([`VQDiffusionPipeline::encode_images`]), one row for the whole batch or one per image.
    /// Alone (strength 1, no mask) this is an ordinary generation; see [`Self::with_strength`]
    /// and [`Self::with_mask`].
    pub fn with_init_tokens(mut self, tokens: Vec<Vec<i64>>) -> Self {
        self.init_tokens = Some(tokens);
        self
    }

    /// Inpainting: draws only the latent pixels that are `true` anew and keeps every other one
    /// at its init token exactly. One row for the batch or one per image.
    pub fn with_mask(mut self, mask: Vec<Vec<bool>>) -> Self {
        self.mask = Some(mask);
        self
    }

    /// What the network sees of the kept latent pixels of an inpainting before each call
    /// ([`KeptRegion::Renoised`] by default).
    pub fn with_kept_region(mut self, kept_region: KeptRegion) -> Self {
        self.kept_region = kept_region;
        self
    }

    /// Image variations: how much of the chain draws the init tokens anew, in (0, 1]. The tokens
    /// (inside the mask, if any) are noised forward to timestep ⌊s·T⌋ − 1 and denoised from
    /// there: small s stays close to the picture, 1 starts from the mask.
    pub fn with_strength(mut self, strength: f32) -> Self {
        self.strength = strength;
        self
    }

    /// The editing arguments against the pipeline's sizes: N latent pixels, mask id K.
    pub(crate) fn validate_edit(&self, pixels: usize, mask_id: usize) -> Result<(), PipelineError> {
        check_strength(self.strength).map_err(|e| PipelineError::invalid("strength", e))?;
        let Some(tokens) = &self.init_tokens else {
            if self.mask.is_some() {
                return Err(PipelineError::invalid("mask", "needs init_tokens: the picture whose pixels it keeps"));
            }
            if self.strength < 1.0 {
                return Err(PipelineError::invalid(
                    "strength",
                    format!("{} needs init_tokens: the picture to vary", self.strength),
                ));
            }
            return Ok(());
        };
        if self.latents.is_some() {
            return Err(PipelineError::invalid("init_tokens", "give either latents or init_tokens, not both"));
        }
        let batch = self.batch_size();
        let rows_fit = |rows: usize| rows == 1 || rows == batch;
        if !rows_fit(tokens.len()) || tokens.iter().any(|row| row.len() != pixels) {
            let found: Vec<usize> = tokens.iter().map(Vec::len).collect();
            return Err(PipelineError::invalid(
                "init_tokens",
                format!("expected 1 or {batch} rows of {pixels} ids, found rows of lengths {found:?}"),
            ));
        }
        let max = mask_id as i64 - 1;
        if let Some(bad) = tokens.iter().flatten().find(|&&id| !(0..=max).contains(&id)) {
            return Err(PipelineError::invalid("init_tokens", format!("id {bad} is outside the codebook 0..={max}")));
        }
        if let Some(mask) = &self.mask {
            if !rows_fit(mask.len()) || mask.iter().any(|row| row.len() != pixels) {
                let found: Vec<usize> = mask.iter().map(Vec::len).collect();
                return Err(PipelineError::invalid(
                    "mask",
                    format!("expected 1 or {batch} rows of {pixels} latent pixels, found rows of lengths {found:?}"),
                ));
            }
            if let Some(row) = mask.iter().position(|row| !row.contains(&true)) {
                return Err(PipelineError::invalid(
                    "mask",
                    format!("row {row} selects no latent pixel: there is nothing to draw anew"),
                ));
            }
        }
        Ok(())
    }
}

/// The tokens an inpainting keeps, set back after every step.
pub(crate) struct KeptTokens<B: Backend> {
    /// The init tokens `[B, N]`.
    tokens: Tensor<B, 2, Int>,
    /// `true` where a latent pixel keeps its init token, `[B, N]`.
    pub(crate) keep: Tensor<B, 2, Bool>,
}

impl<B: Backend> KeptTokens<B> {
    /// `sample` with every kept pixel set back to its init token.
    pub(crate) fn impose(&self, sample: Tensor<B, 2, Int>) -> Tensor<B, 2, Int> {
        sample.mask_where(self.keep.clone(), self.tokens.clone())
    }
}

impl<B: KernelBackend> VQDiffusionPipeline<B> {
    /// The tokens the chain starts from at its first timestep `start` (≥ 0), and, for an
    /// inpainting, the tokens it keeps. Text-to-image: `latents`, or all-mask. An edit: the
    /// init tokens, inside the mask (everywhere without one) set to the mask class at strength 1,
    /// or noised forward to `start` below 1 (one uniform tensor drawn from `noise`).
    pub(crate) fn start_tokens(
        &self,
        request: &GenerateRequest,
        scheduler: &VQDiffusionScheduler<B>,
        start: usize,
        noise: &mut dyn UniformSource<B>,
    ) -> (Tensor<B, 2, Int>, Option<KeptTokens<B>>) {
        let (h, w) = self.latent_size();
        let (batch, pixels) = (request.batch_size(), h * w);
        let mask_id = scheduler.mask_class() as i64;
        let Some(init) = &request.init_tokens else {
            let sample = match &request.latents {
                Some(rows) => {
                    let ids: Vec<i64> = rows.iter().flatten().copied().collect();
                    Tensor::from_data(TensorData::new(ids, [batch, pixels]), &self.device)
                }
                None => Tensor::full([batch, pixels], mask_id, &self.device),
            };
            return (sample, None);
        };
        let tokens: Vec<i64> = per_image(init, batch).flatten().copied().collect();
        let tokens = Tensor::<B, 2, Int>::from_data(TensorData::new(tokens, [batch, pixels]), &self.device);
        let mask: Option<Vec<bool>> =
            request.mask.as_ref().map(|mask| per_image(mask, batch).flatten().copied().collect());
        // A mask that keeps nothing is no inpainting: nothing to re-impose or re-noise (so no
        // noise is drawn for it, and the chain equals one without a mask).
        let keeps_any = mask.as_ref().is_some_and(|values| values.iter().any(|&redraw| !redraw));
        let region =
            mask.map(|values| Tensor::<B, 2, Bool>::from_data(TensorData::new(values, [batch, pixels]), &self.device));
        let sample = match (request.strength < 1.0, &region) {
            (true, _) => scheduler.q_sample(tokens.clone(), start, region.clone(), noise),
            (false, Some(region)) => tokens.clone().mask_fill(region.clone(), mask_id),
            (false, None) => Tensor::full([batch, pixels], mask_id, &self.device),
        };
        let kept = region.filter(|_| keeps_any).map(|region| KeptTokens { tokens, keep: region.bool_not() });
        (sample, kept)
    }
}

/// `rows` as one row per image of a batch of `batch`: a single row stands for every image.
fn per_image<T>(rows: &[Vec<T>], batch: usize) -> impl Iterator<Item = &Vec<T>> {
    (0..batch).map(move |b| if rows.len() == 1 { &rows[0] } else { &rows[b] })
}

/// Pictures and masks in and out of token space.
impl<B: KernelBackend> VQDiffusionPipeline<B> {
    /// The size (width, height) of the model's pictures: the latent grid times the VQ-VAE's
    /// downsampling factor 2^(levels − 1).
    pub fn image_size(&self) -> (u32, u32) {
        let (h, w) = self.latent_size();
        let factor = 1 << (self.configs.vqvae.block_out_channels.len() - 1);
        ((w * factor) as u32, (h * factor) as u32)
    }

    /// Whether the VQ-VAE was loaded with its encoder, which editing needs to turn pictures into
    /// tokens (a decoder-only VQ-VAE draws pictures but cannot encode them).
    pub fn can_encode(&self) -> bool {
        self.vqvae_has_encoder
    }

    /// Pictures → codebook ids, one row of `h·w` row-major latent-pixel ids per picture: the
    /// VQ-VAE's encoder and quantizer (nearest codebook entry) on pixels mapped from [0, 255] to
    /// [−1, 1].
    ///
    /// Errors: a VQ-VAE without its encoder ([`PipelineError::NoEncoder`]); a picture that is not
    /// of [`Self::image_size`] ([`PipelineError::ImageSize`]; [`crate::fit_image`] resizes and crops).
    pub fn encode_images(&self, images: &[RgbImage]) -> Result<Vec<Vec<i64>>, PipelineError> {
        if !self.can_encode() {
            return Err(PipelineError::NoEncoder { path: self.dir.join("vqvae") });
        }
        let (width, height) = self.image_size();
        let mut values = Vec::with_capacity(images.len() * 3 * (width * height) as usize);
        for image in images {
            check_size("picture", image.dimensions(), (width, height))?;
            // HWC bytes → CHW values in [−1, 1].
            for channel in 0..3 {
                values.extend(image.as_raw()[channel..].iter().step_by(3).map(|&b| f32::from(b) / 127.5 - 1.0));
            }
        }
        if images.is_empty() {
            return Ok(Vec::new());
        }
        let shape = [images.len(), 3, height as usize, width as usize];
        let x = Tensor::<B, 4>::from_data(TensorData::new(values, shape), &self.device);
        let indices = self.vqvae.quantize(self.vqvae.encode(x)?)?.indices;
        let [batch, pixels] = indices.dims();
        let ids = indices.into_data().convert::<i64>().into_vec::<i64>().expect("indices read back as i64");
        Ok((0..batch).map(|b| ids[b * pixels..(b + 1) * pixels].to_vec()).collect())
    }

    /// Codebook ids → 8-bit RGB pictures, one per row (rounded as diffusers' `numpy_to_pil`).
    pub fn decode_images(&self, tokens: &[Vec<i64>]) -> Result<Vec<RgbImage>, PipelineError> {
        let (h, w) = self.latent_size();
        if let Some(row) = tokens.iter().position(|row| row.len() != h * w) {
            return Err(PipelineError::invalid(
                "tokens",
                format!("row {row} has {} ids, the model's latent grid {h}×{w} has {}", tokens[row].len(), h * w),
            ));
        }
        if tokens.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<i64> = tokens.iter().flatten().copied().collect();
        let ids = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [tokens.len(), h * w]), &self.device);
        let images = self.decode(ids)?;
        let [batch, height, width, _] = images.dims();
        let bytes = vq_model::to_rgb8(images).to_vec::<u8>().unwrap_or_default();
        let per_image = height * width * 3;
        Ok((0..batch)
            .map(|b| {
                let pixels = bytes[b * per_image..(b + 1) * per_image].to_vec();
                RgbImage::from_raw(width as u32, height as u32, pixels).expect("buffer matches its size")
            })
            .collect())
    }

    /// A picture-sized mask → the latent pixels to draw anew, row-major: a latent pixel is
    /// `true` when any mask pixel of its patch is brighter than 50 % grey (white: draw anew,
    /// black: keep).
    pub fn latent_mask(&self, mask: &GrayImage) -> Result<Vec<bool>, PipelineError> {
        let (width, height) = self.image_size();
        check_size("mask", mask.dimensions(), (width, height))?;
        let (h, w) = self.latent_size();
        let factor = width as usize / w;
        let mut latent = vec![false; h * w];
        for (x, y, pixel) in mask.enumerate_pixels() {
            // Above 50 %: 128 and brighter (127.5 is half of 255).
            if pixel.0[0] >= 128 {
                latent[y as usize / factor * w + x as usize / factor] = true;
            }
        }
        Ok(latent)
    }
}

fn check_size(what: &'static str, found: (u32, u32), expected: (u32, u32)) -> Result<(), PipelineError> {
    match found == expected {
        true => Ok(()),
        false => Err(PipelineError::ImageSize { what, found, expected }),
    }
}
