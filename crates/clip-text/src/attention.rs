//! Causal multi-head self-attention (transformers' `CLIPAttention` with the causal mask that
//! `CLIPTextModel` builds).

use burn::module::{Initializer, Module};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{backend::Backend, Bool, Tensor};
use vq_kernels::{AttentionOptions, KernelBackend};

/// Configuration of a [`CLIPAttention`] layer.
#[derive(Debug, Clone)]
pub(crate) struct CLIPAttentionConfig {
    /// Width H of the hidden states (`hidden_size`).
    pub(crate) hidden_size: usize,
    /// Number of heads; H is a multiple of it (`num_attention_heads`).
    pub(crate) num_heads: usize,
}

impl CLIPAttentionConfig {
    /// Zero projections: loading replaces them, and zeros are the cheapest fill.
    pub(crate) fn init<B: Backend>(&self, device: &B::Device) -> CLIPAttention<B> {
        let linear =
            || LinearConfig::new(self.hidden_size, self.hidden_size).with_initializer(Initializer::Zeros).init(device);
        CLIPAttention {
            q_proj: linear(),
            k_proj: linear(),
            v_proj: linear(),
            out_proj: linear(),
            num_heads: self.num_heads,
        }
    }
}

/// Self-attention with `q/k/v/out_proj` (all with bias), scale `1/√head_dim`, causal.
#[derive(Module, Debug)]
pub struct CLIPAttention<B: Backend> {
    /// `self_attn.q_proj`: Linear H → H.
    pub q_proj: Linear<B>,
    /// `self_attn.k_proj`: Linear H → H.
    pub k_proj: Linear<B>,
    /// `self_attn.v_proj`: Linear H → H.
    pub v_proj: Linear<B>,
    /// `self_attn.out_proj`: Linear H → H.
    pub out_proj: Linear<B>,
    /// Number of heads.
    pub num_heads: usize,
}

impl<B: KernelBackend> CLIPAttention<B> {
    /// Each position attends to itself and the positions before it, except keys hidden by
    /// `key_padding_mask`.
    ///
    /// # Shapes
    ///
    /// - `hidden_states`: `[batch, L, H]`
    /// - `key_padding_mask`: `[batch, L]`, `true` where a key is padding
    /// - output: `[batch, L, H]`
    pub fn forward(&self, hidden_states: Tensor<B, 3>, key_padding_mask: Option<Tensor<B, 2, Bool>>) -> Tensor<B, 3> {
        let query = self.q_proj.forward(hidden_states.clone());
        let key = self.k_proj.forward(hidden_states.clone());
        let value = self.v_proj.forward(hidden_states);
        let options = AttentionOptions::heads(self.num_heads).with_causal().with_key_padding_mask(key_padding_mask);
        self.out_proj.forward(B::multi_head_attention(query, key, value, options))
    }
}
