//! The forward (noising) process of mask-and-replace diffusion, q(x_t | x_0) (VQ-Diffusion
//! §4.1, eq. 8): a token stays x_0 with probability ᾱ_t + β̄_t, becomes each particular other
//! class with probability β̄_t, or becomes `[MASK]` (id K) with probability γ̄_t.

use burn::tensor::{backend::Backend, Int, Tensor};
use vq_scheduler::index_to_log_onehot;

use super::logspace::log_add_exp;

/// log q(x_t | x_0) over the K + 1 classes: rows 0..K are logaddexp(log onehot(x_0) + log ᾱ_t,
/// log β̄_t), row K is log γ̄_t (the original's `q_pred`).
///
/// # Shapes
/// - `x_0`: `[batch, pixels]`, ids in `0..K`
/// - `log_cumprod_at`, `log_cumprod_bt`, `log_cumprod_ct`: `[batch, 1, 1]` (log ᾱ_t, log β̄_t,
///   log γ̄_t of each sample's t, e.g. from [`super::StepRates`])
/// - output: `[batch, K + 1, pixels]`
pub fn log_q_xt_given_x0<B: Backend>(
    x_0: Tensor<B, 2, Int>,
    num_classes: usize,
    log_cumprod_at: Tensor<B, 3>,
    log_cumprod_bt: Tensor<B, 3>,
    log_cumprod_ct: Tensor<B, 3>,
) -> Tensor<B, 3> {
    let [batch, pixels] = x_0.dims();
    let classes = log_add_exp(index_to_log_onehot(x_0, num_classes) + log_cumprod_at, log_cumprod_bt);
    let mask_row = log_cumprod_ct.expand([batch, 1, pixels]);
    Tensor::cat(vec![classes, mask_row], 1)
}

/// Draws x_t ~ q(x_t | x_0) by inverting the three-way CDF with two uniforms per token:
/// `u < γ̄_t` → `[MASK]` (id K); `u < γ̄_t + K·β̄_t` → class ⌊v · K⌋ (uniform over all K classes,
/// x_0 included, which is how "replace" keeps x_0 with probability β̄_t); otherwise x_0.
///
/// The same distribution as the original's Gumbel-max over [`log_q_xt_given_x0`], from 2 instead
/// of K + 1 uniforms per token. The probabilities are the exponentials of the f32 log tables.
///
/// # Shapes
/// - `x_0`: `[batch, pixels]`, ids in `0..K`
/// - `log_cumprod_bt`, `log_cumprod_ct`: `[batch, 1, 1]` (log β̄_t, log γ̄_t)
/// - `uniform_kind`, `uniform_class`: `[batch, pixels]`, values in [0, 1)
/// - output: `[batch, pixels]`, ids in `0..=K`
///
/// # Panics
/// If the shapes disagree.
pub fn q_sample<B: Backend>(
    x_0: Tensor<B, 2, Int>,
    num_classes: usize,
    log_cumprod_bt: Tensor<B, 3>,
    log_cumprod_ct: Tensor<B, 3>,
    uniform_kind: Tensor<B, 2>,
    uniform_class: Tensor<B, 2>,
) -> Tensor<B, 2, Int> {
    let [batch, pixels] = x_0.dims();
    assert_eq!(uniform_kind.dims(), [batch, pixels], "uniform_kind must match x_0's shape");
    assert_eq!(uniform_class.dims(), [batch, pixels], "uniform_class must match x_0's shape");
    assert_eq!(log_cumprod_ct.dims(), [batch, 1, 1], "log_cumprod_ct must be [batch, 1, 1]");
    // [batch, 1, 1] → [batch, pixels]
    let per_token = |log_p: Tensor<B, 3>| log_p.exp().reshape([batch, 1]).expand([batch, pixels]);
    let mask_probability = per_token(log_cumprod_ct);
    let replace_probability = per_token(log_cumprod_bt).mul_scalar(num_classes as f32);

    let masked = uniform_kind.clone().lower(mask_probability.clone());
    let replaced = uniform_kind.lower(mask_probability + replace_probability);
    let random_class = uniform_class.mul_scalar(num_classes as f32).floor().int().clamp(0, num_classes as i64 - 1);
    x_0.mask_where(replaced, random_class).mask_fill(masked, num_classes as i64)
}
