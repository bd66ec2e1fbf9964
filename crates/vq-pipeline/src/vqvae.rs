//! Loading the VQ-VAE with or without its encoder.
//!
//! Text-to-image needs only the codebook, `post_quant_conv` and the decoder; editing a picture
//! also needs the encoder and `quant_conv`. A weights file that holds none of the encoder's
//! tensors (a decoder-only export) loads as a VQ-VAE that can draw but not encode
//! ([`crate::VQDiffusionPipeline::can_encode`] is false, and encoding says why). A file that
//! lacks only some of them is as broken as before and fails with the strict loader's error.

use std::path::Path;

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::tensor::backend::Backend;
use burn::tensor::get_device_settings;
use vq_kernels::KernelBackend;
use vq_model::{Decoder, LoadError, VQModel, VQModelConfig, VectorQuantizer};
use vq_weights::WeightsError;

use crate::PipelineError;

/// The part of a [`VQModel`] that turns codebook ids into pixels, with the same field names (so
/// that its parameters' paths are the checkpoint's keys).
#[derive(Module, Debug)]
struct DecodingHalf<B: Backend> {
    quantize: VectorQuantizer<B>,
    post_quant_conv: Conv2d<B>,
    decoder: Decoder<B>,
}

/// Loads `dir` (a `vqvae/` folder of `config`) strictly; if its weights lack exactly the
/// encoder's tensors, loads the decoding half alone. Returns the model and whether its encoder
/// was loaded (the encoder of a decoder-only model keeps random, never materialised initial
/// weights).
pub(crate) fn load_vqvae<B: KernelBackend>(
    config: &VQModelConfig,
    dir: &Path,
    variant: Option<&str>,
    device: &B::Device,
) -> Result<(VQModel<B>, bool), PipelineError> {
    let error = match VQModel::from_config(config, dir, variant, device) {
        Ok(model) => return Ok((model, true)),
        Err(error) => error,
    };
    let LoadError::Weights(WeightsError::Missing { missing, .. }) = &error else {
        return Err(error.into());
    };
    let encoder_only = missing.iter().all(|(key, _)| key.starts_with("encoder.") || key.starts_with("quant_conv."));
    if !encoder_only {
        return Err(error.into());
    }
    // An unexpected encoder key in the file (a partial encoder) fails this load: report the
    // strict loader's list of missing tensors then.
    decoder_only(config, dir, variant, device).map(|model| (model, false)).map_err(|_| error.into())
}

fn decoder_only<B: Backend>(
    config: &VQModelConfig,
    dir: &Path,
    variant: Option<&str>,
    device: &B::Device,
) -> Result<VQModel<B>, PipelineError> {
    let weights = vq_weights::find_weights_file(dir, "diffusion_pytorch_model", variant)?;
    let model = config.init::<B>(device).map_err(LoadError::from)?;
    let dtype = get_device_settings::<B>(device).float_dtype.into();
    let half =
        DecodingHalf { quantize: model.quantize, post_quant_conv: model.post_quant_conv, decoder: model.decoder };
    let half = vq_weights::load_module(half, &weights, &vq_model::keys::key_map(), dtype)?;
    Ok(VQModel {
        encoder: model.encoder,
        quant_conv: model.quant_conv,
        quantize: half.quantize,
        post_quant_conv: half.post_quant_conv,
        decoder: half.decoder,
    })
}
