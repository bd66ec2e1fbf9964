//! The VAE spatial self-attention block: diffusers' `Attention` built with
//! `_from_deprecated_attn_block=True`, `residual_connection=True` and one head of all channels,
//! run by `AttnProcessor2_0` (`diffusers/models/attention_processor.py`).
//!
//! The score matrix has `(H·W)²` entries per image: 1024² (4 MiB in f32) at the 32×32 lowest
//! resolution of a 256×256 ITHQ image, 4096² (64 MiB) for a 512×512 image, 16384² (1 GiB) for
//! 1024×1024. [`AttentionBlock::forward`] therefore splits the queries into chunks so that one
//! chunk's scores never exceed [`MAX_ATTENTION_SCORES`] elements; rows are independent, so
//! chunking does not change the result.

use burn::config::Config;
use burn::module::Module;
use burn::nn::{GroupNorm, Linear, LinearConfig};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use vq_kernels::{AttentionOptions, KernelBackend};

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

impl<B: KernelBackend> AttentionBlock<B> {
    /// # Shapes
    ///
    /// - input: `[batch, channels, height, width]`
    /// - output: `[batch, channels, height, width]`
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let [batch, channels, height, width] = x.dims();
        let tokens = height * width;
        // [B, C, H, W] -> [B, C, H·W] -> [B, H·W, C]
        let h = group_norm(&self.group_norm, x.clone()).reshape([batch, channels, tokens]).swap_dims(1, 2);
        // One head over all channels; half precision computes in f32 (`upcast_softmax=True`).
        let q = self.to_q.forward(h.clone());
        let k = self.to_k.forward(h.clone());
        let v = self.to_v.forward(h);
        let o = attention_in_chunks(q, k, v, MAX_ATTENTION_SCORES);
        // [B, H·W, C] -> [B, C, H·W] -> [B, C, H, W]
        let o = self.to_out.forward(o).swap_dims(1, 2).reshape([batch, channels, height, width]);
        o + x
    }
}

/// Single-head `softmax(q kᵀ / √C) v` over query chunks whose scores hold at most `max_scores`
/// elements (at least one query row per chunk); half precision is computed in f32.
///
/// # Shapes
///
/// - `q`: `[batch, queries, C]`; `k`, `v`: `[batch, keys, C]`
/// - output: `[batch, queries, C]`
fn attention_in_chunks<B: KernelBackend>(
    q: Tensor<B, 3>,
    k: Tensor<B, 3>,
    v: Tensor<B, 3>,
    max_scores: usize,
) -> Tensor<B, 3> {
    let [batch, queries, _] = q.dims();
    let keys = k.dims()[1];
    let rows = (max_scores / (batch * keys).max(1)).max(1);
    let attend = |q| B::multi_head_attention(q, k.clone(), v.clone(), AttentionOptions::heads(1).with_upcast());
    if rows >= queries {
        return attend(q);
    }
    Tensor::cat(q.split(rows, 1).into_iter().map(attend).collect(), 1)
}

#[cfg(test)]
mod tests {
    use burn::backend::NdArray;
    use burn::tensor::activation::softmax;
    use burn::tensor::Distribution;

    use super::*;

    type B = NdArray<f32>;

    fn random(shape: [usize; 3]) -> Tensor<B, 3> {
        Tensor::random(shape, Distribution::Normal(0.0, 1.0), &Default::default())
    }

    fn max_abs_diff(a: Tensor<B, 3>, b: Tensor<B, 3>) -> f32 {
        (a - b).abs().max().into_scalar()
    }

    #[test]
    fn attention_matches_explicit_math_and_chunking_changes_nothing() {
        let (q, k, v) = (random([2, 37, 28]), random([2, 37, 28]), random([2, 37, 28]));
        let full = attention_in_chunks(q.clone(), k.clone(), v.clone(), usize::MAX);
        let explicit =
            softmax(q.clone().matmul(k.clone().swap_dims(1, 2)).div_scalar(28f64.sqrt()), 2).matmul(v.clone());
        let diff = max_abs_diff(full.clone(), explicit);
        assert!(diff <= 1e-6, "attention vs explicit: max |diff| {diff}");
        // 2·37·5 scores per chunk → 5 query rows per chunk, the last chunk shorter.
        let chunked = attention_in_chunks(q, k, v, 2 * 37 * 5);
        let diff = max_abs_diff(full, chunked);
        assert!(diff <= 1e-6, "chunked vs whole: max |diff| {diff}");
    }
}
