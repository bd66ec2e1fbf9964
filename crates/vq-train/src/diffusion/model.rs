//! The trained part of the pipeline: CLIP-architecture text encoder, discrete
//! `Transformer2DModel` and the learned null text embedding of classifier-free guidance.

use vq_kernels::KernelBackend;

use crate::TrainError;
use burn::module::{Module, Param};
use burn::tensor::{backend::Backend, Bool, Distribution, Int, Tensor};
use clip_text::{CLIPTextConfig, CLIPTextModel, HiddenAct};
use serde::{Deserialize, Serialize};
use transformer2d::{FeedForwardActivation, Timesteps, Transformer2DConfig, Transformer2DModel};
use vq_pipeline::l2_normalize_last;

/// Sizes of the text encoder and the transformer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextToTokensConfig {
    /// Codebook size K of the VQ-VAE (the transformer has K + 1 input classes).
    pub num_classes: usize,
    /// Side of the latent grid.
    pub latent_size: usize,
    /// T, the number of diffusion steps (`num_embeds_ada_norm`, `num_train_timesteps`).
    pub num_timesteps: usize,
    /// Transformer attention heads.
    pub heads: usize,
    /// Transformer head width (model width = heads × head width).
    pub head_dim: usize,
    /// Transformer blocks.
    pub layers: usize,
    /// Text encoder vocabulary (the trimmed tokenizer's size).
    pub vocab_size: usize,
    /// Text encoder width (= the transformer's `cross_attention_dim`).
    pub text_width: usize,
    /// Text encoder layers.
    pub text_layers: usize,
    /// Text encoder heads.
    pub text_heads: usize,
    /// Token positions (= the tokenizer's `model_max_length`).
    pub text_length: usize,
    /// EOS id of the tokenizer (the text encoder config's `eos_token_id`).
    pub eos_token_id: i64,
}

impl TextToTokensConfig {
    /// The transformer's config (ITHQ's choices: q/k/v bias, `geglu-approximate`).
    pub fn transformer(&self) -> Transformer2DConfig {
        Transformer2DConfig::new(self.num_classes + 1, self.latent_size, self.num_timesteps, self.text_width)
            .with_num_attention_heads(self.heads)
            .with_attention_head_dim(self.head_dim)
            .with_num_layers(self.layers)
            .with_attention_bias(true)
            .with_activation_fn(FeedForwardActivation::GegluApproximate)
    }

    /// The text encoder's config (CLIP's: quick GELU, 4 × MLP).
    pub fn text_encoder(&self) -> CLIPTextConfig {
        CLIPTextConfig {
            vocab_size: self.vocab_size,
            hidden_size: self.text_width,
            intermediate_size: 4 * self.text_width,
            num_hidden_layers: self.text_layers,
            num_attention_heads: self.text_heads,
            max_position_embeddings: self.text_length,
            hidden_act: HiddenAct::QuickGelu,
            layer_norm_eps: 1e-5,
            eos_token_id: self.eos_token_id,
        }
    }

    /// A randomly initialised model: transformers' N(0, 0.02²) for the text encoder's
    /// matrices, burn's defaults for the transformer (Kaiming-uniform Linear, N(0, 1)
    /// embeddings, like torch's), and a null embedding with unit-norm-sized rows.
    ///
    /// Fails when the sizes describe no valid text encoder or transformer.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<TextToTokens<B>, TrainError> {
        let text_encoder =
            self.text_encoder().init_random(device).map_err(|e| TrainError::model("text encoder config", e))?;
        let transformer = self.transformer().init(device).map_err(|e| TrainError::model("transformer config", e))?;
        let std = 1.0 / (self.text_width as f64).sqrt();
        Ok(TextToTokens {
            text_encoder,
            transformer,
            null_embedding: Param::from_tensor(Tensor::random(
                [self.text_length, self.text_width],
                Distribution::Normal(0.0, std),
                device,
            )),
        })
    }
}

/// Text encoder + transformer + null embedding, trained together.
#[derive(Module, Debug)]
pub struct TextToTokens<B: Backend> {
    /// CLIP-architecture text encoder (`text_encoder/`).
    pub text_encoder: CLIPTextModel<B>,
    /// The discrete diffusion transformer (`transformer/`).
    pub transformer: Transformer2DModel<B>,
    /// The unconditional text embedding `[L, H]`
    /// (`learned_classifier_free_sampling_embeddings/`), used as stored.
    pub null_embedding: Param<Tensor<B, 2>>,
}

impl<B: KernelBackend> TextToTokens<B> {
    /// Conditioning as the pipeline builds it: CLIP's last hidden state with every token
    /// vector L2-normalised, or the null embedding (unnormalised) where `dropped`.
    ///
    /// # Shapes
    /// - ids: `[batch, L]`
    /// - dropped: `[batch]`
    /// - output: `[batch, L, H]`
    pub fn condition(&self, ids: Tensor<B, 2, Int>, dropped: Tensor<B, 1, Bool>) -> Tensor<B, 3> {
        let text = l2_normalize_last(self.text_encoder.forward(ids).last_hidden_state);
        let [batch, length, hidden] = text.dims();
        let null = self.null_embedding.val().unsqueeze_dim::<3>(0).expand([batch, length, hidden]);
        text.mask_where(dropped.reshape([batch, 1, 1]).expand([batch, length, hidden]), null)
    }

    /// log p_θ(x_0 | x_t, text) for per-sample timesteps.
    ///
    /// # Shapes
    /// - x_t: `[batch, pixels]`, ids in `0..=K`
    /// - ids: `[batch, L]`; dropped: `[batch]`
    /// - output: `[batch, K, pixels]`
    pub fn forward(
        &self,
        x_t: Tensor<B, 2, Int>,
        ids: Tensor<B, 2, Int>,
        dropped: Tensor<B, 1, Bool>,
        t: Vec<usize>,
    ) -> Tensor<B, 3> {
        let condition = self.condition(ids, dropped);
        self.transformer.forward(x_t, condition, &Timesteps::PerSample(t))
    }
}
