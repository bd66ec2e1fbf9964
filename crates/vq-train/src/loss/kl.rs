//! Divergences between categorical distributions given as log-probabilities over dimension 1.

use burn::tensor::{backend::Backend, Int, Tensor};

/// KL(p ‖ q) = Σ_c p_c (log p_c − log q_c) per position (the original's `multinomial_kl`).
///
/// Both inputs must be finite (clamp −inf to e.g. −70 first: 0 · (−inf) would be NaN).
///
/// # Shapes
/// - `log_p`, `log_q`: `[batch, classes, pixels]`
/// - output: `[batch, pixels]`
///
/// # Panics
/// If the shapes differ.
pub fn categorical_kl<B: Backend>(log_p: Tensor<B, 3>, log_q: Tensor<B, 3>) -> Tensor<B, 2> {
    assert_eq!(log_p.dims(), log_q.dims(), "categorical_kl needs equal shapes");
    let kl = log_p.clone().exp() * (log_p - log_q);
    kl.sum_dim(1).squeeze_dim(1)
}

/// −log q(x) per position: the negative log-likelihood of the observed classes `x` under
/// `log_q` (the original's decoder NLL, −Σ_c onehot(x)_c log q_c).
///
/// # Shapes
/// - `log_q`: `[batch, classes, pixels]`
/// - `x`: `[batch, pixels]`, ids in `0..classes`
/// - output: `[batch, pixels]`
pub fn categorical_nll<B: Backend>(log_q: Tensor<B, 3>, x: Tensor<B, 2, Int>) -> Tensor<B, 2> {
    log_q.gather(1, x.unsqueeze_dim(1)).squeeze_dim(1).neg()
}
