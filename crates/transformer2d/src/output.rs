//! The output log-softmax over the classes, in f64 where the backend has it.
//!
//! diffusers computes `log_softmax(logits.double(), dim=1).float()`: the normalisation runs in
//! float64 and the result is float32 whatever the model's dtype (an fp16 pipeline gets f32
//! log-probabilities). burn exposes f64 support per device through
//! [`Backend::supports_dtype`]. In burn 0.21 the CPU backends (NdArray, Flex) have it; the
//! CUDA backend does **not** (cubecl-cpp 0.10's `register_supported_types` leaves F64 out,
//! "causes CUDA_ERROR_INVALID_VALUE for matmul"), so CUDA takes the f32 path; wgpu registers
//! F64 only where the adapter offers `SHADER_F64` (WGSL) or `shaderFloat64` (Vulkan).
//!
//! Where f64 is absent the log-softmax runs in f32 and the result moves by rounding only.
//! Measured on NdArray (the crate's tests) at K = 4096 with N(0, 5²) logits (log p down to
//! −41): max |f32 − f64| = 1.1e-5, made of a per-pixel offset (the f32 sum of 4096
//! exponentials) and at most two ulps per value (5.7e-6 spread within a pixel). That is
//! inside the ≤ 1e-4 full-size parity tolerance, above the 1e-5 one of the tiny model, and
//! the offset disappears wherever the pipeline renormalises (classifier-free guidance
//! subtracts a logsumexp). Backends that reduce in a tree usually round less.

use burn::tensor::activation::log_softmax;
use burn::tensor::backend::Backend;
use burn::tensor::{DType, Tensor};

/// The dtype the class log-softmax is computed in on `device`: `F64` where the backend
/// supports it for general operations, `F32` otherwise.
pub fn log_softmax_dtype<B: Backend>(device: &B::Device) -> DType {
    if B::supports_dtype(device, DType::F64) {
        DType::F64
    } else {
        DType::F32
    }
}

/// `log_softmax` of `logits` over `dim`, computed in `compute` and returned as f32.
///
/// # Shapes
///
/// - `logits`: `[batch, classes, n]` (any rank-3 layout; `dim` picks the class axis)
/// - output: same shape, dtype f32
pub fn class_log_softmax<B: Backend>(
    logits: Tensor<B, 3>,
    dim: usize,
    compute: DType,
) -> Tensor<B, 3> {
    log_softmax(logits.cast(compute), dim).cast(DType::F32)
}
