//! Gumbel-max sampling of one class per pixel, exactly as diffusers' `gumbel_noised` + `argmax`.

use burn::tensor::{backend::Backend, Int, Tensor};

/// The 1e−30 that diffusers adds twice: keeps `ln` finite when u = 0 exactly (probability 2⁻²⁴
/// per torch uniform) and when −ln u rounds to 0.
const GUMBEL_EPS: f32 = 1e-30;

/// Gumbel(0, 1) noise from uniforms, in f32: g = −ln(−ln(u + 1e−30) + 1e−30).
pub fn gumbel_noise<B: Backend>(uniform: Tensor<B, 3>) -> Tensor<B, 3> {
    uniform.add_scalar(GUMBEL_EPS).log().neg().add_scalar(GUMBEL_EPS).log().neg()
}

/// Samples one class per pixel: `argmax over classes of (logits + gumbel_noise(uniform))`.
///
/// Ties go to the lowest class index, as torch's `argmax`: burn 0.21's argmax keeps the first
/// maximum on NdArray and Flex (strict `>` scan) and the lowest coordinate on CubeCL backends
/// (CUDA, wgpu).
///
/// # Shapes
/// - `logits`, `uniform`: `[batch, classes, pixels]` (unnormalised log-probabilities)
/// - output: `[batch, pixels]`, ids in `0..classes`
///
/// # Panics
/// If the shapes differ.
pub fn gumbel_max_sample<B: Backend>(logits: Tensor<B, 3>, uniform: Tensor<B, 3>) -> Tensor<B, 2, Int> {
    assert_eq!(
        logits.dims(),
        uniform.dims(),
        "gumbel_max_sample: logits {:?} and uniforms {:?} must have the same shape",
        logits.dims(),
        uniform.dims()
    );
    // diffusers computes `gumbel_noise + logits`; the sum is the same in either order.
    (gumbel_noise(uniform) + logits).argmax(1).squeeze_dim(1)
}
