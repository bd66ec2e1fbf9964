//! `vqvae/config.json`: diffusers' `VQModel` config, with diffusers' defaults and validation.
//!
//! The field set and the defaults are those of `VQModel.__init__` in diffusers 0.42.1
//! (`diffusers/models/autoencoders/vq_model.py`). A field absent from the file takes the
//! diffusers default (the ITHQ file has no `norm_type`, `mid_block_add_attention`,
//! `lookup_from_codebook`, …); unknown fields (`_class_name`, `_diffusers_version`, …) are
//! ignored, as diffusers ignores them.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::activation::Activation;
use crate::error::ConfigError;

/// diffusers' `VQModel` configuration (`vqvae/config.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct VQModelConfig {
    /// Channels of the input image (3 for RGB).
    pub in_channels: usize,
    /// Channels of the decoded image (3 for RGB).
    pub out_channels: usize,
    /// Encoder block types, one per resolution: `"DownEncoderBlock2D"` or
    /// `"AttnDownEncoderBlock2D"` (diffusers also accepts a `"UNetRes"` prefix).
    pub down_block_types: Vec<String>,
    /// Decoder block types, one per resolution, lowest resolution first: `"UpDecoderBlock2D"` or
    /// `"AttnUpDecoderBlock2D"`.
    pub up_block_types: Vec<String>,
    /// Channels of each resolution level, highest resolution first.
    pub block_out_channels: Vec<usize>,
    /// Resnets per encoder block; decoder blocks have one more.
    pub layers_per_block: usize,
    /// Activation of the resnet blocks (`"silu"`, `"swish"`, `"mish"`, `"gelu"`, `"relu"`). The
    /// activation before `conv_out` is always SiLU, as in diffusers.
    pub act_fn: String,
    /// Channels of the encoder output and the decoder input (around `quant_conv` /
    /// `post_quant_conv`).
    pub latent_channels: usize,
    /// Nominal latent size; informational, unused by the model.
    pub sample_size: usize,
    /// Codebook size.
    pub num_vq_embeddings: usize,
    /// Groups of every GroupNorm.
    pub norm_num_groups: usize,
    /// Width of a codebook vector; `None` means `latent_channels`.
    pub vq_embed_dim: Option<usize>,
    /// Latent scaling factor; informational, unused by the model (as in diffusers' VQModel).
    pub scaling_factor: f64,
    /// Decoder norm: `"group"`; `"spatial"` (MoVQ) is rejected as unsupported.
    pub norm_type: String,
    /// Whether the encoder and decoder mid blocks have their attention layer.
    pub mid_block_add_attention: bool,
    /// Whether `decode(…, force_not_quantize = true)` looks its input (then indices) up in the
    /// codebook; see [`VQModel::decode_indices`](crate::VQModel::decode_indices).
    pub lookup_from_codebook: bool,
    /// Upcast hint for half-precision pipelines; informational, unused by the model.
    pub force_upcast: bool,
}

impl Default for VQModelConfig {
    /// The defaults of diffusers' `VQModel.__init__`.
    fn default() -> Self {
        Self {
            in_channels: 3,
            out_channels: 3,
            down_block_types: vec!["DownEncoderBlock2D".into()],
            up_block_types: vec!["UpDecoderBlock2D".into()],
            block_out_channels: vec![64],
            layers_per_block: 1,
            act_fn: "silu".into(),
            latent_channels: 3,
            sample_size: 32,
            num_vq_embeddings: 256,
            norm_num_groups: 32,
            vq_embed_dim: None,
            scaling_factor: 0.18215,
            norm_type: "group".into(),
            mid_block_add_attention: true,
            lookup_from_codebook: false,
            force_upcast: false,
        }
    }
}

/// An encoder block type of a VQModel config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DownBlockType {
    /// `DownEncoderBlock2D`: resnets, then an optional downsampler.
    DownEncoderBlock2D,
    /// `AttnDownEncoderBlock2D`: resnets each followed by an attention block, then an optional
    /// downsampler.
    AttnDownEncoderBlock2D,
}

impl DownBlockType {
    /// Whether the block has attention layers.
    pub fn has_attention(self) -> bool {
        self == Self::AttnDownEncoderBlock2D
    }
}

/// A decoder block type of a VQModel config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum UpBlockType {
    /// `UpDecoderBlock2D`: resnets, then an optional upsampler.
    UpDecoderBlock2D,
    /// `AttnUpDecoderBlock2D`: resnets each followed by an attention block, then an optional
    /// upsampler.
    AttnUpDecoderBlock2D,
}

impl UpBlockType {
    /// Whether the block has attention layers.
    pub fn has_attention(self) -> bool {
        self == Self::AttnUpDecoderBlock2D
    }
}

/// `vqvae/config.json` of microsoft/vq-diffusion-ithq, as the hub has it.
pub const ITHQ_CONFIG_JSON: &str = r#"{
  "_class_name": "VQModel", "_diffusers_version": "0.8.0.dev0", "act_fn": "silu",
  "block_out_channels": [64, 128, 256, 512],
  "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D", "AttnDownEncoderBlock2D"],
  "in_channels": 3, "latent_channels": 256, "layers_per_block": 2, "norm_num_groups": 32,
  "num_vq_embeddings": 4096, "out_channels": 3, "sample_size": 32,
  "up_block_types": ["AttnUpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"],
  "vq_embed_dim": 128
}"#;

impl VQModelConfig {
    /// The VQ-VAE of microsoft/vq-diffusion-ithq ([`ITHQ_CONFIG_JSON`]).
    pub fn ithq() -> Self {
        Self::from_json(ITHQ_CONFIG_JSON).expect("the ITHQ config is valid")
    }

    /// Parses a diffusers `config.json` (defaults for absent fields, unknown fields ignored) and
    /// validates it.
    pub fn from_json(json: &str) -> Result<Self, ConfigError> {
        let config: Self = serde_json::from_str(json)?;
        config.validate()?;
        Ok(config)
    }

    /// Reads, parses and validates a diffusers `config.json` file.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let json = vq_weights::read_text_capped(path, vq_weights::CONFIG_MAX_BYTES)
            .map_err(|source| ConfigError::Io { path: path.into(), source })?;
        Self::from_json(&json)
            .map_err(|source| ConfigError::InFile { path: path.to_path_buf(), source: Box::new(source) })
    }

    /// The codebook vector width: `vq_embed_dim`, or `latent_channels` when unset.
    pub fn embed_dim(&self) -> usize {
        self.vq_embed_dim.unwrap_or(self.latent_channels)
    }

    /// The encoder block types, parsed.
    pub fn down_blocks(&self) -> Result<Vec<DownBlockType>, ConfigError> {
        let parse = |(index, value): (usize, &String)| match strip_unet_res(value) {
            "DownEncoderBlock2D" => Ok(DownBlockType::DownEncoderBlock2D),
            "AttnDownEncoderBlock2D" => Ok(DownBlockType::AttnDownEncoderBlock2D),
            _ => Err(ConfigError::BlockType {
                field: "down_block_types",
                index,
                value: value.clone(),
                expected: "\"DownEncoderBlock2D\", \"AttnDownEncoderBlock2D\"",
            }),
        };
        self.down_block_types.iter().enumerate().map(parse).collect()
    }

    /// The decoder block types, parsed.
    pub fn up_blocks(&self) -> Result<Vec<UpBlockType>, ConfigError> {
        let parse = |(index, value): (usize, &String)| match strip_unet_res(value) {
            "UpDecoderBlock2D" => Ok(UpBlockType::UpDecoderBlock2D),
            "AttnUpDecoderBlock2D" => Ok(UpBlockType::AttnUpDecoderBlock2D),
            _ => Err(ConfigError::BlockType {
                field: "up_block_types",
                index,
                value: value.clone(),
                expected: "\"UpDecoderBlock2D\", \"AttnUpDecoderBlock2D\"",
            }),
        };
        self.up_block_types.iter().enumerate().map(parse).collect()
    }

    /// The resnet activation, parsed (case-insensitive, as diffusers' `get_activation`).
    pub fn activation(&self) -> Result<Activation, ConfigError> {
        Activation::from_name(&self.act_fn).ok_or_else(|| ConfigError::Activation { value: self.act_fn.clone() })
    }

    /// Checks that the config describes a model diffusers can build and this port implements.
    ///
    /// Size fields are bounded far above any released VQ-VAE (ITHQ: channels up to 512, a
    /// 4,096-entry codebook), so that no single field asks for an absurd allocation:
    /// `in_channels`, `out_channels` ≤ 1,024; `latent_channels`, `vq_embed_dim`, every
    /// `block_out_channels` entry ≤ 16,384; `num_vq_embeddings` ≤ 2²⁰; `norm_num_groups`
    /// ≤ 1,024; `layers_per_block` ≤ 64; at most 16 resolution levels.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match self.norm_type.as_str() {
            "group" => {}
            "spatial" => return Err(ConfigError::SpatialNorm),
            other => {
                return Err(invalid("norm_type", &other, "expected \"group\" (or the unsupported \"spatial\")"));
            }
        }
        self.activation()?;
        let down = self.down_blocks()?;
        let up = self.up_blocks()?;

        for (field, value) in [
            ("in_channels", self.in_channels),
            ("out_channels", self.out_channels),
            ("latent_channels", self.latent_channels),
            ("num_vq_embeddings", self.num_vq_embeddings),
            ("norm_num_groups", self.norm_num_groups),
            ("layers_per_block", self.layers_per_block),
        ] {
            if value == 0 {
                return Err(invalid(field, &value, "must be at least 1"));
            }
        }
        for (field, value, max) in [
            ("in_channels", self.in_channels, 1_024),
            ("out_channels", self.out_channels, 1_024),
            ("latent_channels", self.latent_channels, 16_384),
            ("num_vq_embeddings", self.num_vq_embeddings, 1 << 20),
            ("norm_num_groups", self.norm_num_groups, 1_024),
            ("layers_per_block", self.layers_per_block, 64),
            ("vq_embed_dim", self.embed_dim(), 16_384),
            ("block_out_channels", self.block_out_channels.iter().copied().max().unwrap_or(0), 16_384),
        ] {
            if value > max {
                return Err(invalid(field, &value, format!("larger than the limit of {max}")));
            }
        }
        if self.block_out_channels.len() > 16 {
            return Err(invalid("block_out_channels", &self.block_out_channels, "more than 16 resolution levels"));
        }
        if self.vq_embed_dim == Some(0) {
            return Err(invalid("vq_embed_dim", &0, "must be at least 1 (or null for latent_channels)"));
        }
        if self.block_out_channels.is_empty() {
            return Err(invalid("block_out_channels", &self.block_out_channels, "must not be empty"));
        }
        if let Some(&c) = self.block_out_channels.iter().find(|&&c| c == 0 || c % self.norm_num_groups != 0) {
            return Err(invalid(
                "block_out_channels",
                &self.block_out_channels,
                format!("{c} is not a positive multiple of norm_num_groups = {}", self.norm_num_groups),
            ));
        }
        let levels = self.block_out_channels.len();
        if down.len() != levels {
            return Err(invalid(
                "down_block_types",
                &self.down_block_types,
                format!("needs one entry per block_out_channels entry ({levels})"),
            ));
        }
        if up.len() != levels {
            return Err(invalid(
                "up_block_types",
                &self.up_block_types,
                format!("needs one entry per block_out_channels entry ({levels})"),
            ));
        }
        Ok(())
    }
}

/// diffusers' `get_down_block` / `get_up_block` drop a leading `"UNetRes"`.
fn strip_unet_res(name: &str) -> &str {
    name.strip_prefix("UNetRes").unwrap_or(name)
}

fn invalid(field: &'static str, value: &impl Serialize, reason: impl Into<String>) -> ConfigError {
    ConfigError::InvalidValue {
        field,
        value: serde_json::to_string(value).unwrap_or_else(|_| "?".into()),
        reason: reason.into(),
    }
}
