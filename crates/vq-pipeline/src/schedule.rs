//! Which timesteps a request calls the network at: where the chain starts (the number of
//! steps, or the strength of an edit) and how far it strides (`skip`).
//!
//! | request | network calls at |
//! |---|---|
//! | `num_inference_steps = S` (diffusers) | S − 1, S − 2, …, 0 |
//! | `strength = s` (an edit) | ⌊s·T⌋ − 1, …, 0 |
//! | `skip = K` | start, start − (K + 1), …, and 0 |
//!
//! The chain starts at the lower of S − 1 and ⌊s·T⌋ − 1.

use vq_scheduler::{strided_timesteps, SkipPosterior};

use crate::GenerateRequest;

impl GenerateRequest {
    /// Skips `skip` timesteps between network calls (fast sampling): a chain from T − 1 calls the
    /// network at T − 1, T − 1 − (K + 1), …, and 0 — 26 calls instead of 50 with K = 1 and
    /// T = 50. 0 (the default) calls it at every timestep.
    ///
    /// ```
    /// use vq_pipeline::{GenerateRequest, SkipPosterior};
    ///
    /// let request = GenerateRequest::new(["a red circle"]).with_steps(50).with_skip(4);
    /// assert_eq!(request.timesteps(50), [49, 44, 39, 34, 29, 24, 19, 14, 9, 4, 0]);
    /// // The exact multi-step posterior instead of the original's one-step jump:
    /// let exact = request.with_skip_posterior(SkipPosterior::Exact);
    /// assert_eq!(exact.network_calls(50), 11);
    /// ```
    pub fn with_skip(mut self, skip: usize) -> Self {
        self.skip = skip;
        self
    }

    /// Sets how a chain with `skip > 0` jumps from one network call's timestep to the next.
    pub fn with_skip_posterior(mut self, posterior: SkipPosterior) -> Self {
        self.skip_posterior = posterior;
        self
    }

    /// The number of steps the chain starts with, for a model of `num_train_timesteps` T: the
    /// chain's first timestep plus one. `num_inference_steps`, or fewer for an edit of strength
    /// s < 1: ⌊s·T⌋, at least 1 (s·T within 0.001 of an integer counts as that integer, so that
    /// 0.7 of 50 is 35 despite 0.7's f32 rounding).
    pub fn start_steps(&self, num_train_timesteps: usize) -> usize {
        let steps = self.num_inference_steps;
        if self.init_tokens.is_none() || self.strength >= 1.0 {
            return steps;
        }
        let exact = f64::from(self.strength) * num_train_timesteps as f64;
        let nearest = exact.round();
        let edit_steps = if (exact - nearest).abs() < 1e-3 { nearest } else { exact.floor() };
        steps.min((edit_steps as usize).max(1))
    }

    /// The timesteps of the network calls, in order.
    pub fn timesteps(&self, num_train_timesteps: usize) -> Vec<usize> {
        strided_timesteps(self.start_steps(num_train_timesteps).saturating_sub(1), self.skip)
    }

    /// The number of network calls (per image; doubled in the batch with guidance).
    pub fn network_calls(&self, num_train_timesteps: usize) -> usize {
        self.timesteps(num_train_timesteps).len()
    }
}
