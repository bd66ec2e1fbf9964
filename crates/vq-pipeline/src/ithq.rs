//! The microsoft/vq-diffusion-ithq architecture, for benchmarks and tests that need its sizes
//! without its 6 GB of weights (random weights have the same FLOPs). The component configs are
//! the presets of their crates.

use clip_text::CLIPTextConfig;
use transformer2d::Transformer2DConfig;
use vq_model::VQModelConfig;
use vq_scheduler::VQDiffusionSchedulerConfig;

use crate::PipelineConfigs;

/// The component configs of microsoft/vq-diffusion-ithq (text encoder: the
/// openai/clip-vit-base-patch32 text tower).
pub fn ithq_configs() -> PipelineConfigs {
    PipelineConfigs {
        text_encoder: CLIPTextConfig::vit_b_32(),
        transformer: Transformer2DConfig::ithq(),
        vqvae: VQModelConfig::ithq(),
    }
}

/// The ITHQ scheduler: 4097 classes, diffusers' defaults otherwise.
pub fn ithq_scheduler_config() -> VQDiffusionSchedulerConfig {
    VQDiffusionSchedulerConfig::new(4097)
}
