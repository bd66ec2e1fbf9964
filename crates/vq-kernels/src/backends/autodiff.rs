//! burn's `Autodiff<B>`: training. The portable methods record their gradients; convolutions
//! run as matrix products where the inner backend's own convolution gradients are slow.

use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::Autodiff;
use burn::nn::conv::Conv2d;
use burn::tensor::Tensor;

use crate::{portable, KernelBackend};

impl<B: KernelBackend, C: CheckpointStrategy> KernelBackend for Autodiff<B, C> {
    /// As one matrix product ([`portable::conv2d_gemm`]) where the inner backend says so
    /// ([`KernelBackend::GEMM_CONVOLUTIONS_UNDER_AUTODIFF`]), else its convolution.
    fn convolution(conv: &Conv2d<Self>, x: Tensor<Self, 4>) -> Tensor<Self, 4> {
        if B::GEMM_CONVOLUTIONS_UNDER_AUTODIFF {
            portable::conv2d_by_gemm(conv, x)
        } else {
            conv.forward(x)
        }
    }
}

#[cfg(test)]
mod tests {
    use burn::backend::{Autodiff, NdArray};
    use burn::nn::conv::Conv2dConfig;
    use burn::nn::PaddingConfig2d;
    use burn::tensor::Distribution;

    use super::*;

    /// Training over NdArray convolves by the GEMM form, bit for bit. (Whether NdArray's own
    /// kernel would give other bits depends on the vector unit, so that is not asserted.)
    #[test]
    fn autodiff_over_a_cpu_backend_convolves_by_matrix_product() {
        type A = Autodiff<NdArray<f32>>;
        let device = Default::default();
        let conv =
            Conv2dConfig::new([3, 4], [3, 3]).with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1)).init::<A>(&device);
        let x = Tensor::<A, 4>::random([2, 3, 6, 5], Distribution::Default, &device);
        let got = A::convolution(&conv, x.clone()).into_data();
        assert_eq!(got, portable::conv2d_by_gemm(&conv, x.clone()).into_data());
        conv.forward(x).into_data().assert_approx_eq::<f32>(&got, burn::tensor::Tolerance::absolute(1e-5));
    }
}
