//! The pipeline's processing of the transformer's log p(x_0) before each scheduler step
//! (diffusers' `VQDiffusionPipeline.__call__`): classifier-free guidance with renormalisation
//! and the floor at −70. Truncation, which runs between the two, is in `truncation.rs`.

use burn::tensor::{backend::Backend, Tensor};

use crate::log_sum_exp_classes;

/// The floor of the pipeline's `clamp(min=−70)`.
pub const LOG_PROB_FLOOR: f32 = -70.0;

/// Classifier-free guidance: `u + s · (c − u)`, then renormalised over classes by subtracting its
/// logsumexp (dimension 1), in f32 as diffusers does.
///
/// # Shapes
/// - `uncond`, `cond`: `[batch, K, pixels]` log-probabilities of the unconditional and the
///   text-conditioned branch (the first and second half of the transformer's `2·batch` output)
/// - output: `[batch, K, pixels]`
///
/// # Panics
/// If the shapes differ.
pub fn classifier_free_guidance<B: Backend>(uncond: Tensor<B, 3>, cond: Tensor<B, 3>, scale: f32) -> Tensor<B, 3> {
    assert_eq!(uncond.dims(), cond.dims(), "guidance branches must have the same shape");
    let guided = uncond.clone() + (cond - uncond).mul_scalar(scale);
    guided.clone() - log_sum_exp_classes(guided)
}

/// The pipeline's `clamp(min=−70)`: raises every value below −70 (−inf included) to −70.
pub fn clamp_log_probs<B: Backend>(log_p: Tensor<B, 3>) -> Tensor<B, 3> {
    log_p.clamp_min(LOG_PROB_FLOOR)
}
