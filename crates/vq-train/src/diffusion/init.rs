//! Starting stage 2 from an exported pipeline (`train-transformer --init-from`): its text
//! encoder, transformer and null embedding, e.g. a pipeline that [`super::retarget_pipeline`]
//! moved onto a new VQ-VAE.

use std::path::Path;

use burn::module::Param;
use burn::tensor::backend::Backend;
use burn::tensor::{get_device_settings, DType, Tensor};
use clip_text::CLIPTextConfig;
use transformer2d::Transformer2DConfig;

use super::model::{TextToTokens, TextToTokensConfig};
use crate::TrainError;

const NULL_EMBEDDING_DIR: &str = "learned_classifier_free_sampling_embeddings";

impl TextToTokensConfig {
    /// The sizes of the pipeline folder's text encoder and transformer.
    ///
    /// # Errors
    /// [`TrainError::Model`] when a config cannot be read or describes a model stage 2 does not
    /// train (another activation, no q/k/v bias, an MLP other than 4 × wide, …).
    pub fn from_pipeline(dir: &Path) -> Result<Self, TrainError> {
        let context = |part: &str| format!("{}: {part}", dir.display());
        let transformer = Transformer2DConfig::from_diffusers_file(&dir.join("transformer/config.json"))
            .map_err(|e| TrainError::model(context("transformer config"), e))?;
        let text = CLIPTextConfig::from_file(&dir.join("text_encoder/config.json"))
            .map_err(|e| TrainError::model(context("text encoder config"), e))?;
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
        let as_json = |c: &Transformer2DConfig| serde_json::to_value(c).expect("configs serialize");
        if as_json(&config.transformer()) != as_json(&transformer) {
            return Err(TrainError::model(
                context("transformer config"),
                format!("not a transformer stage 2 trains: {transformer} (expected {})", config.transformer()),
            ));
        }
        if config.text_encoder() != text {
            return Err(TrainError::model(
                context("text encoder config"),
                format!("not a text encoder stage 2 trains: {text:?} (expected {:?})", config.text_encoder()),
            ));
        }
        Ok(config)
    }
}

impl<B: Backend> TextToTokens<B> {
    /// Every parameter from the pipeline folder's weights (f16 or f32 files, cast to the
    /// device's float type); the model must have the folder's sizes
    /// ([`TextToTokensConfig::from_pipeline`]).
    ///
    /// # Errors
    /// [`TrainError::Model`] naming the file and tensor that is missing or misshapen.
    pub fn load_pipeline(self, dir: &Path, device: &B::Device) -> Result<Self, TrainError> {
        let weights = |component: &str, stem: &str| {
            vq_weights::find_weights_file(&dir.join(component), stem, None)
                .map_err(|e| TrainError::model(format!("{}: {component}", dir.display()), e))
        };
        let file = weights("text_encoder", "model")?;
        let text_encoder =
            self.text_encoder.load_weights(&file, device).map_err(|e| TrainError::model("text encoder", e))?;
        let dtype: DType = get_device_settings::<B>(device).float_dtype.into();
        let file = weights("transformer", "diffusion_pytorch_model")?;
        let transformer =
            self.transformer.load_weights(&file, dtype).map_err(|e| TrainError::model("transformer", e))?;
        let file = weights(NULL_EMBEDDING_DIR, "diffusion_pytorch_model")?;
        let null = vq_weights::read_tensor(&file, "embeddings").map_err(|e| TrainError::model("null embedding", e))?;
        let expected = self.null_embedding.val().dims();
        if null.shape.as_slice() != expected {
            return Err(TrainError::model(
                file.display().to_string(),
                format!("`embeddings` has shape {:?}, expected {expected:?}", null.shape),
            ));
        }
        let null_embedding = Param::from_tensor(Tensor::from_data(null.convert_dtype(dtype), device));
        Ok(Self { text_encoder, transformer, null_embedding })
    }
}
