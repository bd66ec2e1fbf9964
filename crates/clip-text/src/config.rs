//! [`CLIPTextConfig`]: the text tower's hyper-parameters, read from a transformers `config.json`.
//!
//! Mirrors transformers' `CLIPTextConfig` (`models/clip/configuration_clip.py`): every field that
//! is absent from the file takes transformers' default (the ViT-B/32 text tower), fields this
//! model does not use (`projection_dim`, `bos_token_id`, `pad_token_id`, `initializer_range`,
//! `dtype`, `transformers_version`, `architectures`, …) are ignored, so configs written by
//! transformers 4 and 5 both parse.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::activation::HiddenAct;
use crate::error::ConfigError;

/// Hyper-parameters of [`CLIPTextModel`](crate::CLIPTextModel).
///
/// Build one with [`CLIPTextConfig::from_file`] / [`CLIPTextConfig::from_json`] (validated),
/// a preset ([`CLIPTextConfig::vit_b_32`], [`CLIPTextConfig::vit_l_14`]) or
/// [`Default::default`] (= transformers' defaults = ViT-B/32).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CLIPTextConfig {
    /// Number of token ids (rows of `token_embedding`).
    pub vocab_size: usize,
    /// Width of the residual stream (`H`).
    pub hidden_size: usize,
    /// Width of the MLP's hidden layer (`fc1` output).
    pub intermediate_size: usize,
    /// Number of pre-LN encoder layers.
    pub num_hidden_layers: usize,
    /// Number of attention heads; `hidden_size` must be a multiple of it.
    pub num_attention_heads: usize,
    /// Longest sequence the model accepts (rows of `position_embedding`).
    pub max_position_embeddings: usize,
    /// Activation between `fc1` and `fc2` (transformers' `hidden_act`).
    pub hidden_act: HiddenAct,
    /// Epsilon of every LayerNorm.
    pub layer_norm_eps: f64,
    /// Token id whose position gives the pooled output. The legacy value `2` (configs written
    /// before transformers PR #24773, e.g. VQ-Diffusion's) selects the position of the largest id
    /// instead; see [`EosRule`](crate::EosRule).
    #[serde(with = "eos_token_id")]
    pub eos_token_id: i64,
}

impl Default for CLIPTextConfig {
    /// transformers' `CLIPTextConfig()` defaults: the ViT-B/32 text tower.
    fn default() -> Self {
        Self::vit_b_32()
    }
}

impl CLIPTextConfig {
    /// The text tower of `openai/clip-vit-base-patch32` (transformers' defaults):
    /// width 512, 12 layers, 8 heads, MLP 2048, quick_gelu.
    pub fn vit_b_32() -> Self {
        Self {
            vocab_size: 49408,
            hidden_size: 512,
            intermediate_size: 2048,
            num_hidden_layers: 12,
            num_attention_heads: 8,
            max_position_embeddings: 77,
            hidden_act: HiddenAct::QuickGelu,
            layer_norm_eps: 1e-5,
            eos_token_id: 49407,
        }
    }

    /// The text tower of `openai/clip-vit-large-patch14`: width 768, 12 layers, 12 heads,
    /// MLP 3072, quick_gelu.
    pub fn vit_l_14() -> Self {
        Self { hidden_size: 768, intermediate_size: 3072, num_attention_heads: 12, ..Self::vit_b_32() }
    }

    /// Parses a transformers `config.json` text and validates it.
    pub fn from_json(json: &str) -> Result<Self, ConfigError> {
        let config: Self = serde_json::from_str(json).map_err(ConfigError::Json)?;
        config.validate()?;
        Ok(config)
    }

    /// Reads and validates a transformers `config.json` (e.g. `text_encoder/config.json`).
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let json = vq_weights::read_text_capped(path, vq_weights::CONFIG_MAX_BYTES)
            .map_err(|source| ConfigError::Io { path: path.to_path_buf(), source })?;
        Self::from_json(&json)
            .map_err(|source| ConfigError::InFile { path: path.to_path_buf(), source: Box::new(source) })
    }

    /// Width of one attention head (`hidden_size / num_attention_heads`).
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    /// Checks the invariants the model relies on; the error names the offending field.
    ///
    /// Size fields are bounded far above any released CLIP (ViT-bigG: vocabulary 49,408,
    /// width 1,280, 32 layers), so that no single field asks for an absurd allocation:
    /// `vocab_size` ≤ 2²⁰, `hidden_size` ≤ 16,384, `intermediate_size` ≤ 65,536,
    /// `num_hidden_layers` ≤ 256, `num_attention_heads` ≤ 1,024, `max_position_embeddings` ≤ 65,536.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let positive = [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("intermediate_size", self.intermediate_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("max_position_embeddings", self.max_position_embeddings),
        ];
        if let Some((field, _)) = positive.iter().find(|(_, value)| *value == 0) {
            return Err(ConfigError::Zero { field });
        }
        let limits = [1 << 20, 16_384, 65_536, 256, 1_024, 65_536];
        if let Some(((field, value), max)) = positive.iter().zip(limits).find(|((_, value), max)| value > max) {
            return Err(ConfigError::Invalid { field, reason: format!("{value} is larger than the limit of {max}") });
        }
        if !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return Err(ConfigError::HeadsDoNotDivideHidden {
                hidden_size: self.hidden_size,
                num_attention_heads: self.num_attention_heads,
            });
        }
        if !(self.layer_norm_eps.is_finite() && self.layer_norm_eps > 0.0) {
            return Err(ConfigError::Invalid {
                field: "layer_norm_eps",
                reason: format!("must be finite and > 0, got {}", self.layer_norm_eps),
            });
        }
        if self.eos_token_id < 0 {
            return Err(ConfigError::Invalid {
                field: "eos_token_id",
                reason: format!("must be >= 0, got {}", self.eos_token_id),
            });
        }
        Ok(())
    }
}

/// `eos_token_id` is `int | list[int] | None` in transformers 5; a one-element list is the same
/// as its element. Longer lists and `null` are rejected: transformers' pooling compares the ids
/// with a single value.
mod eos_token_id {
    use serde::{Deserialize, Deserializer, Serializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        One(i64),
        List(Vec<i64>),
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
        match Option::<Raw>::deserialize(deserializer)? {
            Some(Raw::One(id)) => Ok(id),
            Some(Raw::List(ids)) if ids.len() == 1 => Ok(ids[0]),
            Some(Raw::List(ids)) => Err(serde::de::Error::custom(format!(
                "eos_token_id: a list of {} ids is not supported (the pooled output needs one id)",
                ids.len()
            ))),
            None => {
                Err(serde::de::Error::custom("eos_token_id: null is not supported (the pooled output needs one id)"))
            }
        }
    }

    pub fn serialize<S: Serializer>(id: &i64, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_i64(*id)
    }
}
