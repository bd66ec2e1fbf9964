//! Fast sampling: chains that stride over the training timesteps, calling the network at
//! t = start, start − (K + 1), start − 2(K + 1), …, and 0, and the two ways of jumping from one
//! call's timestep t down to the next one's, s < t.
//!
//! * [`SkipPosterior::OneStep`] — the original VQ-Diffusion's fast inference
//!   (microsoft/VQ-Diffusion, `sample_fast`): the ordinary one-step posterior q_posterior,
//!   evaluated at t′ = s + 1 instead of t. It treats x_t as if it were x_{t′} and lands on
//!   x_{t′−1} = x_s. Cheap (the same arithmetic as one step) but approximate: the model's
//!   x_0 prediction is weighed by q(x_{t′} | x_0) and one step of noise, not by what really
//!   separates x_s from x_t. On the default schedule a masked pixel is unmasked with probability
//!   ≈ 1/(s + 1) per call instead of (t − s)/t, so most masked pixels survive to the last calls.
//! * [`SkipPosterior::Exact`] — the exact posterior of the jump,
//!   p(x_s | x_t) = Σ_{x_0} q(x_s | x_t, x_0) p(x_0 | x_t), closed-form from the cumulative
//!   tables (see [`VQDiffusionScheduler::q_posterior_jump`]).
//!
//! Both reduce to the ordinary step when s = t − 1, bit for bit.

use burn::tensor::{backend::Backend, FloatDType, Int, Tensor};

use crate::{
    gumbel_max_sample, index_to_log_onehot, log_add_exp_scalar, log_sum_exp_classes, ScheduleProbabilities,
    UniformSource, VQDiffusionScheduler,
};

/// How a strided chain jumps from the network call at t to the next one at s < t.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SkipPosterior {
    /// The original VQ-Diffusion's fast inference: the one-step posterior evaluated at s + 1.
    #[default]
    OneStep,
    /// The exact multi-step posterior q(x_s | x_t, x_0), averaged over the model's p(x_0 | x_t).
    Exact,
}

/// The timesteps of a chain that starts at `start` and skips `skip` timesteps between network
/// calls: `start, start − (skip + 1), …`, with 0 appended when the stride does not end on it.
/// `skip = 0` is the ordinary chain `start, start − 1, …, 0`.
///
/// ```
/// use vq_scheduler::strided_timesteps;
/// assert_eq!(strided_timesteps(9, 0), [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
/// assert_eq!(strided_timesteps(9, 2), [9, 6, 3, 0]);
/// assert_eq!(strided_timesteps(9, 3), [9, 5, 1, 0]);
/// assert_eq!(strided_timesteps(0, 5), [0]);
/// ```
pub fn strided_timesteps(start: usize, skip: usize) -> Vec<usize> {
    let mut timesteps: Vec<usize> = (0..=start).rev().step_by(skip.saturating_add(1)).collect();
    if timesteps.last() != Some(&0) {
        timesteps.push(0);
    }
    timesteps
}

/// Probabilities (ᾱ, β̄, γ̄) of the transition over the steps s + 1, …, t together:
/// q(x_t | x_s) keeps a class with probability a + b, changes it to one other class with
/// probability b and masks it with probability c, where a = ᾱ_t / ᾱ_s,
/// 1 − c = (1 − γ̄_t) / (1 − γ̄_s) and b = (1 − a − c) / K. (A product of mask-and-replace
/// matrices is one again: keeping multiplies, staying unmasked multiplies, rows sum to 1.) For
/// s = t − 1 these are the per-step a_t, β_t, γ_t, computed with the same f64 operations.
///
/// # Panics
/// If `s ≥ t` or `t ≥ T`.
pub fn jump_probabilities(p: &ScheduleProbabilities, k: usize, s: usize, t: usize) -> (f64, f64, f64) {
    assert!(s < t && t < p.at.len(), "a jump needs s < t < T, got s = {s}, t = {t}");
    let a = p.att[t] / p.att[s];
    let c = 1.0 - (1.0 - p.ctt[t]) / (1.0 - p.ctt[s]);
    let b = (1.0 - a - c) / k as f64;
    (a, b, c)
}

impl<B: Backend> VQDiffusionScheduler<B> {
    /// The chain of a strided schedule: `set_timesteps(num_inference_steps)`'s chain
    /// `[S − 1, …, 0]` with `skip` timesteps left out between network calls
    /// ([`strided_timesteps`]`(S − 1, skip)`). `skip = 0` is `set_timesteps`.
    pub fn set_strided_timesteps(
        &mut self,
        num_inference_steps: usize,
        skip: usize,
    ) -> Result<(), crate::SchedulerError> {
        self.set_timesteps(num_inference_steps)?;
        self.timesteps = strided_timesteps(num_inference_steps - 1, skip);
        Ok(())
    }

    /// log p(x_s | x_t) for 0 ≤ s < t from the model's log p(x_0 | x_t): the exact posterior of a
    /// jump over t − s steps,
    ///
    /// q = log p(x_0) − log q(x_t | x_0); c = logsumexp_k q; q ← q − c;
    /// result = apply_cumulative_transitions(q, s) + log q(x_t | x_s) + c,
    ///
    /// where q(x_t | x_s) is the mask-and-replace transition of [`jump_probabilities`]. For
    /// s = t − 1 this is [`Self::q_posterior`] exactly.
    ///
    /// # Shapes
    /// - `log_p_x_0`: `[batch, K, pixels]`
    /// - `x_t`: `[batch, pixels]`
    /// - output: `[batch, K + 1, pixels]`
    ///
    /// # Panics
    /// If `s ≥ t`, `t ≥ T`, or the shapes disagree.
    pub fn q_posterior_jump(
        &self,
        log_p_x_0: Tensor<B, 3>,
        x_t: Tensor<B, 2, Int>,
        t: usize,
        s: usize,
    ) -> Tensor<B, 3> {
        let k = self.num_classes();
        let (a, b, c) = jump_probabilities(self.probabilities(), k, s, t);
        let log_q_x_t_given_x_s = self.log_q_transition(x_t.clone(), (a.ln() as f32, b.ln() as f32, c.ln() as f32));
        let log_p_x_0 = log_p_x_0.cast(FloatDType::F32);
        let log_onehot_x_t = index_to_log_onehot(x_t.clone(), k + 1);
        let log_q_x_t_given_x_0 = self.log_q_t_transitioning_to_known_class(t, x_t, log_onehot_x_t, true);
        let q = log_p_x_0 - log_q_x_t_given_x_0;
        let q_log_sum_exp = log_sum_exp_classes(q.clone());
        let q = q - q_log_sum_exp.clone();
        let q = self.apply_cumulative_transitions(q, s);
        q + log_q_x_t_given_x_s + q_log_sum_exp
    }

    /// One step of a strided chain: samples the state at the next network call's timestep
    /// `next` (< t) given the model's log p(x_0 | x_t), jumping as `posterior` says. At t = 0 (the
    /// last call; `next` must be 0) every pixel is drawn from the model's output, as in
    /// [`Self::step`]. With `next = t − 1` this is [`Self::step`] exactly, for either posterior.
    ///
    /// Draws one uniform tensor, `[batch, K + 1, pixels]` (`[batch, K, pixels]` at t = 0).
    ///
    /// # Shapes
    /// - `model_output`: `[batch, K, pixels]` log-probabilities (after guidance, truncation, clamp)
    /// - `sample`: `[batch, pixels]`, ids in `0..=K`
    /// - output: `[batch, pixels]`, ids in `0..=K` (`0..K` at t = 0)
    ///
    /// # Panics
    /// If `t ≥ T`, `next ≥ t` for t ≥ 1, `next ≠ 0` at t = 0, or the shapes disagree.
    pub fn step_to<N: UniformSource<B> + ?Sized>(
        &self,
        model_output: Tensor<B, 3>,
        t: usize,
        next: usize,
        sample: Tensor<B, 2, Int>,
        posterior: SkipPosterior,
        noise: &mut N,
    ) -> Tensor<B, 2, Int> {
        assert!(
            next < t || (t == 0 && next == 0),
            "step_to: the next timestep {next} must be below t = {t} (or both 0 at the last step)"
        );
        if t == 0 || next + 1 == t {
            return self.step(model_output, t, sample, noise);
        }
        self.check_step(&model_output, t, &sample);
        let model_output = model_output.cast(FloatDType::F32);
        let logits = match posterior {
            SkipPosterior::OneStep => self.q_posterior(model_output, sample, next + 1),
            SkipPosterior::Exact => self.q_posterior_jump(model_output, sample, t, next),
        };
        let uniform = noise.uniform(logits.dims(), &logits.device()).cast(FloatDType::F32);
        gumbel_max_sample(logits, uniform)
    }

    /// log q(x_t | x_{prev} = k) for k in 0..=K of a mask-and-replace transition with log
    /// probabilities (log a, log b, log c): logaddexp(onehot + log a, log b) on the real rows of
    /// an unmasked column, log c on every real row of a masked one; the mask row is 0 where x_t
    /// is masked, −69.08 elsewhere (a mask stays a mask).
    ///
    /// # Shapes
    /// - `x_t`: `[batch, pixels]`
    /// - output: `[batch, K + 1, pixels]`
    fn log_q_transition(&self, x_t: Tensor<B, 2, Int>, (log_a, log_b, log_c): (f32, f32, f32)) -> Tensor<B, 3> {
        let k = self.num_classes();
        let [batch, pixels] = x_t.dims();
        let log_onehot = index_to_log_onehot(x_t.clone(), k + 1);
        let mask_row = log_onehot.clone().narrow(1, k, 1);
        let log_q = log_add_exp_scalar(log_onehot.narrow(1, 0, k).add_scalar(log_a), log_b);
        let masked_columns = x_t.equal_elem(k as i64).unsqueeze_dim::<3>(1).expand([batch, k, pixels]);
        Tensor::cat(vec![log_q.mask_fill(masked_columns, log_c), mask_row], 1)
    }
}
