//! The VQ-Diffusion training objective (the original's `_train_loss`, see
//! `docs/reference.md`, "The training objective"): the variational-bound KL between the true and the model's
//! posterior, the decoder NLL at t = 0, and the auxiliary x_0 loss, importance-weighted by the
//! probability of the drawn timestep.

use burn::config::Config;
use burn::tensor::{backend::Backend, Bool, Int, Tensor, TensorData};
use vq_scheduler::index_to_log_onehot;

use super::kl::{categorical_kl, categorical_nll};
use super::posterior::q_posterior;
use super::{StepRates, TimestepBatch};

/// The original clamps every log-probability of the loss to [−70, 0], so that KL terms stay
/// finite (0 · log 0 would be NaN) without changing any probability that matters.
pub const LOG_PROB_CLAMP: f32 = -70.0;

/// Weights of the VQ-Diffusion loss. Defaults are the original configs' values.
#[derive(Config, Debug)]
pub struct VqDiffusionLossConfig {
    /// λ, the weight of the auxiliary x_0 loss (`auxiliary_loss_weight`; 5e−4 in every
    /// original config).
    #[config(default = 5e-4)]
    pub auxiliary_loss_weight: f64,
    /// Scale the auxiliary loss by w_t = 2 − t/T (from 2 at t = 0 down to 1 + 1/T), as the
    /// original's `adaptive_auxiliary_loss`.
    #[config(default = true)]
    pub adaptive_auxiliary_loss: bool,
    /// Weight of positions that are `[MASK]` in x_t (`mask_weight[0]`).
    #[config(default = 1.0)]
    pub masked_weight: f64,
    /// Weight of positions that are not masked in x_t (`mask_weight[1]`).
    #[config(default = 1.0)]
    pub unmasked_weight: f64,
}

/// The loss of one batch and its parts.
#[derive(Debug, Clone)]
pub struct LossTerms<B: Backend> {
    /// The scalar to minimise: Σ_b (vb_b + λ w_t aux_b) / p_t divided by batch · pixels (a
    /// per-token average). Shape `[1]`.
    pub loss: Tensor<B, 1>,
    /// Per sample, summed over positions: the posterior KL (t ≥ 1) or the decoder NLL (t = 0),
    /// before the 1/p_t weight. The importance sampler tracks its square. Shape `[batch]`.
    pub vb: Tensor<B, 1>,
    /// Per sample, summed over positions: KL(onehot(x_0) ‖ p_θ(x_0 | x_t)) (t ≥ 1) or the
    /// decoder NLL (t = 0), before any weight. Shape `[batch]`.
    pub aux: Tensor<B, 1>,
}

impl VqDiffusionLossConfig {
    /// The loss for model predictions `log_p_x_0` = log p_θ(x_0 | x_t, text).
    ///
    /// `timesteps` holds each sample's t and the probability p_t it was drawn with (from
    /// [`super::TimestepSampler`]); `rates` must be gathered for the same t. The model's
    /// log-probabilities and both posteriors are clamped to [−70, 0] first.
    ///
    /// At t = 0 diffusers samples x_0 from the model output directly, so the decoder NLL here
    /// is −log p_θ(x_0 | x_1) of the model output (the original evaluates a t = 0 posterior
    /// with ᾱ = 1, β̄ = γ̄ = 0, which equals it up to its −70 clamps).
    ///
    /// # Shapes
    /// - `log_p_x_0`: `[batch, K, pixels]` log-probabilities over the K real classes
    /// - `x_0`: `[batch, pixels]`, ids in `0..K`
    /// - `x_t`: `[batch, pixels]`, ids in `0..=K`
    ///
    /// # Panics
    /// If the shapes disagree or `timesteps` does not have one entry per sample.
    pub fn loss<B: Backend>(
        &self,
        log_p_x_0: Tensor<B, 3>,
        x_0: Tensor<B, 2, Int>,
        x_t: Tensor<B, 2, Int>,
        timesteps: &TimestepBatch,
        rates: &StepRates<B>,
    ) -> LossTerms<B> {
        let TimestepBatch { t, p_t, num_timesteps } = timesteps;
        let [batch, k, pixels] = log_p_x_0.dims();
        assert_eq!(x_0.dims(), [batch, pixels], "x_0 must be [batch, pixels]");
        assert_eq!(x_t.dims(), [batch, pixels], "x_t must be [batch, pixels]");
        assert!(t.len() == batch && p_t.len() == batch, "t and p_t need one entry per sample");
        let device = log_p_x_0.device();
        let per_sample = |values: Vec<f32>| Tensor::<B, 1>::from_data(TensorData::new(values, [batch]), &device);

        let log_model = log_p_x_0.clamp(LOG_PROB_CLAMP, 0.0);
        let log_true = index_to_log_onehot(x_0.clone(), k);
        let true_posterior = q_posterior(log_true.clone(), x_t.clone(), rates).clamp(LOG_PROB_CLAMP, 0.0);
        let model_posterior = q_posterior(log_model.clone(), x_t.clone(), rates).clamp(LOG_PROB_CLAMP, 0.0);

        // [batch, pixels]: masked_weight where x_t is [MASK], unmasked_weight elsewhere.
        let position_weight = Tensor::<B, 2>::full([batch, pixels], self.unmasked_weight, &device)
            .mask_fill(x_t.equal_elem(k as i64), self.masked_weight);
        let decoder_nll = categorical_nll(log_model.clone(), x_0).sum_dim(1).squeeze_dim::<1>(1);
        let is_first_step = Tensor::<B, 1, Bool>::from_data(
            TensorData::new(t.iter().map(|&t| t == 0).collect::<Vec<_>>(), [batch]),
            &device,
        );
        let weighted_sum =
            |per_position: Tensor<B, 2>| (per_position * position_weight.clone()).sum_dim(1).squeeze_dim::<1>(1);
        let vb = weighted_sum(categorical_kl(true_posterior, model_posterior))
            .mask_where(is_first_step.clone(), decoder_nll.clone());
        let aux = weighted_sum(categorical_kl(log_true, log_model)).mask_where(is_first_step, decoder_nll);

        let inverse_p_t = per_sample(p_t.iter().map(|&p| (1.0 / p) as f32).collect());
        let aux_weight = per_sample(
            t.iter()
                .map(|&t| {
                    let adaptive =
                        if self.adaptive_auxiliary_loss { 2.0 - t as f64 / *num_timesteps as f64 } else { 1.0 };
                    (self.auxiliary_loss_weight * adaptive) as f32
                })
                .collect(),
        );
        let total = (vb.clone() + aux.clone() * aux_weight) * inverse_p_t;
        let loss = total.sum().div_scalar((batch * pixels) as f32);
        LossTerms { loss, vb, aux }
    }
}
