//! diffusers' `BasicTransformerBlock` (`models/attention.py`) with `norm_type = "ada_norm"`:
//! pre-norm self-attention, cross-attention and feed-forward, each added to the residual.

use burn::module::Module;
use burn::nn::{LayerNorm, LayerNormConfig};
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor};
use vq_kernels::KernelBackend;

use crate::attention::{Attention, AttentionConfig};
use crate::feed_forward::{FeedForward, FeedForwardConfig};
use crate::norm::{AdaLayerNorm, AdaLayerNormConfig};
use crate::Transformer2DConfig;

/// Feed-forward hidden width multiplier (diffusers' `FeedForward(mult=4)`).
const FF_MULT: usize = 4;

/// Builds one block of the model described by `config`.
pub(crate) fn init_block<B: Backend>(config: &Transformer2DConfig, device: &B::Device) -> BasicTransformerBlock<B> {
    let dim = config.inner_dim();
    let ada_norm = AdaLayerNormConfig { d_model: dim, num_embeddings: config.num_embeds_ada_norm };
    let attention = |context_dim| AttentionConfig {
        query_dim: dim,
        context_dim,
        heads: config.num_attention_heads,
        head_dim: config.attention_head_dim,
        bias: config.attention_bias,
        dropout: config.dropout,
    };
    BasicTransformerBlock {
        norm1: ada_norm.init(device),
        attn1: attention(dim).init(device),
        norm2: ada_norm.init(device),
        attn2: attention(config.cross_attention_dim).init(device),
        norm3: LayerNormConfig::new(dim).with_epsilon(config.norm_eps).init(device),
        ff: FeedForwardConfig {
            dim,
            inner_dim: dim * FF_MULT,
            activation: config.activation_fn,
            dropout: config.dropout,
        }
        .init(device),
    }
}

/// One transformer block: `h += attn1(norm1(h, t))`, `h += attn2(norm2(h, t), text)`,
/// `h += ff(norm3(h))`. No gates, no residual scaling.
#[derive(Module, Debug)]
pub struct BasicTransformerBlock<B: Backend> {
    /// AdaLayerNorm before self-attention (`transformer_blocks.i.norm1`).
    pub norm1: AdaLayerNorm<B>,
    /// Self-attention over the latent pixels (`transformer_blocks.i.attn1`).
    pub attn1: Attention<B>,
    /// AdaLayerNorm before cross-attention (`transformer_blocks.i.norm2`).
    pub norm2: AdaLayerNorm<B>,
    /// Cross-attention from the latent pixels to every text token, padding included
    /// (`transformer_blocks.i.attn2`).
    pub attn2: Attention<B>,
    /// Affine LayerNorm before the feed-forward network (`transformer_blocks.i.norm3`).
    pub norm3: LayerNorm<B>,
    /// Feed-forward network (`transformer_blocks.i.ff`).
    pub ff: FeedForward<B>,
}

impl<B: KernelBackend> BasicTransformerBlock<B> {
    /// # Shapes
    ///
    /// - `hidden`: `[batch, n, D]`
    /// - `text`: `[batch, l, cross_attention_dim]` (`encoder_hidden_states`)
    /// - `timesteps`: `[batch or 1, 1]` timestep ids
    /// - output: `[batch, n, D]`
    pub fn forward(&self, hidden: Tensor<B, 3>, text: Tensor<B, 3>, timesteps: Tensor<B, 2, Int>) -> Tensor<B, 3> {
        let (k, v) = self.attn2.key_value(text);
        self.forward_key_value(hidden, k, v, timesteps)
    }

    /// [`forward`](Self::forward) with the cross-attention's keys and values of the text
    /// already projected (`attn2.key_value(text)`, `[batch, l, D]` each).
    pub fn forward_key_value(
        &self,
        hidden: Tensor<B, 3>,
        text_k: Tensor<B, 3>,
        text_v: Tensor<B, 3>,
        timesteps: Tensor<B, 2, Int>,
    ) -> Tensor<B, 3> {
        let normed = self.norm1.forward(hidden.clone(), timesteps.clone());
        let hidden = self.attn1.forward(normed, None) + hidden;
        let normed = self.norm2.forward(hidden.clone(), timesteps);
        let hidden = self.attn2.forward_key_value(normed, text_k, text_v) + hidden;
        self.ff.forward(self.norm3.forward(hidden.clone())) + hidden
    }
}
