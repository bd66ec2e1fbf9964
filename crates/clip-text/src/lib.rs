//! CLIP text encoder and tokenizer on burn, equal to transformers' `CLIPTextModel` and the
//! `tokenizers`-backed `CLIPTokenizer`.
//!
//! - [`CLIPTextModel`]: token + position embeddings, pre-LN encoder layers with causal
//!   self-attention, an MLP with the config's activation, final LayerNorm; returns
//!   `last_hidden_state` `[B, L, H]` and the pooled output by transformers' EOS rule
//!   ([`EosRule`]). Generic over [`vq_kernels::KernelBackend`] (the attention and quick GELU are
//!   that backend extension's methods; enable the crate feature of your backend: `ndarray`,
//!   `flex`, `cubecl`, `fusion`, `autodiff`).
//! - [`CLIPTextConfig`]: a transformers `text_encoder/config.json` (4.x or 5.x) with defaults for
//!   absent fields; presets [`CLIPTextConfig::vit_b_32`] and [`CLIPTextConfig::vit_l_14`].
//! - [`Tokenizer`]: the CLIP BPE pipeline from `tokenizer.json` or `vocab.json` + `merges.txt`,
//!   padded to 77 ids with the folder's pad token; [`Truncation`] chooses diffusers'
//!   cut-to-77 (drops EOS of long prompts) or the original keep-EOS truncation.
//! - Weights: safetensors or PyTorch `.bin`, with or without the `text_model.` prefix, f32 or
//!   f16, strictly checked by `vq-weights` (key map in [`keys`]).
//!
//! Reference: `transformers/models/clip/modeling_clip.py`, `tokenization_clip.py`. CLIP paper:
//! Radford et al. 2021, <https://arxiv.org/abs/2103.00020>.
//!
//! ```no_run
//! use std::path::Path;
//! use burn::backend::NdArray;
//! use clip_text::{CLIPTextModel, Tokenizer, Truncation};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let device = Default::default();
//! let pipeline = Path::new("vq-diffusion-ithq");
//! let tokenizer = Tokenizer::from_dir(&pipeline.join("tokenizer"))?;
//! let model = CLIPTextModel::<NdArray>::from_pretrained(&pipeline.join("text_encoder"), None, &device)?;
//!
//! let ids = tokenizer.encode_to_tensor::<NdArray>(&["a teddy bear playing in the pool"], Truncation::Diffusers, &device)?;
//! let output = model.forward(ids);
//! assert_eq!(output.last_hidden_state.dims(), [1, 77, 512]);
//! # Ok(())
//! # }
//! ```
//!
//! Without files, a model built from a config (zero weights until loaded):
//!
//! ```
//! use burn::backend::NdArray;
//! use burn::tensor::{Int, Tensor};
//! use clip_text::CLIPTextConfig;
//!
//! let config = CLIPTextConfig {
//!     vocab_size: 100, hidden_size: 32, intermediate_size: 37, num_hidden_layers: 2,
//!     num_attention_heads: 4, ..CLIPTextConfig::vit_b_32()
//! };
//! config.validate().unwrap();
//! let device = Default::default();
//! let model = config.init::<NdArray>(&device)?;
//! let ids = Tensor::<NdArray, 2, Int>::from_ints([[49, 5, 7, 99]], &device);
//! let output = model.forward(ids);
//! assert_eq!(output.last_hidden_state.dims(), [1, 4, 32]);
//! assert_eq!(output.pooler_output.dims(), [1, 32]);
//! # Ok::<(), clip_text::ConfigError>(())
//! ```

mod activation;
mod attention;
mod config;
mod embeddings;
mod encoder;
mod error;
pub mod keys;
mod mlp;
mod model;
mod params;
mod pooling;
pub mod tokenizer;

pub use activation::HiddenAct;
pub use attention::CLIPAttention;
pub use config::CLIPTextConfig;
pub use embeddings::CLIPTextEmbeddings;
pub use encoder::{CLIPEncoder, CLIPEncoderLayer};
pub use error::{ConfigError, LoadError, TokenizerError};
pub use mlp::CLIPMlp;
pub use model::{CLIPTextModel, CLIPTextOutput};
pub use pooling::EosRule;
pub use tokenizer::{PaddedIds, SpecialTokens, TokenSpec, Tokenizer, Truncation};
