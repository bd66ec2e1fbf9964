//! The VAE spatial self-attention block: diffusers' `Attention` built with
//! `_from_deprecated_attn_block=True`, `residual_connection=True` and one head of all channels,
//! run by `AttnProcessor2_0` (`diffusers/models/attention_processor.py`).
//!
//! The score matrix has `(H·W)²` entries per image: 1024² (4 MiB in f32) at the 32×32 lowest
//! resolution of a 256×256 ITHQ image, 4096² (64 MiB) for a 512×512 image, 16384² (1 GiB) for
//! 1024×1024. [`attention`] therefore splits the queries into chunks so that one chunk's scores
//! never exceed [`MAX_ATTENTION_SCORES`] elements; rows are independent, so chunking does not
//! change the result.

use burn::config::Config;
use burn::module::Module;
use burn::nn::{GroupNorm, Linear, LinearConfig};
use burn::tensor::backend::Backend;
use burn::tensor::module::attention as fused_attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{DType, FloatDType, Tensor};

use crate::norm::{group_norm, group_norm_config};

/// Upper bound on the attention scores held at once (batch × query rows × keys): 2²⁴ elements,
/// 64 MiB in f32. A 512×512 image at ITHQ size (4096 tokens) fits in one chunk; larger images
/// are processed in query chunks.
pub const MAX_ATTENTION_SCORES: usize = 1 << 24;

/// Configuration of an [`AttentionBlock`].
#[derive(Config, Debug)]
pub struct AttentionBlockConfig {
    /// Channels `C` (also the width of the single head).
    pub channels: usize,
    /// Groups of the input GroupNorm.
    pub num_groups: usize,
}

/// `x + to_out(softmax(q kᵀ / √C) v)` with `q, k, v = to_q/to_k/to_v(group_norm(x))` over the
/// `H·W` positions of each image.
///
/// Checkpoint names: `to_q/to_k/to_v/to_out.0` (diffusers ≥ 0.14 `save_pretrained`) or
/// `query/key/value/proj_attn` (the Hub files); both map here (see [`crate::keys`]).
#[derive(Module, Debug)]
pub struct AttentionBlock<B: Backend> {
    /// `…attentions.N.group_norm`: GroupNorm, eps 1e−6.
    pub group_norm: GroupNorm<B>,
    /// `…attentions.N.to_q` (hub: `query`): Linear C → C with bias.
    pub to_q: Linear<B>,
    /// `…attentions.N.to_k` (hub: `key`): Linear C → C with bias.
    pub to_k: Linear<B>,
    /// `…attentions.N.to_v` (hub: `value`): Linear C → C with bias.
    pub to_v: Linear<B>,
    /// `…attentions.N.to_out.0` (hub: `proj_attn`): Linear C → C with bias.
    pub to_out: Linear<B>,
}

impl AttentionBlockConfig {
    /// Initializes the block with random weights.
    pub fn init<B: Backend>(&self, device: &B::Device) -> AttentionBlock<B> {
        let linear = || LinearConfig::new(self.channels, self.channels).init(device);
        AttentionBlock {
            group_norm: group_norm_config(self.num_groups, self.channels).init(device),
            to_q: linear(),
            to_k: linear(),
            to_v: linear(),
            to_out: linear(),
        }
    }
}

impl<B: Backend> AttentionBlock<B> {
    /// # Shapes
    ///
    /// - input: `[batch, channels, height, width]`
    /// - output: `[batch, channels, height, width]`
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let [batch, channels, height, width] = x.dims();
        let tokens = height * width;
        // [B, C, H, W] -> [B, C, H·W] -> [B, H·W, C]
        let h = group_norm(&self.group_norm, x.clone()).reshape([batch, channels, tokens]).swap_dims(1, 2);
        // One head: [B, H·W, C] -> [B, 1, H·W, C]
        let q = self.to_q.forward(h.clone()).unsqueeze_dim::<4>(1);
        let k = self.to_k.forward(h.clone()).unsqueeze_dim::<4>(1);
        let v = self.to_v.forward(h).unsqueeze_dim::<4>(1);
        let o = attention(q, k, v, MAX_ATTENTION_SCORES).squeeze_dim::<3>(1);
        // [B, H·W, C] -> [B, C, H·W] -> [B, C, H, W]
        let o = self.to_out.forward(o).swap_dims(1, 2).reshape([batch, channels, height, width]);
        o + x
    }
}

/// `softmax(q kᵀ / √d) v` without masks, by burn's fused attention op, over query chunks whose
/// scores hold at most `max_scores` elements (at least one query row per chunk).
///
/// Half-precision inputs are computed in f32 (diffusers builds these blocks with
/// `upcast_softmax=True`) and rounded back.
///
/// # Shapes
///
/// - q: `[batch, heads, queries, d]`; k, v: `[batch, heads, keys, d]`
/// - output: `[batch, heads, queries, d]`
pub fn attention<B: Backend>(q: Tensor<B, 4>, k: Tensor<B, 4>, v: Tensor<B, 4>, max_scores: usize) -> Tensor<B, 4> {
    let dtype = q.dtype();
    if matches!(dtype, DType::F16 | DType::BF16) {
        let f32 = |t: Tensor<B, 4>| t.cast(FloatDType::F32);
        return attention(f32(q), f32(k), f32(v), max_scores).cast(dtype);
    }
    let [batch, heads, queries, _] = q.dims();
    let keys = k.dims()[2];
    let rows = (max_scores / (batch * heads * keys).max(1)).max(1);
    let run = |q| fused_attention(q, k.clone(), v.clone(), None, None, AttentionModuleOptions::default());
    if rows >= queries {
        return run(q);
    }
    let chunks = q.split(rows, 2).into_iter().map(run).collect();
    Tensor::cat(chunks, 2)
}
