//! The forward process q(x_t | x_0): noising clean tokens to timestep t with the cumulative
//! mask-and-replace transition (VQ-Diffusion §4.1), the start of image variations and the
//! re-noising of kept tokens.
//!
//! Per token, with the cumulative tables at t: keep its class with probability ᾱ_t + β̄_t, become
//! any one other class with probability β̄_t, become the mask with probability γ̄_t. The draw is
//! Gumbel-max over those K + 1 log-probabilities, as the original's `q_sample` does, from one
//! `[batch, K + 1, pixels]` uniform tensor of the [`UniformSource`].

use burn::tensor::{backend::Backend, Bool, FloatDType, Int, Tensor};

use crate::{gumbel_max_sample, index_to_log_onehot, UniformSource, VQDiffusionScheduler};

impl<B: Backend> VQDiffusionScheduler<B> {
    /// log q(x_t = k | x_0) for every class k of K + 1 (the mask last): log(ᾱ_t + β̄_t) at x_0's
    /// class, ≈ log β̄_t at the other real classes, log γ̄_t at the mask. A masked x_0 stays
    /// masked (the mask absorbs): its column is 0 at the mask row, −69.08 elsewhere.
    ///
    /// # Shapes
    /// - `x_0`: `[batch, pixels]`, ids in `0..=K`
    /// - output: `[batch, K + 1, pixels]`
    ///
    /// # Panics
    /// If `t ≥ T`.
    pub fn log_q_x_t_given_x_0(&self, x_0: Tensor<B, 2, Int>, t: usize) -> Tensor<B, 3> {
        assert!(
            t < self.config().num_train_timesteps,
            "timestep {t} out of range 0..{}",
            self.config().num_train_timesteps
        );
        let k = self.num_classes();
        let [batch, pixels] = x_0.dims();
        let log_onehot = index_to_log_onehot(x_0.clone(), k + 1);
        let class_rows = log_onehot.clone().narrow(1, 0, k);
        let log_q = self.apply_cumulative_transitions(class_rows, t);
        // A masked x_0: q(x_t | mask) is the mask itself.
        let masked = x_0.equal_elem(k as i64).unsqueeze_dim::<3>(1).expand([batch, k + 1, pixels]);
        log_q.mask_where(masked, log_onehot)
    }

    /// Draws x_t ~ q(x_t | x_0): each token keeps its class, changes to another or becomes the
    /// mask with the cumulative probabilities at t. With `region`, only its `true` pixels are
    /// noised and the others keep x_0's ids; the draw is the same full tensor either way, so the
    /// noise stream does not depend on the region.
    ///
    /// Draws one uniform tensor `[batch, K + 1, pixels]` from `noise`.
    ///
    /// # Shapes
    /// - `x_0`: `[batch, pixels]`, ids in `0..=K` (masked ids stay masked)
    /// - `region`: `[batch, pixels]`
    /// - output: `[batch, pixels]`, ids in `0..=K`
    ///
    /// # Panics
    /// If `t ≥ T` or `region`'s shape differs from `x_0`'s.
    pub fn q_sample<N: UniformSource<B> + ?Sized>(
        &self,
        x_0: Tensor<B, 2, Int>,
        t: usize,
        region: Option<Tensor<B, 2, Bool>>,
        noise: &mut N,
    ) -> Tensor<B, 2, Int> {
        if let Some(region) = &region {
            assert_eq!(region.dims(), x_0.dims(), "q_sample: region and x_0 must have the same shape");
        }
        let log_q = self.log_q_x_t_given_x_0(x_0.clone(), t);
        let uniform = noise.uniform(log_q.dims(), &log_q.device()).cast(FloatDType::F32);
        let x_t = gumbel_max_sample(log_q, uniform);
        match region {
            Some(region) => x_0.mask_where(region, x_t),
            None => x_t,
        }
    }
}
