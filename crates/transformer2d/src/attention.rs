//! Multi-head attention as diffusers' `Attention` with `AttnProcessor2_0` computes it for this
//! model (`models/attention_processor.py`): no masks, no norms on q/k, no residual inside, output
//! rescale 1.

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use vq_kernels::{AttentionOptions, KernelBackend};

/// Configuration of an [`Attention`] layer.
#[derive(Debug, Clone)]
pub(crate) struct AttentionConfig {
    /// Width D of the queries and of the output (`query_dim`).
    pub(crate) query_dim: usize,
    /// Width of the keys/values source: D for self-attention, the text width for
    /// cross-attention (`cross_attention_dim`).
    pub(crate) context_dim: usize,
    /// Number of heads.
    pub(crate) heads: usize,
    /// Width of one head; heads × head width = D.
    pub(crate) head_dim: usize,
    /// Whether q/k/v have a bias (`attention_bias`).
    pub(crate) bias: bool,
    /// Dropout after the output projection (`to_out[1]`).
    pub(crate) dropout: f64,
}

impl AttentionConfig {
    pub(crate) fn init<B: Backend>(&self, device: &B::Device) -> Attention<B> {
        let inner = self.heads * self.head_dim;
        let proj = |d_in| LinearConfig::new(d_in, inner).with_bias(self.bias).init(device);
        Attention {
            to_q: proj(self.query_dim),
            to_k: proj(self.context_dim),
            to_v: proj(self.context_dim),
            to_out: LinearConfig::new(inner, self.query_dim).init(device),
            dropout: DropoutConfig::new(self.dropout).init(),
            heads: self.heads,
        }
    }
}

/// `to_out(softmax(q kᵀ / √head_dim) v)` over `heads` heads.
#[derive(Module, Debug)]
pub struct Attention<B: Backend> {
    /// Query projection D → D (`attnN.to_q`).
    pub to_q: Linear<B>,
    /// Key projection context → D (`attnN.to_k`).
    pub to_k: Linear<B>,
    /// Value projection context → D (`attnN.to_v`).
    pub to_v: Linear<B>,
    /// Output projection D → D, always with bias (`attnN.to_out.0`).
    pub to_out: Linear<B>,
    /// `to_out[1]`.
    pub dropout: Dropout,
    /// Number of heads.
    pub heads: usize,
}

impl<B: KernelBackend> Attention<B> {
    /// # Shapes
    ///
    /// - `x`: `[batch, n, D]` queries (and keys/values when `context` is `None`)
    /// - `context`: `[batch, l, context_dim]` keys/values source for cross-attention
    /// - output: `[batch, n, D]`
    pub fn forward(&self, x: Tensor<B, 3>, context: Option<Tensor<B, 3>>) -> Tensor<B, 3> {
        let (k, v) = self.key_value(context.unwrap_or_else(|| x.clone()));
        self.forward_key_value(x, k, v)
    }

    /// The keys and values of `context` (`to_k`, `to_v`): what a cross-attention over a fixed
    /// text computes once for every step.
    ///
    /// # Shapes
    ///
    /// - `context`: `[batch, l, context_dim]`
    /// - output: two `[batch, l, D]`
    pub fn key_value(&self, context: Tensor<B, 3>) -> (Tensor<B, 3>, Tensor<B, 3>) {
        (self.to_k.forward(context.clone()), self.to_v.forward(context))
    }

    /// [`forward`](Self::forward) with the keys and values already projected
    /// ([`key_value`](Self::key_value)).
    ///
    /// # Shapes
    ///
    /// - `x`: `[batch, n, D]` queries
    /// - `k`, `v`: `[batch, l, D]`
    /// - output: `[batch, n, D]`
    pub fn forward_key_value(&self, x: Tensor<B, 3>, k: Tensor<B, 3>, v: Tensor<B, 3>) -> Tensor<B, 3> {
        let q = self.to_q.forward(x);
        let out = B::multi_head_attention(q, k, v, AttentionOptions::heads(self.heads));
        self.dropout.forward(self.to_out.forward(out))
    }
}
