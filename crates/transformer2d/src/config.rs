//! Model configuration; [`Transformer2DConfig::from_json`] reads diffusers' `config.json`.

use burn::config::Config;
use serde::{Deserialize, Serialize};

use crate::ConfigError;

/// The activation of the feed-forward network (`activation_fn` in the config), as diffusers'
/// `FeedForward` builds it. `inner` is 4 × the model width.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FeedForwardActivation {
    /// `"gelu"`: Linear(D → inner), then exact (erf) GELU.
    #[serde(rename = "gelu")]
    Gelu,
    /// `"gelu-approximate"`: Linear(D → inner), then tanh-approximated GELU.
    #[serde(rename = "gelu-approximate")]
    GeluApproximate,
    /// `"geglu"`: Linear(D → 2·inner) split into `hidden` (first half) and `gate` (second
    /// half), output `hidden · gelu(gate)` with erf GELU (diffusers' `GEGLU`).
    #[serde(rename = "geglu")]
    Geglu,
    /// `"geglu-approximate"`: Linear(D → inner), then `x · sigmoid(1.702 x)`. Despite the
    /// name this is **not gated** (diffusers' `ApproximateGELU`; VQ-Diffusion's `GELU2`).
    #[serde(rename = "geglu-approximate")]
    GegluApproximate,
    /// `"swiglu"`: Linear(D → 2·inner) split into `hidden`, `gate`; `hidden · silu(gate)`.
    #[serde(rename = "swiglu")]
    Swiglu,
    /// `"linear-silu"`: Linear(D → inner), then SiLU.
    #[serde(rename = "linear-silu")]
    LinearSilu,
}

impl FeedForwardActivation {
    /// Parses diffusers' `activation_fn` string.
    pub fn from_diffusers(name: &str) -> Option<Self> {
        Some(match name {
            "gelu" => Self::Gelu,
            "gelu-approximate" => Self::GeluApproximate,
            "geglu" => Self::Geglu,
            "geglu-approximate" => Self::GegluApproximate,
            "swiglu" => Self::Swiglu,
            "linear-silu" => Self::LinearSilu,
            _ => return None,
        })
    }
}

/// Configuration of [`Transformer2DModel`](crate::Transformer2DModel) on discrete input with
/// AdaLayerNorm (`norm_type = "ada_norm"`). Field names and defaults follow diffusers.
#[derive(Config, Debug)]
pub struct Transformer2DConfig {
    /// Number of latent classes including the mask class (`num_vector_embeds` = K + 1); the
    /// mask id is K. ITHQ: 4097.
    pub num_vector_embeds: usize,
    /// Side of the square latent grid (`sample_size`); N = `sample_size`². ITHQ: 32.
    pub sample_size: usize,
    /// Number of timestep embeddings of every AdaLayerNorm (`num_embeds_ada_norm`, the number
    /// of training timesteps); valid timesteps are `0..num_embeds_ada_norm`. ITHQ: 100.
    pub num_embeds_ada_norm: usize,
    /// Width of the text embeddings the cross-attention reads (`cross_attention_dim`). ITHQ: 512.
    pub cross_attention_dim: usize,
    /// Number of attention heads (`num_attention_heads`). ITHQ: 16.
    #[config(default = 16)]
    pub num_attention_heads: usize,
    /// Width of one attention head (`attention_head_dim`); the model width is
    /// heads × head width. ITHQ: 88.
    #[config(default = 88)]
    pub attention_head_dim: usize,
    /// Number of transformer blocks (`num_layers`). ITHQ: 36.
    #[config(default = 1)]
    pub num_layers: usize,
    /// Dropout probability after each attention output projection and inside the
    /// feed-forward network (`dropout`); only active on autodiff backends. ITHQ: 0.
    #[config(default = 0.0)]
    pub dropout: f64,
    /// Whether the q/k/v projections have a bias (`attention_bias`); the output projection
    /// always has one. ITHQ: true.
    #[config(default = false)]
    pub attention_bias: bool,
    /// Feed-forward activation (`activation_fn`). ITHQ: `"geglu-approximate"`.
    #[config(default = "FeedForwardActivation::Geglu")]
    pub activation_fn: FeedForwardActivation,
    /// Epsilon of the affine LayerNorm before the feed-forward network (`norm_eps`). The
    /// AdaLayerNorms and `norm_out` use 1e-5 whatever this says (as in diffusers).
    #[config(default = 1e-5)]
    pub norm_eps: f64,
}

impl Transformer2DConfig {
    /// Model width D = heads × head width (`inner_dim`).
    pub fn inner_dim(&self) -> usize {
        self.num_attention_heads * self.attention_head_dim
    }

    /// Number of real classes K = `num_vector_embeds` − 1 (the output has no mask row).
    pub fn num_classes(&self) -> usize {
        self.num_vector_embeds - 1
    }

    /// Number of latent pixels N = `sample_size`².
    pub fn num_latent_pixels(&self) -> usize {
        self.sample_size * self.sample_size
    }

    /// Checks the sizes a model can be built from.
    ///
    /// Size fields are bounded far above any released model (ITHQ: 4,097 classes, a 32 × 32
    /// grid, width 1,408, 36 layers), so that no single field asks for an absurd allocation:
    /// `num_vector_embeds` ≤ 2²⁰ + 1, `sample_size` ≤ 1,024, `num_embeds_ada_norm` ≤ 65,536,
    /// `cross_attention_dim` ≤ 16,384, `num_attention_heads` ≤ 1,024, `attention_head_dim`
    /// ≤ 1,024, model width (heads × head width) ≤ 65,536, `num_layers` ≤ 256.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let positive = [
            ("sample_size", self.sample_size),
            ("num_embeds_ada_norm", self.num_embeds_ada_norm),
            ("cross_attention_dim", self.cross_attention_dim),
            ("num_layers", self.num_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("attention_head_dim", self.attention_head_dim),
        ];
        if let Some((field, value)) = positive.into_iter().find(|(_, v)| *v == 0) {
            return Err(unsupported(field, value, "must be positive"));
        }
        if self.num_vector_embeds < 2 {
            return Err(unsupported(
                "num_vector_embeds",
                self.num_vector_embeds,
                "needs at least one class plus the mask class",
            ));
        }
        let limits = [
            ("num_vector_embeds", self.num_vector_embeds, (1 << 20) + 1, "must be at most 1048577"),
            ("sample_size", self.sample_size, 1_024, "must be at most 1024"),
            ("num_embeds_ada_norm", self.num_embeds_ada_norm, 65_536, "must be at most 65536"),
            ("cross_attention_dim", self.cross_attention_dim, 16_384, "must be at most 16384"),
            ("num_attention_heads", self.num_attention_heads, 1_024, "must be at most 1024"),
            ("attention_head_dim", self.attention_head_dim, 1_024, "must be at most 1024"),
            ("num_layers", self.num_layers, 256, "must be at most 256"),
        ];
        if let Some((field, value, _, reason)) = limits.into_iter().find(|(_, value, max, _)| value > max) {
            return Err(unsupported(field, value, reason));
        }
        if self.inner_dim() > 65_536 {
            return Err(unsupported(
                "attention_head_dim",
                self.attention_head_dim,
                "num_attention_heads × attention_head_dim is larger than the 65536 limit",
            ));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(unsupported("dropout", self.dropout, "must be in [0, 1)"));
        }
        if self.norm_eps.is_nan() || self.norm_eps <= 0.0 {
            return Err(unsupported("norm_eps", self.norm_eps, "must be positive"));
        }
        Ok(())
    }
}

pub(crate) fn unsupported(field: &'static str, value: impl Serialize, reason: &'static str) -> ConfigError {
    let value = serde_json::to_string(&value).unwrap_or_else(|_| "?".into());
    ConfigError::Unsupported { field, value, reason }
}
