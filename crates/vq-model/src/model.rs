//! `VQModel` (`diffusers/models/autoencoders/vq_model.py`): encoder, `quant_conv`, vector
//! quantizer, `post_quant_conv`, decoder.

use std::path::Path;

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::tensor::backend::Backend;
use burn::tensor::get_device_settings;
use burn::tensor::DType;
use burn::tensor::{ElementConversion, Int, Tensor};
use vq_kernels::KernelBackend;

use crate::config::VQModelConfig;
use crate::decoder::{Decoder, DecoderConfig};
use crate::encoder::{Encoder, EncoderConfig};
use crate::error::{ConfigError, InputError, LoadError};
use crate::keys::key_map;
use crate::quantizer::{Quantized, VectorQuantizer, VectorQuantizerConfig};

/// A VQ-VAE / VQGAN as diffusers' `VQModel` builds it.
///
/// * [`encode`](Self::encode): image → latents (`quant_conv` output, not quantized);
/// * [`quantize`](Self::quantize): latents → nearest codes, indices, commitment loss;
/// * [`decode`](Self::decode): latents → image, optionally quantizing first;
/// * [`decode_indices`](Self::decode_indices): code indices → image (VQ-Diffusion's path).
#[derive(Module, Debug)]
pub struct VQModel<B: Backend> {
    /// `encoder.*`.
    pub encoder: Encoder<B>,
    /// `quant_conv`: 1×1, `latent_channels` → `vq_embed_dim`.
    pub quant_conv: Conv2d<B>,
    /// `quantize.embedding.weight`: the codebook.
    pub quantize: VectorQuantizer<B>,
    /// `post_quant_conv`: 1×1, `vq_embed_dim` → `latent_channels`.
    pub post_quant_conv: Conv2d<B>,
    /// `decoder.*`.
    pub decoder: Decoder<B>,
}

/// The result of [`VQModel::forward`]: diffusers' `DecoderOutput`.
#[derive(Debug, Clone)]
pub struct DecoderOutput<B: Backend> {
    /// `[batch, out_channels, height, width]`: the reconstruction, roughly in `[−1, 1]`.
    pub sample: Tensor<B, 4>,
    /// `[1]`: the commitment loss of the quantization (see [`Quantized::commit_loss`]).
    pub commit_loss: Tensor<B, 1>,
}

impl VQModelConfig {
    /// Validates the config and builds the model with random weights (load real ones with
    /// [`VQModel::load_weights`]).
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<VQModel<B>, ConfigError> {
        self.validate()?;
        let activation = self.activation()?;
        let groups = self.norm_num_groups;
        let encoder = EncoderConfig::new(
            self.in_channels,
            self.latent_channels,
            self.down_blocks()?,
            self.block_out_channels.clone(),
            self.layers_per_block,
            groups,
            activation,
            self.mid_block_add_attention,
        )
        .init(device);
        let decoder = DecoderConfig::new(
            self.latent_channels,
            self.out_channels,
            self.up_blocks()?,
            self.block_out_channels.clone(),
            self.layers_per_block,
            groups,
            activation,
            self.mid_block_add_attention,
        )
        .init(device);
        let embed_dim = self.embed_dim();
        Ok(VQModel {
            encoder,
            quant_conv: Conv2dConfig::new([self.latent_channels, embed_dim], [1, 1]).init(device),
            quantize: VectorQuantizerConfig::new(self.num_vq_embeddings, embed_dim).init(device),
            post_quant_conv: Conv2dConfig::new([embed_dim, self.latent_channels], [1, 1]).init(device),
            decoder,
        })
    }
}

impl<B: KernelBackend> VQModel<B> {
    /// Builds the model from a diffusers `vqvae/` folder: `config.json` and
    /// `diffusion_pytorch_model[.<variant>].{safetensors,bin}` (safetensors preferred;
    /// `variant = Some("fp16")` for the half-precision files). Parameters take the device's
    /// default float dtype, whatever the file stores.
    pub fn from_pretrained(folder: &Path, variant: Option<&str>, device: &B::Device) -> Result<Self, LoadError> {
        Self::from_config(&VQModelConfig::from_file(&folder.join("config.json"))?, folder, variant, device)
    }

    /// [`from_pretrained`](Self::from_pretrained) with the folder's config already read (a
    /// caller that also keeps the config reads it once).
    pub fn from_config(
        config: &VQModelConfig,
        folder: &Path,
        variant: Option<&str>,
        device: &B::Device,
    ) -> Result<Self, LoadError> {
        let weights = vq_weights::find_weights_file(folder, "diffusion_pytorch_model", variant)?;
        config.check_against_weights(&folder.join("config.json"), &weights)?;
        let dtype = get_device_settings::<B>(device).float_dtype.into();
        config.init(device)?.load_weights(&weights, dtype)
    }

    /// Loads every parameter from a safetensors or PyTorch `.bin` file, in either attention
    /// naming ([`crate::keys`]), casting floats to `dtype`. Strict: a missing, misshapen or
    /// unexpected tensor is an error naming it.
    pub fn load_weights(self, file: &Path, dtype: DType) -> Result<Self, LoadError> {
        Ok(vq_weights::load_module(self, file, &key_map(), dtype)?)
    }

    /// Image → latents: `quant_conv(encoder(x))`, not quantized (diffusers' `encode`).
    ///
    /// # Shapes
    ///
    /// - x: `[batch, in_channels, height, width]`, height and width at least `2^(levels − 1)`
    /// - output: `[batch, vq_embed_dim, height / f, width / f]`, `f = 2^(levels − 1)`
    pub fn encode(&self, x: Tensor<B, 4>) -> Result<Tensor<B, 4>, InputError> {
        let in_channels = self.encoder.conv_in.weight.dims()[1];
        let min_size = 1 << (self.encoder.down_blocks.len() - 1);
        let [_, channels, height, width] = x.dims();
        if channels != in_channels || height < min_size || width < min_size {
            return Err(InputError::Shape {
                input: "encode: image",
                expected: format!("[batch, {in_channels}, height ≥ {min_size}, width ≥ {min_size}]"),
                found: x.dims().to_vec(),
            });
        }
        Ok(B::convolution(&self.quant_conv, self.encoder.forward(x)))
    }

    /// Latents → nearest codes, their indices and the commitment loss (diffusers'
    /// `quantize(h)`).
    ///
    /// # Shapes
    ///
    /// - latents: `[batch, vq_embed_dim, h, w]`
    /// - output: see [`Quantized`]
    pub fn quantize(&self, latents: Tensor<B, 4>) -> Result<Quantized<B>, InputError> {
        self.check_latents(&latents)?;
        Ok(self.quantize.forward(latents))
    }

    /// Latents → image: diffusers' `decode(h, force_not_quantize = !quantize)` with
    /// `lookup_from_codebook = false`. With `quantize` the latents are first replaced by their
    /// nearest codes; without, they are decoded as given (codebook vectors from
    /// [`VectorQuantizer::get_codebook_entry`], or any latents).
    ///
    /// # Shapes
    ///
    /// - latents: `[batch, vq_embed_dim, h, w]`
    /// - output: `[batch, out_channels, h·f, w·f]`, `f = 2^(levels − 1)`, roughly in `[−1, 1]`
    pub fn decode(&self, latents: Tensor<B, 4>, quantize: bool) -> Result<Tensor<B, 4>, InputError> {
        self.check_latents(&latents)?;
        let quant = if quantize { self.quantize.forward(latents).quantized } else { latents };
        Ok(self.decoder.forward(B::convolution(&self.post_quant_conv, quant)))
    }

    /// Code indices → image, the VQ-Diffusion path: codebook lookup
    /// (`get_codebook_entry(indices, (B, h, w, C))`), then `decode(…, force_not_quantize=True)`.
    /// (diffusers' `lookup_from_codebook` flag only chooses whether its `decode` receives
    /// indices or codes; here the two inputs have their own methods.)
    ///
    /// # Shapes
    ///
    /// - indices: `[batch, h·w]`, row-major over `(h, w)`, each in `0..num_vq_embeddings`
    /// - size: `(h, w)`
    /// - output: `[batch, out_channels, h·f, w·f]`
    pub fn decode_indices(&self, indices: Tensor<B, 2, Int>, size: (usize, usize)) -> Result<Tensor<B, 4>, InputError> {
        let (height, width) = size;
        let [batch, tokens] = indices.dims();
        if tokens != height * width {
            return Err(InputError::Shape {
                input: "decode_indices: indices",
                expected: format!("[batch, {}] for size ({height}, {width})", height * width),
                found: indices.dims().to_vec(),
            });
        }
        let num_embeddings = self.quantize.num_embeddings();
        let min: i64 = indices.clone().min().into_scalar().elem();
        let max: i64 = indices.clone().max().into_scalar().elem();
        if let Some(index) = [min, max].into_iter().find(|&i| i < 0 || i >= num_embeddings as i64) {
            return Err(InputError::IndexOutOfRange { index, num_embeddings });
        }
        let codes = self.quantize.get_codebook_entry(indices, [batch, height, width, self.quantize.embed_dim()]);
        self.decode(codes, false)
    }

    /// Encode, quantize, decode: diffusers' `VQModel.forward` (reconstruction and commitment
    /// loss, for training).
    ///
    /// # Shapes
    ///
    /// - x: `[batch, in_channels, height, width]`
    /// - output: see [`DecoderOutput`]
    pub fn forward(&self, x: Tensor<B, 4>) -> Result<DecoderOutput<B>, InputError> {
        let quantized = self.quantize(self.encode(x)?)?;
        let sample = self.decode(quantized.quantized, false)?;
        Ok(DecoderOutput { sample, commit_loss: quantized.commit_loss })
    }

    fn check_latents(&self, latents: &Tensor<B, 4>) -> Result<(), InputError> {
        let embed_dim = self.quantize.embed_dim();
        if latents.dims()[1] != embed_dim {
            return Err(InputError::Shape {
                input: "latents",
                expected: format!("[batch, {embed_dim}, h, w]"),
                found: latents.dims().to_vec(),
            });
        }
        Ok(())
    }
}
