//! burn's `Autodiff<B>`: training. The portable methods record their gradients; convolutions
//! run as matrix products, whose gradients every backend computes fast.

use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::Autodiff;
use burn::nn::conv::Conv2d;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use crate::{portable, KernelBackend};

impl<B: Backend, C: CheckpointStrategy> KernelBackend for Autodiff<B, C> {
    /// As one matrix product ([`portable::conv2d_gemm`]): burn 0.21's direct convolution
    /// gradients were 79 % of the kernel time of a VQ-VAE training step on an H100 without
    /// autotuning, and NdArray's are slower still.
    fn convolution(conv: &Conv2d<Self>, x: Tensor<Self, 4>) -> Tensor<Self, 4> {
        portable::conv2d_by_gemm(conv, x)
    }
}
