//! What a pipeline folder holds, read from its configs alone (no weights): the sizes, the
//! sampling defaults and the vocabulary, for `vq-diffusion info` and for checks before a load.

use std::path::{Path, PathBuf};

use clip_text::{CLIPTextConfig, Tokenizer};
use transformer2d::Transformer2DConfig;
use vq_model::VQModelConfig;
use vq_scheduler::VQDiffusionSchedulerConfig;

use crate::components::read_model_index;
use crate::request::DIFFUSERS_STEPS;
use crate::{PipelineConfigs, PipelineError, SamplingDefaults, Vocabulary};

impl PipelineConfigs {
    /// Reads `text_encoder/`, `transformer/` and `vqvae/config.json` of a pipeline folder.
    pub fn from_dir(dir: &Path) -> Result<Self, PipelineError> {
        let config_file = |component: &str| dir.join(component).join("config.json");
        Ok(Self {
            text_encoder: CLIPTextConfig::from_file(&config_file("text_encoder"))
                .map_err(clip_text::LoadError::from)?,
            transformer: Transformer2DConfig::from_file(&config_file("transformer"))
                .map_err(transformer2d::LoadError::from)?,
            vqvae: VQModelConfig::from_file(&config_file("vqvae")).map_err(vq_model::LoadError::from)?,
        })
    }
}

/// A pipeline folder's description: everything but the weights.
#[derive(Debug, Clone)]
pub struct ModelDescription {
    /// The folder.
    pub dir: PathBuf,
    /// The component configs.
    pub configs: PipelineConfigs,
    /// `scheduler/scheduler_config.json`.
    pub scheduler_config: VQDiffusionSchedulerConfig,
    /// Text positions of a prompt (the tokenizer's `model_max_length`).
    pub text_length: usize,
    /// `sampling_defaults.json` (nothing recommended without it).
    pub sampling_defaults: SamplingDefaults,
    /// `vocabulary.json`, where the folder has one.
    pub vocabulary: Option<Vocabulary>,
}

impl ModelDescription {
    /// Reads the description of the pipeline folder `dir` (`model_index.json`, every config, the
    /// tokenizer, `sampling_defaults.json` and `vocabulary.json`), loading no weights.
    pub fn from_dir(dir: &Path) -> Result<Self, PipelineError> {
        read_model_index(dir)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            configs: PipelineConfigs::from_dir(dir)?,
            scheduler_config: VQDiffusionSchedulerConfig::from_file(
                &dir.join("scheduler").join("scheduler_config.json"),
            )?,
            text_length: Tokenizer::from_dir(&dir.join("tokenizer"))?.model_max_length(),
            sampling_defaults: SamplingDefaults::from_dir(dir)?,
            vocabulary: Vocabulary::from_dir(dir)?,
        })
    }

    /// The steps a generation takes by default (as [`crate::VQDiffusionPipeline::default_steps`]).
    pub fn default_steps(&self) -> usize {
        DIFFUSERS_STEPS.min(self.scheduler_config.num_train_timesteps)
    }
}
