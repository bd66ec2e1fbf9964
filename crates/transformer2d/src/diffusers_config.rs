//! Parsing of diffusers' `transformer/config.json` into a [`Transformer2DConfig`].
//!
//! diffusers' `Transformer2DModel.__init__` covers three input paths (continuous latents,
//! patches, discrete classes) and many norm types. This crate implements the discrete path
//! with `norm_type = "ada_norm"` — the configuration VQ-Diffusion uses — so parsing applies
//! diffusers' defaults and its upgrade rule, then rejects everything else with a typed
//! [`ConfigError`] that names the field and its value.

use std::path::Path;

use serde::Deserialize;

use crate::config::unsupported;
use crate::{ConfigError, FeedForwardActivation, Transformer2DConfig};

/// What `activation_fn` may name.
const ACTIVATIONS: &str = "expected gelu, gelu-approximate, geglu, geglu-approximate, swiglu or linear-silu";

/// `transformer/config.json` of microsoft/vq-diffusion-ithq, as the hub has it (no `norm_type`).
pub const ITHQ_CONFIG_JSON: &str = r#"{
  "_class_name": "Transformer2DModel", "_diffusers_version": "0.8.0.dev0",
  "activation_fn": "geglu-approximate", "attention_bias": true, "attention_head_dim": 88,
  "cross_attention_dim": 512, "dropout": 0.0, "in_channels": null, "norm_num_groups": 32,
  "num_attention_heads": 16, "num_embeds_ada_norm": 100, "num_layers": 36,
  "num_vector_embeds": 4097, "sample_size": 32
}"#;

impl Transformer2DConfig {
    /// The transformer of microsoft/vq-diffusion-ithq ([`ITHQ_CONFIG_JSON`]): 36 blocks of
    /// width 1408, 4097 classes, a 32 × 32 latent grid.
    pub fn ithq() -> Self {
        Self::from_json(ITHQ_CONFIG_JSON).expect("the ITHQ config is valid")
    }

    /// Parses a diffusers `transformer/config.json` (hub layout without `norm_type`, or what
    /// `save_pretrained` writes), applying diffusers' defaults and upgrade rule.
    ///
    /// Unknown fields are ignored, as are fields that only matter on other input paths
    /// (`norm_num_groups`, `use_linear_projection`, `out_channels`, `caption_channels`,
    /// `interpolation_scale`, `use_additional_conditions`). `upcast_attention` is accepted:
    /// it only changes the precision of half-precision attention.
    pub fn from_json(json: &str) -> Result<Self, ConfigError> {
        let raw: DiffusersConfig = serde_json::from_str(json)?;
        raw.into_config()
    }

    /// Reads and parses a diffusers `transformer/config.json` file, see
    /// [`from_json`](Self::from_json).
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let json = vq_weights::read_text_capped(path, vq_weights::CONFIG_MAX_BYTES)
            .map_err(|source| ConfigError::Io { path: path.to_path_buf(), source })?;
        Self::from_json(&json)
            .map_err(|source| ConfigError::InFile { path: path.to_path_buf(), source: Box::new(source) })
    }
}

/// diffusers' norm-type upgrade rule (`Transformer2DModel.__init__`): the default
/// `"layer_norm"` — what a config without `norm_type` gets — becomes `"ada_norm"` when
/// `num_embeds_ada_norm` is set.
fn effective_norm_type(norm_type: Option<&str>, num_embeds_ada_norm: Option<usize>) -> &str {
    match norm_type.unwrap_or("layer_norm") {
        "layer_norm" if num_embeds_ada_norm.is_some() => "ada_norm",
        other => other,
    }
}

/// `Transformer2DModel.__init__`'s arguments with diffusers 0.42.1's defaults; unknown
/// fields (`_class_name`, `_diffusers_version`, …) are ignored.
#[derive(Deserialize)]
#[serde(default)]
struct DiffusersConfig {
    num_attention_heads: usize,
    attention_head_dim: usize,
    in_channels: Option<usize>,
    num_layers: usize,
    dropout: f64,
    cross_attention_dim: Option<usize>,
    attention_bias: bool,
    sample_size: Option<usize>,
    num_vector_embeds: Option<usize>,
    patch_size: Option<usize>,
    activation_fn: String,
    num_embeds_ada_norm: Option<usize>,
    only_cross_attention: bool,
    double_self_attention: bool,
    norm_type: Option<String>,
    norm_elementwise_affine: bool,
    norm_eps: f64,
    attention_type: String,
}

impl Default for DiffusersConfig {
    fn default() -> Self {
        Self {
            num_attention_heads: 16,
            attention_head_dim: 88,
            in_channels: None,
            num_layers: 1,
            dropout: 0.0,
            cross_attention_dim: None,
            attention_bias: false,
            sample_size: None,
            num_vector_embeds: None,
            patch_size: None,
            activation_fn: "geglu".into(),
            num_embeds_ada_norm: None,
            only_cross_attention: false,
            double_self_attention: false,
            norm_type: None,
            norm_elementwise_affine: true,
            norm_eps: 1e-5,
            attention_type: "default".into(),
        }
    }
}

impl DiffusersConfig {
    fn into_config(self) -> Result<Transformer2DConfig, ConfigError> {
        // Input path: diffusers picks continuous when `in_channels` is set without
        // `patch_size`, patched when both are set, discrete when `num_vector_embeds` is set.
        if let Some(patch_size) = self.patch_size {
            return Err(ConfigError::PatchedInput { patch_size });
        }
        if let Some(in_channels) = self.in_channels {
            return Err(ConfigError::ContinuousInput { in_channels });
        }
        let num_vector_embeds = self.num_vector_embeds.ok_or(ConfigError::Missing { field: "num_vector_embeds" })?;
        let sample_size = self.sample_size.ok_or(ConfigError::Missing { field: "sample_size" })?;

        let norm_type = effective_norm_type(self.norm_type.as_deref(), self.num_embeds_ada_norm);
        if norm_type != "ada_norm" {
            return Err(ConfigError::NormType { norm_type: norm_type.to_string() });
        }
        let num_embeds_ada_norm =
            self.num_embeds_ada_norm.ok_or(ConfigError::Missing { field: "num_embeds_ada_norm" })?;
        let cross_attention_dim =
            self.cross_attention_dim.ok_or(ConfigError::Missing { field: "cross_attention_dim" })?;

        let activation_fn = FeedForwardActivation::from_diffusers(&self.activation_fn)
            .ok_or_else(|| unsupported("activation_fn", &self.activation_fn, ACTIVATIONS))?;
        if self.only_cross_attention {
            return Err(unsupported(
                "only_cross_attention",
                true,
                "only the self- then cross-attention block is implemented",
            ));
        }
        if self.double_self_attention {
            return Err(unsupported(
                "double_self_attention",
                true,
                "only the self- then cross-attention block is implemented",
            ));
        }
        if self.attention_type != "default" {
            return Err(unsupported("attention_type", &self.attention_type, "only \"default\" is implemented"));
        }
        if !self.norm_elementwise_affine {
            return Err(unsupported("norm_elementwise_affine", false, "the feed-forward LayerNorm must be affine"));
        }

        let config = Transformer2DConfig::new(num_vector_embeds, sample_size, num_embeds_ada_norm, cross_attention_dim)
            .with_num_attention_heads(self.num_attention_heads)
            .with_attention_head_dim(self.attention_head_dim)
            .with_num_layers(self.num_layers)
            .with_dropout(self.dropout)
            .with_attention_bias(self.attention_bias)
            .with_activation_fn(activation_fn)
            .with_norm_eps(self.norm_eps);
        config.validate()?;
        Ok(config)
    }
}
