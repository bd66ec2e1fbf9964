//! GroupNorm as diffusers' VAEs use it: 1e−6 epsilon, statistics in at least f32.

use burn::nn::{GroupNorm, GroupNormConfig};
use burn::tensor::backend::Backend;
use burn::tensor::{DType, FloatDType, Tensor};

/// Epsilon of every GroupNorm in diffusers' `Encoder`, `Decoder`, resnets and attention blocks
/// (burn's default is 1e−5).
pub const GROUP_NORM_EPS: f64 = 1e-6;

/// `GroupNorm(num_groups, channels, eps = 1e−6, affine)`.
pub fn group_norm_config(num_groups: usize, channels: usize) -> GroupNormConfig {
    GroupNormConfig::new(num_groups, channels).with_epsilon(GROUP_NORM_EPS)
}

/// Applies `norm` to `x` (`[batch, channels, …]`) with the mean, variance and affine transform
/// computed in f32 when `x` is f16 or bf16.
///
/// burn 0.21's `GroupNorm::forward` computes its statistics in the input dtype; torch computes
/// half-precision group norms in f32 and rounds only the result. Over the 256×256×128 maps of a
/// VQ decoder (262,144 values per group) half-precision sums would be far off.
pub fn group_norm<B: Backend, const D: usize>(norm: &GroupNorm<B>, x: Tensor<B, D>) -> Tensor<B, D> {
    let dtype = x.dtype();
    if !matches!(dtype, DType::F16 | DType::BF16) {
        return norm.forward(x);
    }
    let gamma = norm.gamma.as_ref().map(|g| g.val().cast(FloatDType::F32));
    let beta = norm.beta.as_ref().map(|b| b.val().cast(FloatDType::F32));
    let y = group_norm_math(x.cast(FloatDType::F32), gamma, beta, norm.num_groups, norm.epsilon);
    y.cast(dtype)
}

/// `(x − mean) / √(var + eps) · γ + β` per (sample, group), biased variance of the centred
/// values (torch's definition).
fn group_norm_math<B: Backend, const D: usize>(
    x: Tensor<B, D>,
    gamma: Option<Tensor<B, 1>>,
    beta: Option<Tensor<B, 1>>,
    num_groups: usize,
    epsilon: f64,
) -> Tensor<B, D> {
    let shape = x.shape();
    let (batch, channels) = (shape[0], shape[1]);
    let per_group = shape.num_elements() / (batch * num_groups);
    // [B, C, …] -> [B, G, C/G · …]
    let x = x.reshape([batch, num_groups, per_group]);
    let centred = x.clone() - x.mean_dim(2);
    let var = centred.clone().square().mean_dim(2);
    let normalized = (centred / var.add_scalar(epsilon).sqrt()).reshape(shape);
    let mut affine_shape = [1; D];
    affine_shape[1] = channels;
    match (gamma, beta) {
        (Some(g), Some(b)) => normalized * g.reshape(affine_shape) + b.reshape(affine_shape),
        // burn's GroupNorm holds both affine parameters or neither.
        _ => normalized,
    }
}
