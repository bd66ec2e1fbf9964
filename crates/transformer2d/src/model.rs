//! `Transformer2DModel` on discrete input (diffusers `models/transformers/transformer_2d.py`,
//! `_init_vectorized_inputs`, `forward`, `_get_output_for_vectorized_inputs`).

use burn::module::Module;
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor};
use vq_kernels::KernelBackend;

use crate::block::{init_block, BasicTransformerBlock};
use crate::embedding::{ImagePositionalEmbeddings, ImagePositionalEmbeddingsConfig};
use crate::{ConfigError, Timesteps, Transformer2DConfig};

/// Epsilon of `norm_out`: diffusers builds `nn.LayerNorm(inner_dim)` with torch's default.
pub(crate) const NORM_OUT_EPS: f64 = 1e-5;

impl Transformer2DConfig {
    /// Builds a model with freshly initialised (lazy) parameters; load weights with
    /// [`Transformer2DModel::load_weights`]. Fails if [`validate`](Self::validate) does.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<Transformer2DModel<B>, ConfigError> {
        self.validate()?;
        let dim = self.inner_dim();
        Ok(Transformer2DModel {
            latent_image_embedding: ImagePositionalEmbeddingsConfig {
                num_embed: self.num_vector_embeds,
                height: self.sample_size,
                width: self.sample_size,
                embed_dim: dim,
            }
            .init(device),
            transformer_blocks: (0..self.num_layers).map(|_| init_block(self, device)).collect(),
            norm_out: LayerNormConfig::new(dim).with_epsilon(NORM_OUT_EPS).init(device),
            out: LinearConfig::new(dim, self.num_classes()).init(device),
            num_embeds_ada_norm: self.num_embeds_ada_norm,
            cross_attention_dim: self.cross_attention_dim,
            norm_eps: self.norm_eps,
        })
    }
}

/// diffusers' `Transformer2DModel` for vector-quantized latents: predicts log p(x₀ | x_t, text)
/// for every latent pixel from the noised class ids x_t, the text embeddings and the timestep.
#[derive(Module, Debug)]
pub struct Transformer2DModel<B: Backend> {
    /// Class + position embedding of the input ids (`latent_image_embedding`).
    pub latent_image_embedding: ImagePositionalEmbeddings<B>,
    /// The transformer blocks (`transformer_blocks.{i}`).
    pub transformer_blocks: Vec<BasicTransformerBlock<B>>,
    /// Affine LayerNorm of the last hidden state (`norm_out`).
    pub norm_out: LayerNorm<B>,
    /// Projection D → K class logits, no mask class (`out`).
    pub out: Linear<B>,
    /// Number of timestep embeddings; valid timesteps are below it.
    pub num_embeds_ada_norm: usize,
    /// Width of the text embeddings.
    pub cross_attention_dim: usize,
    /// Epsilon of every block's `norm3` (the config's `norm_eps`).
    pub norm_eps: f64,
}

/// What the cross-attentions of a forward attend to.
#[derive(Debug, Clone)]
pub(crate) enum Context<B: Backend> {
    /// The text embeddings `[batch, l, cross_attention_dim]`.
    Text(Tensor<B, 3>),
    /// Every block's cross-attention keys and values of the text, `[batch, l, D]` each.
    KeyValues(Vec<(Tensor<B, 3>, Tensor<B, 3>)>),
}

impl<B: Backend> Context<B> {
    /// The samples `range` of the batch.
    fn slice(&self, range: std::ops::Range<usize>) -> Self {
        match self {
            Self::Text(text) => Self::Text(text.clone().slice([range])),
            Self::KeyValues(kv) => Self::KeyValues(
                kv.iter().map(|(k, v)| (k.clone().slice([range.clone()]), v.clone().slice([range.clone()]))).collect(),
            ),
        }
    }

    /// The batch size.
    fn batch(&self) -> usize {
        match self {
            Self::Text(text) => text.dims()[0],
            Self::KeyValues(kv) => kv.first().map_or(0, |(k, _)| k.dims()[0]),
        }
    }
}

/// Hidden states recorded by [`Transformer2DModel::forward_with_taps`], named as the
/// reference fixtures name them (`transformer.t{T}.hidden.*`). All `[batch, n, D]`.
#[derive(Debug, Clone)]
pub struct Taps<B: Backend> {
    /// Output of `latent_image_embedding`.
    pub embed: Tensor<B, 3>,
    /// Output of the first block.
    pub block0: Tensor<B, 3>,
    /// Output of the last block.
    pub block_last: Tensor<B, 3>,
    /// Output of `norm_out`.
    pub norm_out: Tensor<B, 3>,
}

/// A point of the forward pass whose hidden state can be recorded.
enum Tap {
    Embed,
    Block(usize),
    NormOut,
}

impl<B: KernelBackend> Transformer2DModel<B> {
    /// Log-probabilities of the clean classes, log p(x₀ | x_t).
    ///
    /// The log-softmax over the classes runs in f64 where the backend supports it (else f32,
    /// see [`KernelBackend::class_log_softmax`]); the result is always f32, as in diffusers.
    /// There is no mask row and no clamp.
    ///
    /// # Shapes
    ///
    /// - `latents`: `[batch, n]` class ids in `0..=K` (K = mask), `n ≤ sample_size²`
    /// - `text`: `[batch, l, cross_attention_dim]` (`encoder_hidden_states`)
    /// - `timesteps`: one shared timestep or `batch` of them, each `< num_embeds_ada_norm`
    /// - output: `[batch, K, n]` f32 log-probabilities, classes along axis 1
    ///
    /// # Panics
    ///
    /// On a batch or width mismatch between `latents` and `text`, a latent length outside
    /// `1..=sample_size²`, or invalid `timesteps` (wrong count, out of range). Ids outside
    /// `0..=K` are not checked (that would need a device read) and are an embedding
    /// out-of-bounds access.
    pub fn forward(&self, latents: Tensor<B, 2, Int>, text: Tensor<B, 3>, timesteps: &Timesteps) -> Tensor<B, 3> {
        self.forward_in(latents, &Context::Text(text), timesteps)
    }

    /// [`forward`](Self::forward) with the text given as it is or as its projections.
    pub(crate) fn forward_in(
        &self,
        latents: Tensor<B, 2, Int>,
        context: &Context<B>,
        timesteps: &Timesteps,
    ) -> Tensor<B, 3> {
        let [batch, _] = latents.dims();
        // Every sample is computed on its own: the backend may run parts of the batch side by
        // side (the values do not change); the parts are concatenated back in batch order.
        let parts = B::split_batch(batch, |range| {
            let part_timesteps = timesteps.part(batch, range.clone());
            let latents = latents.clone().slice([range.clone()]);
            self.run(latents, &context.slice(range), &part_timesteps, |_, _| {})
        });
        Tensor::cat(parts, 0)
    }

    /// [`forward`](Self::forward) that also returns intermediate hidden states, for locating
    /// parity errors. Holding them keeps four `[batch, n, D]` tensors alive.
    pub fn forward_with_taps(
        &self,
        latents: Tensor<B, 2, Int>,
        text: Tensor<B, 3>,
        timesteps: &Timesteps,
    ) -> (Tensor<B, 3>, Taps<B>) {
        let last = self.transformer_blocks.len() - 1;
        let [mut embed, mut block0, mut block_last, mut norm_out] = [None, None, None, None];
        let log_p = self.run(latents, &Context::Text(text), timesteps, |tap, hidden| match tap {
            Tap::Embed => embed = Some(hidden.clone()),
            Tap::Block(i) => {
                if i == 0 {
                    block0 = Some(hidden.clone());
                }
                if i == last {
                    block_last = Some(hidden.clone());
                }
            }
            Tap::NormOut => norm_out = Some(hidden.clone()),
        });
        let taps = Taps {
            embed: embed.expect("embed tap"),
            block0: block0.expect("block0 tap"),
            block_last: block_last.expect("last block tap"),
            norm_out: norm_out.expect("norm_out tap"),
        };
        (log_p, taps)
    }

    /// The forward pass, reporting hidden states to `tap`.
    fn run(
        &self,
        latents: Tensor<B, 2, Int>,
        context: &Context<B>,
        timesteps: &Timesteps,
        mut tap: impl FnMut(Tap, &Tensor<B, 3>),
    ) -> Tensor<B, 3> {
        let [batch, _] = latents.dims();
        let text_batch = context.batch();
        assert_eq!(text_batch, batch, "text batch {text_batch} != latent batch {batch}");
        if let Context::Text(text) = context {
            self.check_text_width(text);
        }
        let timestep_ids = timesteps.to_ids::<B>(batch, self.num_embeds_ada_norm, &latents.device());

        let mut hidden = self.latent_image_embedding.forward(latents);
        tap(Tap::Embed, &hidden);
        for (i, block) in self.transformer_blocks.iter().enumerate() {
            hidden = match context {
                Context::Text(text) => block.forward(hidden, text.clone(), timestep_ids.clone()),
                Context::KeyValues(kv) => {
                    let (k, v) = kv[i].clone();
                    block.forward_key_value(hidden, k, v, timestep_ids.clone())
                }
            };
            tap(Tap::Block(i), &hidden);
        }
        let hidden = self.norm_out.forward(hidden);
        tap(Tap::NormOut, &hidden);

        // [batch, n, K] -> [batch, K, n]: classes along axis 1, as diffusers returns them.
        let logits = self.out.forward(hidden).swap_dims(1, 2);
        B::class_log_softmax(logits, 1)
    }

    /// Panics unless `text` has the width of the cross-attentions' keys.
    pub(crate) fn check_text_width(&self, text: &Tensor<B, 3>) {
        let [_, _, text_width] = text.dims();
        assert_eq!(
            text_width, self.cross_attention_dim,
            "text width {text_width} != cross_attention_dim {}",
            self.cross_attention_dim
        );
    }
}
