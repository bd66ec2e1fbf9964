//! The microsoft/vq-diffusion-ithq architecture, for benchmarks and tests that need its sizes
//! without its 6 GB of weights (random weights have the same FLOPs).

use clip_text::CLIPTextConfig;
use transformer2d::Transformer2DConfig;
use vq_model::VqModelConfig;
use vq_scheduler::VQDiffusionSchedulerConfig;

use crate::PipelineConfigs;

/// `transformer/config.json` of microsoft/vq-diffusion-ithq.
pub const TRANSFORMER_CONFIG: &str = r#"{
  "_class_name": "Transformer2DModel", "_diffusers_version": "0.8.0.dev0",
  "activation_fn": "geglu-approximate", "attention_bias": true, "attention_head_dim": 88,
  "cross_attention_dim": 512, "dropout": 0.0, "in_channels": null, "norm_num_groups": 32,
  "num_attention_heads": 16, "num_embeds_ada_norm": 100, "num_layers": 36,
  "num_vector_embeds": 4097, "sample_size": 32
}"#;

/// `vqvae/config.json` of microsoft/vq-diffusion-ithq.
pub const VQVAE_CONFIG: &str = r#"{
  "_class_name": "VQModel", "_diffusers_version": "0.8.0.dev0", "act_fn": "silu",
  "block_out_channels": [64, 128, 256, 512],
  "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D", "AttnDownEncoderBlock2D"],
  "in_channels": 3, "latent_channels": 256, "layers_per_block": 2, "norm_num_groups": 32,
  "num_vq_embeddings": 4096, "out_channels": 3, "sample_size": 32,
  "up_block_types": ["AttnUpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"],
  "vq_embed_dim": 128
}"#;

/// The component configs of microsoft/vq-diffusion-ithq (text encoder: the
/// openai/clip-vit-base-patch32 text tower).
pub fn ithq_configs() -> PipelineConfigs {
    PipelineConfigs {
        text_encoder: CLIPTextConfig::vit_b_32(),
        transformer: Transformer2DConfig::from_diffusers_json(TRANSFORMER_CONFIG).expect("the ITHQ config is valid"),
        vqvae: VqModelConfig::from_json_str(VQVAE_CONFIG).expect("the ITHQ config is valid"),
    }
}

/// The ITHQ scheduler: 4097 classes, diffusers' defaults otherwise.
pub fn ithq_scheduler_config() -> VQDiffusionSchedulerConfig {
    VQDiffusionSchedulerConfig::new(4097)
}
