//! The VQ-Diffusion training objective as functions over burn tensors, generic over the
//! backend (so they run under `Autodiff<…>` for training).
//!
//! One training step, given image tokens x_0 (`[batch, pixels]`, from the VQ-VAE encoder):
//!
//! 1. draw t and p_t per sample with [`TimestepSampler::sample`];
//! 2. gather the schedule values with [`StepRates::gather`] (from
//!    `vq_scheduler::ScheduleTables`);
//! 3. noise: x_t = [`q_sample`] (mask-and-replace, from two uniforms per token);
//! 4. predict log p_θ(x_0 | x_t, text) with the transformer;
//! 5. [`VqDiffusionLossConfig::loss`]: posterior KL (t ≥ 1) or decoder NLL (t = 0) plus the
//!    auxiliary x_0 loss, divided by p_t, averaged per token;
//! 6. backpropagate, then report `vb` to [`TimestepSampler::update`].
//!
//! Paper: Gu et al., arXiv 2111.14822, §4 (eqs. 5–11); the original's loss is described in
//! `docs/reference.md` ("The training objective").

mod forward;
mod kl;
mod logspace;
mod objective;
mod posterior;
mod rates;
#[cfg(test)]
mod tests;
mod timestep;

pub use forward::{log_q_xt_given_x0, q_sample};
pub use kl::{categorical_kl, categorical_nll};
pub use logspace::log_add_exp;
pub use objective::{LossTerms, VqDiffusionLossConfig, LOG_PROB_CLAMP};
pub use posterior::q_posterior;
pub use rates::StepRates;
pub use timestep::{TimestepBatch, TimestepSampler, WARMUP_COUNT};
