//! Starting stage 2 from an exported pipeline (`vq-train transformer --init-from`): its text
//! encoder, transformer and null embedding, e.g. a pipeline that [`super::retarget_pipeline`]
//! moved onto a new VQ-VAE.

use std::path::Path;
use vq_kernels::KernelBackend;

use burn::module::Param;
use vq_pipeline::{NegativeEmbeddings, PipelineConfigs, VQDiffusionPipeline};

use super::model::{TextToTokens, TextToTokensConfig};
use crate::TrainError;

impl TextToTokensConfig {
    /// The sizes of a pipeline's text encoder and transformer.
    ///
    /// # Errors
    /// [`TrainError::Model`] when the configs describe a model stage 2 does not train (another
    /// activation, no q/k/v bias, an MLP other than 4 × wide, …).
    pub fn from_pipeline_configs(configs: &PipelineConfigs) -> Result<Self, TrainError> {
        let (transformer, text) = (&configs.transformer, &configs.text_encoder);
        let config = Self {
            num_classes: transformer.num_classes(),
            latent_size: transformer.sample_size,
            num_timesteps: transformer.num_embeds_ada_norm,
            heads: transformer.num_attention_heads,
            head_dim: transformer.attention_head_dim,
            layers: transformer.num_layers,
            vocab_size: text.vocab_size,
            text_width: text.hidden_size,
            text_layers: text.num_hidden_layers,
            text_heads: text.num_attention_heads,
            text_length: text.max_position_embeddings,
            eos_token_id: text.eos_token_id,
        };
        // Compared as JSON: the burn `Config` derive gives serialisation, not equality.
        let as_json = |c: &transformer2d::Transformer2DConfig| serde_json::to_value(c).expect("configs serialize");
        if as_json(&config.transformer()) != as_json(transformer) {
            return Err(TrainError::model(
                "transformer config",
                format!("not a transformer stage 2 trains: {transformer} (expected {})", config.transformer()),
            ));
        }
        if &config.text_encoder() != text {
            return Err(TrainError::model(
                "text encoder config",
                format!("not a text encoder stage 2 trains: {text:?} (expected {:?})", config.text_encoder()),
            ));
        }
        Ok(config)
    }
}

impl<B: KernelBackend> TextToTokens<B> {
    /// The text encoder, transformer and learned null embedding of a pipeline folder (loaded as
    /// [`VQDiffusionPipeline::from_dir`] loads them: f16 or f32 files, cast to the device's
    /// float type), with their sizes.
    ///
    /// # Errors
    /// [`TrainError::Model`] naming the folder when it does not load as a pipeline, has no
    /// learned null embedding, or holds a model stage 2 does not train.
    pub fn from_pipeline(dir: &Path, device: &B::Device) -> Result<(TextToTokensConfig, Self), TrainError> {
        let context = || dir.display().to_string();
        let pipeline =
            VQDiffusionPipeline::<B>::from_dir(dir, None, device).map_err(|e| TrainError::model(context(), e))?;
        let config = TextToTokensConfig::from_pipeline_configs(&pipeline.configs)
            .map_err(|e| TrainError::model(context(), e))?;
        let NegativeEmbeddings::Learned(null) = pipeline.negative else {
            return Err(TrainError::model(context(), "its classifier-free null embedding is not learned"));
        };
        let model = Self {
            text_encoder: pipeline.text_encoder,
            transformer: pipeline.transformer,
            null_embedding: Param::from_tensor(null),
        };
        Ok((config, model))
    }
}
