//! burn's CubeCL backends (CUDA, wgpu, ROCm) without kernel fusion.

use burn::tensor::Tensor;
use burn_cubecl::{BoolElement, CubeBackend, CubeRuntime, FloatElement, IntElement};

use crate::engine::{TransformerDescription, TransformerEngine};
use crate::{portable, AttentionOptions, EngineError, KernelBackend};

impl<R: CubeRuntime, F: FloatElement, I: IntElement, BT: BoolElement> KernelBackend for CubeBackend<R, F, I, BT> {
    /// Unmasked attention composed of tensor ops: measured on an H100 in f16 (with fusion),
    /// 70.6 ms per ITHQ forward against 77.5 ms for burn's attention op, whose flash kernels skip
    /// head widths such as ITHQ's 88.
    fn multi_head_attention(
        q: Tensor<Self, 3>,
        k: Tensor<Self, 3>,
        v: Tensor<Self, 3>,
        options: AttentionOptions<Self>,
    ) -> Tensor<Self, 3> {
        gpu_attention(q, k, v, options)
    }

    /// In f32 ([`gpu_class_log_softmax`]).
    fn class_log_softmax(logits: Tensor<Self, 3>, dim: usize) -> Tensor<Self, 3> {
        gpu_class_log_softmax(logits, dim)
    }

    /// On the CUDA runtime with the `cuda-engine` feature, the CUDA engine; else none.
    fn transformer_engine(
        description: &TransformerDescription<Self>,
    ) -> Result<Option<Box<dyn TransformerEngine<Self>>>, EngineError> {
        #[cfg(feature = "cuda-engine")]
        return crate::engine::cuda::cube_engine(description);
        #[cfg(not(feature = "cuda-engine"))]
        {
            let _ = description;
            Ok(None)
        }
    }
}

/// The class log-softmax CubeCL backends run, fused or not: in f32 even where the adapter has
/// 64-bit floats. The graphics APIs define `exp` and `log` for 16- and 32-bit floats only; in f64
/// on wgpu over Vulkan (Mesa's lavapipe) the log-probabilities came out up to 90 away from
/// diffusers' while the text encoder and VQ-VAE rows held (docs/numerics.md).
pub(crate) fn gpu_class_log_softmax<B: burn::tensor::backend::Backend>(
    logits: Tensor<B, 3>,
    dim: usize,
) -> Tensor<B, 3> {
    portable::class_log_softmax_in(logits, dim, burn::tensor::DType::F32)
}

/// The attention CubeCL backends run, fused or not: unmasked attention composed of tensor ops,
/// masked attention by burn's op.
pub(crate) fn gpu_attention<B: burn::tensor::backend::Backend>(
    q: Tensor<B, 3>,
    k: Tensor<B, 3>,
    v: Tensor<B, 3>,
    options: AttentionOptions<B>,
) -> Tensor<B, 3> {
    if options.is_unmasked() && !options.upcast {
        portable::composed_attention(q, k, v, options.heads)
    } else {
        portable::attention(q, k, v, options)
    }
}
