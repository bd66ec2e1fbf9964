//! The pipeline: its components, loading, and the checks that they fit together.

use std::path::{Path, PathBuf};

use burn::tensor::backend::Backend;
use clip_text::{CLIPTextConfig, CLIPTextModel, Tokenizer};
use transformer2d::{Transformer2DConfig, Transformer2DModel};
use vq_kernels::KernelBackend;
use vq_model::{VQModel, VQModelConfig};
use vq_scheduler::{VQDiffusionScheduler, VQDiffusionSchedulerConfig};

use crate::components::{read_model_index, NegativeEmbeddings};
use crate::hub::{resolve_pipeline_dir, HubOptions};
use crate::{PipelineError, SamplingDefaults, Vocabulary};

/// How to load a pipeline.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Weights variant, e.g. `Some("fp16")` for `*.fp16.safetensors`; components without that
    /// variant fall back to the plain files.
    pub variant: Option<String>,
    /// Hub access (cache folder, offline mode, revision).
    pub hub: HubOptions,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self { variant: None, hub: HubOptions::from_env() }
    }
}

/// The configs of the model components, as read from their `config.json`.
#[derive(Debug, Clone)]
pub struct PipelineConfigs {
    /// `text_encoder/config.json`.
    pub text_encoder: CLIPTextConfig,
    /// `transformer/config.json`.
    pub transformer: Transformer2DConfig,
    /// `vqvae/config.json`.
    pub vqvae: VQModelConfig,
}

/// VQ-Diffusion text-to-image: diffusers' `VQDiffusionPipeline` on burn.
///
/// Parameters take the device's default float dtype (see [`crate::set_precision`]).
#[derive(Debug)]
pub struct VQDiffusionPipeline<B: Backend> {
    /// CLIP tokenizer (`tokenizer/`).
    pub tokenizer: Tokenizer,
    /// CLIP text encoder (`text_encoder/`).
    pub text_encoder: CLIPTextModel<B>,
    /// The discrete diffusion transformer (`transformer/`).
    pub transformer: Transformer2DModel<B>,
    /// The VQ-VAE whose decoder turns tokens into pixels (`vqvae/`).
    pub vqvae: VQModel<B>,
    /// The scheduler config (`scheduler/scheduler_config.json`).
    pub scheduler_config: VQDiffusionSchedulerConfig,
    /// The unconditional branch of guidance (`learned_classifier_free_sampling_embeddings/`).
    pub negative: NegativeEmbeddings<B>,
    /// The component configs.
    pub configs: PipelineConfigs,
    /// The guidance scale and truncation rate the folder recommends (`sampling_defaults.json`,
    /// this project's file; none for diffusers' own pipelines).
    pub sampling_defaults: SamplingDefaults,
    /// The words the model learned (`vocabulary.json`, this project's file; none for diffusers'
    /// own pipelines): see [`VQDiffusionPipeline::unknown_words`].
    pub vocabulary: Option<Vocabulary>,
    /// The folder the pipeline was read from.
    pub dir: PathBuf,
    /// Whether `vqvae` holds its encoder's weights (see [`Self::can_encode`]).
    pub(crate) vqvae_has_encoder: bool,
    pub(crate) device: B::Device,
}

impl<B: KernelBackend> VQDiffusionPipeline<B> {
    /// Loads a pipeline from a local folder or a hub repository id (through the shared
    /// Hugging Face cache; see [`crate::hub`]).
    pub fn from_pretrained(model: &str, options: &LoadOptions, device: &B::Device) -> Result<Self, PipelineError> {
        let dir = resolve_pipeline_dir(model, options.variant.as_deref(), &options.hub)?;
        Self::from_dir(&dir, options.variant.as_deref(), device)
    }

    /// Loads a pipeline folder in the hub layout or the layout `save_pretrained` writes. Each
    /// component's config is read once; parameters take the device's default float dtype.
    pub fn from_dir(dir: &Path, variant: Option<&str>, device: &B::Device) -> Result<Self, PipelineError> {
        read_model_index(dir)?;
        // A component without the requested variant falls back to its plain weights.
        let variant_of = |component: &str, stem: &str| {
            variant.filter(|_| vq_weights::find_weights_file(&dir.join(component), stem, variant).is_ok())
        };
        let tokenizer = Tokenizer::from_dir(&dir.join("tokenizer"))?;
        let configs = PipelineConfigs::from_dir(dir)?;
        let (model, diffusers) = ("model", "diffusion_pytorch_model");
        let text_encoder = CLIPTextModel::from_config(
            &configs.text_encoder,
            &dir.join("text_encoder"),
            variant_of("text_encoder", model),
            device,
        )?;
        let transformer = Transformer2DModel::from_config(
            &configs.transformer,
            &dir.join("transformer"),
            variant_of("transformer", diffusers),
            device,
        )?;
        let (vqvae, vqvae_has_encoder) =
            crate::vqvae::load_vqvae(&configs.vqvae, &dir.join("vqvae"), variant_of("vqvae", diffusers), device)?;
        let scheduler_config =
            VQDiffusionSchedulerConfig::from_file(&dir.join("scheduler").join("scheduler_config.json"))?;
        let cf = "learned_classifier_free_sampling_embeddings";
        let negative = NegativeEmbeddings::from_dir(&dir.join(cf), variant_of(cf, diffusers), device)?;
        let sampling_defaults = SamplingDefaults::from_dir(dir)?;
        let vocabulary = Vocabulary::from_dir(dir)?;
        let pipeline = Self {
            configs,
            tokenizer,
            text_encoder,
            transformer,
            vqvae,
            scheduler_config,
            negative,
            sampling_defaults,
            vocabulary,
            dir: dir.to_path_buf(),
            vqvae_has_encoder,
            device: device.clone(),
        };
        pipeline.check_compatible()?;
        Ok(pipeline)
    }

    /// A pipeline with freshly initialised (random) weights of the given architecture, e.g.
    /// [`crate::ithq::ithq_configs`] for benchmarks. Learned negative embeddings are zeros.
    /// (The text encoder must be random too: zero weights encode every prompt to zero states,
    /// whose L2 normalisation is NaN — on CUDA the argmax of NaN scores is −1, and the next
    /// transformer forward read outside its embedding table.)
    pub fn random(
        configs: PipelineConfigs,
        scheduler_config: VQDiffusionSchedulerConfig,
        tokenizer: Tokenizer,
        device: &B::Device,
    ) -> Result<Self, PipelineError> {
        let length = tokenizer.model_max_length();
        let negative = NegativeEmbeddings::Learned(burn::tensor::Tensor::zeros(
            [length, configs.text_encoder.hidden_size],
            device,
        ));
        let pipeline = Self {
            tokenizer,
            text_encoder: configs.text_encoder.init_random(device).map_err(clip_text::LoadError::from)?,
            transformer: configs.transformer.init(device).map_err(transformer2d::LoadError::from)?,
            vqvae: configs.vqvae.init(device).map_err(vq_model::LoadError::from)?,
            scheduler_config,
            negative,
            configs,
            sampling_defaults: SamplingDefaults::default(),
            vocabulary: None,
            dir: PathBuf::new(),
            vqvae_has_encoder: true,
            device: device.clone(),
        };
        pipeline.check_compatible()?;
        Ok(pipeline)
    }

    /// The device the pipeline runs on.
    pub fn device(&self) -> &B::Device {
        &self.device
    }

    /// Latent grid (h, w) of the transformer.
    pub fn latent_size(&self) -> (usize, usize) {
        let side = self.configs.transformer.sample_size;
        (side, side)
    }

    /// A scheduler for this pipeline's config.
    pub fn scheduler(&self) -> Result<VQDiffusionScheduler<B>, PipelineError> {
        Ok(VQDiffusionScheduler::new(self.scheduler_config.clone(), &self.device)?)
    }

    /// Sizes must agree across configs, or generation would fail half-way.
    fn check_compatible(&self) -> Result<(), PipelineError> {
        let t = &self.configs.transformer;
        let text = &self.configs.text_encoder;
        let k = self.configs.vqvae.num_vq_embeddings;
        let mut problems = Vec::new();
        if t.num_vector_embeds != k + 1 {
            problems.push(format!(
                "transformer num_vector_embeds {} ≠ vqvae num_vq_embeddings {k} + 1 (the mask class)",
                t.num_vector_embeds
            ));
        }
        if self.scheduler_config.num_vec_classes != t.num_vector_embeds {
            problems.push(format!(
                "scheduler num_vec_classes {} ≠ transformer num_vector_embeds {}",
                self.scheduler_config.num_vec_classes, t.num_vector_embeds
            ));
        }
        if t.num_embeds_ada_norm != self.scheduler_config.num_train_timesteps {
            problems.push(format!(
                "transformer num_embeds_ada_norm {} ≠ scheduler num_train_timesteps {}",
                t.num_embeds_ada_norm, self.scheduler_config.num_train_timesteps
            ));
        }
        if t.cross_attention_dim != text.hidden_size {
            problems.push(format!(
                "transformer cross_attention_dim {} ≠ text encoder hidden_size {}",
                t.cross_attention_dim, text.hidden_size
            ));
        }
        if self.tokenizer.max_id() as usize >= text.vocab_size {
            problems.push(format!(
                "tokenizer ids reach {} but the text encoder's vocab_size is {} (ids 0 to {})",
                self.tokenizer.max_id(),
                text.vocab_size,
                text.vocab_size - 1
            ));
        }
        if self.tokenizer.model_max_length() > text.max_position_embeddings {
            problems.push(format!(
                "tokenizer model_max_length {} > text encoder max_position_embeddings {}",
                self.tokenizer.model_max_length(),
                text.max_position_embeddings
            ));
        }
        if let NegativeEmbeddings::Learned(e) = &self.negative {
            let [length, hidden] = e.dims();
            if length != self.tokenizer.model_max_length() || hidden != text.hidden_size {
                problems.push(format!(
                    "learned negative embeddings are [{length}, {hidden}], expected [{}, {}]",
                    self.tokenizer.model_max_length(),
                    text.hidden_size
                ));
            }
        }
        match problems.is_empty() {
            true => Ok(()),
            false => Err(PipelineError::Incompatible(problems.join("; "))),
        }
    }
}
