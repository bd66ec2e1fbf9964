//! burn's kernel-fusion wrapper `Fusion<B>` (the default `cuda` and `wgpu` backends).

use burn::tensor::Tensor;
use burn_fusion::{Fusion, FusionBackend};

use crate::{AttentionOptions, KernelBackend};

impl<B: FusionBackend + KernelBackend> KernelBackend for Fusion<B> {
    /// Composed of tensor ops at this level, where the fusion merges the softmax's element-wise
    /// passes.
    fn multi_head_attention(q: Tensor<Self, 3>, k: Tensor<Self, 3>, v: Tensor<Self, 3>, options: AttentionOptions<Self>) -> Tensor<Self, 3> {
        super::cube::gpu_attention(q, k, v, options)
    }
}
