//! diffusers' `VQModel` — the VQ-VAE / VQGAN of VQ-Diffusion, latent diffusion's VQ variants and
//! taming-transformers — on burn, generic over the backend.
//!
//! A convolutional encoder maps an image to a grid of latent vectors, each replaced by its
//! nearest entry of a learned codebook, and a convolutional decoder maps the codes back to pixels
//! ([van den Oord et al., *Neural Discrete Representation Learning*,
//! arXiv:1711.00937](https://arxiv.org/abs/1711.00937); with attention blocks and the
//! architecture used here: [Esser et al., *Taming Transformers for High-Resolution Image
//! Synthesis*, arXiv:2012.09841](https://arxiv.org/abs/2012.09841)).
//!
//! The model is built from a diffusers `vqvae/config.json` ([`VQModelConfig`]) and computes
//! what diffusers 0.42.1 computes (`models/autoencoders/vq_model.py`, `vae.py`,
//! `unets/unet_2d_blocks.py`, `resnet.py`, `downsampling.py`, `upsampling.py`,
//! `attention_processor.py`;
//! <https://github.com/huggingface/diffusers/blob/main/src/diffusers/models/autoencoders/vq_model.py>);
//! the numerical facts the code relies on are written down in this repository's `docs/`.
//!
//! * [`VQModel::encode`] — image → latents (`quant_conv` output);
//! * [`VQModel::quantize`] — latents → nearest codes (torch's `argmin(cdist)` incl. its
//!   tie-breaking), indices, and the commitment loss (legacy β = 0.25);
//! * [`VQModel::decode`] — latents → image, with or without re-quantization;
//! * [`VQModel::decode_indices`] — code indices → image (what `VQDiffusionPipeline` does);
//! * [`to_unit_range`], [`to_rgb8`] — the pipeline's post-processing to `[0, 1]` and 8-bit NHWC.
//!
//! Weights load from safetensors or PyTorch `.bin` files, f32 or f16, in the Hub's attention
//! naming (`query/key/value/proj_attn`) or `save_pretrained`'s (`to_q/to_k/to_v/to_out.0`); the
//! key table is in [`keys`].
//!
//! Building blocks follow diffusers: every GroupNorm has ε = 1e−6 ([`norm`]); `Downsample2D`
//! pads right and bottom only, then convolves with stride 2 ([`Downsample2d`]); `Upsample2D` is
//! nearest ×2 then a 3×3 conv ([`Upsample2d`]); attention blocks are single-head over all
//! channels with a residual ([`AttentionBlock`]).
//!
//! # Memory
//!
//! The attention score matrix grows with the square of the lowest-resolution token count; it
//! is computed in query chunks of at most [`MAX_ATTENTION_SCORES`] (2²⁴) elements, 64 MiB in
//! f32. At ITHQ size (4 levels, 8× downsampling): 256×256 image → 1024 tokens → 4 MiB of scores;
//! 512×512 → 4096 tokens → 64 MiB (one chunk); 1024×1024 → 16384 tokens → 1 GiB, done in 16
//! chunks of 64 MiB.
//!
//! Peak memory of a 256×256 decode at ITHQ size (batch 1, f32), computed from the tensor sizes:
//!
//! | item | size |
//! |---|---|
//! | decoder + `post_quant_conv` weights (37,727,875 parameters) | 151 MB |
//! | codebook (4096 × 128) | 2 MB |
//! | largest activation: 128 ch × 256² (last upsampler output, input of the last up block) | 32 MiB |
//! | last up block, first resnet (128 → 64 ch at 256²): its input, kept for the shortcut, plus 2–3 GroupNorm/SiLU temporaries of the same size, plus the 64-ch conv output (16 MiB) | ≈ 100–150 MiB |
//! | attention at 32×32 (q, k, v, output 2 MiB each; scores and softmax 4 MiB each) | ≈ 16 MiB |
//!
//! so ≈ 0.3 GB in all (≈ 0.4 GB with the encoder's weights, as [`VQModel`] holds the whole
//! model: 64,009,667 parameters, 256 MB). Activations scale with batch × pixels (×4 for
//! 512×512). Backends that lower 3×3 convolutions to im2col + GEMM add a workspace of up to
//! `9·C_in·H·W` elements (128·9·256² → 302 MB for the largest conv) unless they tile it;
//! burn's NdArray backend convolves directly.
//!
//! # Backends
//!
//! The model is generic over [`vq_kernels::KernelBackend`]: the attention and the convolutions
//! are that extension's methods (on an autodiff backend every convolution runs as one matrix
//! product, whose gradient is fast everywhere). Enable the crate feature of your backend
//! (`ndarray`, `flex`, `cubecl`, `fusion`, `autodiff`).
//!
//! # Example
//!
//! ```
//! use burn::backend::NdArray;
//! use burn::tensor::{Int, Tensor};
//! use vq_model::{to_rgb8, to_unit_range, VQModelConfig};
//!
//! // A small VQGAN; a real one comes from `VQModel::from_pretrained(vqvae_dir, None, &device)`.
//! let config = VQModelConfig::from_json(
//!     r#"{
//!         "block_out_channels": [8, 16],
//!         "down_block_types": ["DownEncoderBlock2D", "AttnDownEncoderBlock2D"],
//!         "up_block_types": ["AttnUpDecoderBlock2D", "UpDecoderBlock2D"],
//!         "latent_channels": 6, "vq_embed_dim": 4, "num_vq_embeddings": 16, "norm_num_groups": 4
//!     }"#,
//! )?;
//! let device = Default::default();
//! let vqvae = config.init::<NdArray>(&device)?;
//!
//! // A 4×4 grid of code indices, as VQ-Diffusion samples them, decoded to an 8×8 RGB image.
//! let indices = Tensor::<NdArray, 1, Int>::arange(0..16, &device).reshape([1, 16]);
//! let image = vqvae.decode_indices(indices, (4, 4))?;
//! assert_eq!(image.dims(), [1, 3, 8, 8]);
//! let rgb = to_rgb8(to_unit_range(image));
//! assert_eq!(rgb.shape.as_slice(), &[1, 8, 8, 3]);
//!
//! // Encoding an image gives latents; quantizing them gives the codes and indices.
//! let quantized = vqvae.quantize(vqvae.encode(Tensor::zeros([1, 3, 8, 8], &device))?)?;
//! assert_eq!(quantized.indices.dims(), [1, 16]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod activation;
mod attention;
mod blocks;
mod config;
mod decoder;
mod encoder;
mod error;
pub mod keys;
mod model;
pub mod norm;
mod params;
mod postprocess;
mod quantizer;
mod resnet;
mod sampling;

pub use activation::Activation;
pub use attention::{AttentionBlock, AttentionBlockConfig, MAX_ATTENTION_SCORES};
pub use blocks::{
    DownEncoderBlock2d, DownEncoderBlock2dConfig, UNetMidBlock2d, UNetMidBlock2dConfig, UpDecoderBlock2d,
    UpDecoderBlock2dConfig,
};
pub use config::{DownBlockType, UpBlockType, VQModelConfig, ITHQ_CONFIG_JSON};
pub use decoder::{Decoder, DecoderConfig};
pub use encoder::{Encoder, EncoderConfig};
pub use error::{ConfigError, InputError, LoadError};
pub use model::{DecoderOutput, VQModel};
pub use postprocess::{to_rgb8, to_unit_range};
pub use quantizer::{argmin_first, euclidean_distances, Quantized, VectorQuantizer, VectorQuantizerConfig};
pub use resnet::{ResnetBlock2d, ResnetBlock2dConfig};
pub use sampling::{upsample_nearest_2x, Downsample2d, Downsample2dConfig, Upsample2d, Upsample2dConfig};
