//! The discrete (vector-quantized) path of diffusers' `Transformer2DModel`, as VQ-Diffusion
//! uses it, on burn.
//!
//! VQ-Diffusion ([Gu et al., *Vector Quantized Diffusion Model for Text-to-Image Synthesis*,
//! arXiv:2111.14822](https://arxiv.org/abs/2111.14822)) denoises a grid of VQ-VAE codebook ids
//! in which some pixels carry the extra mask class. This network predicts, for every latent
//! pixel, log p(x₀ | x_t, text): the log-probabilities of the K clean classes given the noised
//! ids x_t, the CLIP text embeddings and the timestep t.
//!
//! The reference is diffusers 0.42.1, `models/transformers/transformer_2d.py` (discrete input,
//! `norm_type = "ada_norm"`), with `BasicTransformerBlock` and `FeedForward` from
//! `models/attention.py`, `AttnProcessor2_0` from `models/attention_processor.py`,
//! `ApproximateGELU`/`GEGLU`/`GELU` from `models/activations.py`, `AdaLayerNorm` from
//! `models/normalization.py` and `ImagePositionalEmbeddings` from `models/embeddings.py`
//! (<https://github.com/huggingface/diffusers/blob/main/src/diffusers/models/transformers/transformer_2d.py>).
//!
//! # Computation
//!
//! 1. `h = emb[id] + (height_emb[row] + width_emb[col])` ([`ImagePositionalEmbeddings`]).
//! 2. `num_layers` × [`BasicTransformerBlock`]: `h += attn1(AdaLN₁(h, t))` (self-attention),
//!    `h += attn2(AdaLN₂(h, t), text)` (cross-attention over every text token, padding
//!    included), `h += ff(LayerNorm(h))`. [`AdaLayerNorm`] is an affine-free LayerNorm
//!    (eps 1e-5) times `1 + scale` plus `shift`, with `[scale, shift] = Linear(SiLU(emb[t]))`
//!    — scale first.
//! 3. `norm_out` → `out` (D → K, no mask class) → `[batch, K, n]` → log-softmax over the
//!    classes in f64 where the backend supports it, returned as f32.
//!
//! Differences from diffusers: the timestep may also be given per sample
//! ([`Timesteps::PerSample`]), which diffusers cannot do (huggingface/diffusers#7460); only
//! discrete input with AdaLayerNorm is implemented, other configs are rejected by
//! [`Transformer2DConfig::from_json`] with a [`ConfigError`] naming the field.
//!
//! # Weights
//!
//! [`Transformer2DModel::from_pretrained`] reads a diffusers `transformer/` folder (hub or
//! `save_pretrained` layout, `.safetensors` or `.bin`, f32 or f16); the key names are listed
//! in [`keys`].
//!
//! # Memory at the ITHQ size
//!
//! 36 blocks, D = 1408 (16 heads × 88), N = 1024 latent pixels, K = 4096, batch 2 (the
//! classifier-free-guidance pair), 77 text tokens of width 512, f32, inference:
//!
//! | item | size |
//! |---|---|
//! | parameters: 1,359,274,624 × 4 B | **5.44 GB** |
//! | hidden state `[2, 1024, 1408]` (residual, normed input, q, k, v, attention output: ≈ 6 alive) | 11.5 MB each, ≈ 69 MB |
//! | self-attention scores `[2, 16, 1024, 1024]` | 134 MB; burn's fallback kernel (NdArray; CubeCL without `autotune`) holds at most two (input and output of one step of its softmax) → ≤ 268 MB, freed before it returns |
//! | cross-attention scores `[2, 16, 1024, 77]` | 10 MB |
//! | feed-forward hidden `[2, 1024, 5632]` (projection, sigmoid term, product) | 46 MB each, ≤ 138 MB |
//! | head: logits `[2, 4096, 1024]` f32 33.6 MB, f64 copy and log-softmax temporaries 67 MB each (f32 where the backend lacks f64, e.g. CUDA) | ≤ ≈ 235 MB |
//!
//! Peak ≈ 5.44 GB + ≈ 0.34 GB (self-attention step) ≈ **5.8 GB** with an unfused attention
//! kernel, before allocator pooling; with a flash-attention kernel no N × N tensor exists and
//! activations peak in the output head (≈ 0.25 GB). Half-precision parameters halve the 5.44 GB.
//! [`Transformer2DModel::forward_with_taps`] adds four hidden states (46 MB).
//!
//! # Backends
//!
//! The model is generic over [`vq_kernels::KernelBackend`]: attention, quick GELU, the
//! AdaLayerNorm modulation, the class log-softmax and the batch split are that extension's
//! methods, so each backend computes them its own fastest way (on the CPU backends: on the host,
//! on every core). Enable the crate feature of your backend (`ndarray`, `flex`, `cubecl`,
//! `fusion`, `autodiff`).
//!
//! # A generation's forwards
//!
//! A sampling loop runs the forward once per step over the same text. [`Transformer2DModel::prepare`]
//! computes once what the steps share — every block's cross-attention keys and values of the
//! text — and its [`PreparedTransformer::forward`] gives exactly `forward`'s values. Where the
//! backend has a whole-forward engine ([`vq_kernels::engine`]; burn's CUDA backend has one) the
//! prepared forward runs on it, unless [`PrepareOptions::engine`] says off.
//! [`Transformer2DModel::describe`] is the model as an engine sees it.
//!
//! # Example
//!
//! ```
//! use burn::backend::NdArray;
//! use burn::tensor::{Int, Tensor};
//! use transformer2d::{FeedForwardActivation, Timesteps, Transformer2DConfig};
//!
//! let device = Default::default();
//! // K = 7 classes + mask, 4×4 latents, 10 timesteps, text width 6, D = 2 × 4.
//! let config = Transformer2DConfig::new(8, 4, 10, 6)
//!     .with_num_attention_heads(2)
//!     .with_attention_head_dim(4)
//!     .with_activation_fn(FeedForwardActivation::GegluApproximate);
//! let model = config.init::<NdArray>(&device).unwrap();
//! // Real weights: Transformer2DModel::from_pretrained("…/transformer".as_ref(), None, &device)?
//!
//! let ids = Tensor::<NdArray, 2, Int>::full([2, 16], 7, &device); // all masked
//! let text = Tensor::<NdArray, 3>::zeros([2, 77, 6], &device);
//! let log_p = model.forward(ids, text, &Timesteps::Shared(9));
//! assert_eq!(log_p.dims(), [2, 7, 16]);
//! ```

mod attention;
mod block;
mod config;
mod describe;
mod diffusers_config;
mod embedding;
mod error;
mod feed_forward;
pub mod keys;
mod load;
mod model;
mod norm;
mod params;
mod prepared;
mod timesteps;

pub use attention::Attention;
pub use block::BasicTransformerBlock;
pub use config::{FeedForwardActivation, Transformer2DConfig};
pub use diffusers_config::ITHQ_CONFIG_JSON;
pub use embedding::ImagePositionalEmbeddings;
pub use error::{ConfigError, LoadError};
pub use feed_forward::FeedForward;
pub use model::{Taps, Transformer2DModel};
pub use norm::AdaLayerNorm;
pub use prepared::{PrepareOptions, PreparedTransformer};
pub use timesteps::Timesteps;
