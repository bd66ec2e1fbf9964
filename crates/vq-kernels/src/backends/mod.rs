//! [`KernelBackend`](crate::KernelBackend) for burn's backends, one file per family, each behind
//! the cargo feature of the same name.

#[cfg(feature = "autodiff")]
mod autodiff;
#[cfg(feature = "cubecl")]
mod cube;
#[cfg(feature = "flex")]
mod flex;
#[cfg(feature = "fusion")]
mod fusion;
#[cfg(feature = "ndarray")]
mod ndarray;

/// The methods a CPU backend overrides: the same host code serves NdArray and Flex.
#[cfg(any(feature = "ndarray", feature = "flex"))]
macro_rules! cpu_methods {
    () => {
        const GEMM_CONVOLUTIONS_UNDER_AUTODIFF: bool = true;

        fn multi_head_attention(
            q: burn::tensor::Tensor<Self, 3>,
            k: burn::tensor::Tensor<Self, 3>,
            v: burn::tensor::Tensor<Self, 3>,
            options: crate::AttentionOptions<Self>,
        ) -> burn::tensor::Tensor<Self, 3> {
            crate::cpu::attention(q, k, v, options)
        }

        fn quick_gelu<const D: usize>(x: burn::tensor::Tensor<Self, D>) -> burn::tensor::Tensor<Self, D> {
            crate::cpu::quick_gelu(x)
        }

        fn split_batch<T: Send>(batch: usize, run: impl Fn(std::ops::Range<usize>) -> T + Sync) -> Vec<T> {
            crate::cpu::split_batch(batch, run)
        }
    };
}
#[cfg(any(feature = "ndarray", feature = "flex"))]
use cpu_methods;
