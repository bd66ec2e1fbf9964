//! The posterior q(x_{t−1} | x_t, x_0) of mask-and-replace diffusion with one timestep per
//! sample: diffusers' `VQDiffusionScheduler.q_posterior` (eq. 11 of the paper, see
//! `docs/reference.md`, "Scheduler"), batched over t for training. With every t equal it gives
//! the scheduler's values, so the loss trains exactly the reverse step the sampler takes.

use burn::tensor::{backend::Backend, Int, Tensor};
use vq_scheduler::{index_to_log_onehot, log_sum_exp_classes};

use super::logspace::log_add_exp;
use super::StepRates;

/// log q(x_{t−1} | x_t, x_0 ~ exp(log_p_x_0)) for t ≥ 1, over K + 1 classes.
///
/// q = log p(x_0) − log q(x_t | x_0); s = logsumexp_k q; q ← q − s; result =
/// [logaddexp(q + log ᾱ_{t−1}, log β̄_{t−1}) ; log γ̄_{t−1}] + log q(x_t | x_{t−1}) + s.
///
/// Samples with t = 0 get a finite value of no meaning (see [`StepRates`]); the objective
/// uses the decoder NLL for them.
///
/// # Shapes
/// - `log_p_x_0`: `[batch, K, pixels]` log-probabilities over the K real classes
/// - `x_t`: `[batch, pixels]`, ids in `0..=K` (K = `[MASK]`)
/// - output: `[batch, K + 1, pixels]`
///
/// # Panics
/// If the shapes disagree.
pub fn q_posterior<B: Backend>(log_p_x_0: Tensor<B, 3>, x_t: Tensor<B, 2, Int>, rates: &StepRates<B>) -> Tensor<B, 3> {
    let [batch, k, pixels] = log_p_x_0.dims();
    assert_eq!(x_t.dims(), [batch, pixels], "x_t must be [batch, pixels] = {:?}", [batch, pixels]);
    assert_eq!(rates.batch(), batch, "rates must have one timestep per sample");
    let log_onehot_x_t = index_to_log_onehot(x_t.clone(), k + 1);
    let is_masked = x_t.equal_elem(k as i64).unsqueeze_dim::<3>(1).expand([batch, k, pixels]);
    let class_rows = log_onehot_x_t.clone().narrow(1, 0, k);

    // log q(x_t | x_0 = k) for k < K: ᾱ_t + β̄_t on x_t's class, β̄_t elsewhere, γ̄_t everywhere
    // if x_t is masked.
    let log_q_xt_given_x0 =
        log_add_exp(class_rows.clone() + rates.log_cumprod_at.clone(), rates.log_cumprod_bt.clone())
            .mask_where(is_masked.clone(), rates.log_cumprod_ct.clone().expand([batch, k, pixels]));
    // log q(x_t | x_{t−1} = k) for k ≤ K: the same with one-step rates; the mask row is the
    // one-hot's (0 if x_t is masked, −69 otherwise).
    let log_q_xt_given_xprev = Tensor::cat(
        vec![
            log_add_exp(class_rows + rates.log_at.clone(), rates.log_bt.clone())
                .mask_where(is_masked, rates.log_ct.clone().expand([batch, k, pixels])),
            log_onehot_x_t.narrow(1, k, 1),
        ],
        1,
    );

    let q = log_p_x_0 - log_q_xt_given_x0;
    let q_log_sum_exp = log_sum_exp_classes(q.clone());
    let q = q - q_log_sum_exp.clone();
    // Push the normalised q through the cumulative transition to t − 1.
    let q_prev = Tensor::cat(
        vec![
            log_add_exp(q + rates.prev_log_cumprod_at.clone(), rates.prev_log_cumprod_bt.clone()),
            rates.prev_log_cumprod_ct.clone().expand([batch, 1, pixels]),
        ],
        1,
    );
    q_prev + log_q_xt_given_xprev + q_log_sum_exp
}
