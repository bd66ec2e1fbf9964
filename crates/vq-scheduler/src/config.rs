//! `VQDiffusionSchedulerConfig`: the fields of diffusers' `scheduler/scheduler_config.json`.

use std::path::Path;

use burn::tensor::backend::Backend;
use serde::{Deserialize, Serialize};

use crate::{SchedulerError, VQDiffusionScheduler};

/// Configuration of [`VQDiffusionScheduler`], read from diffusers' `scheduler_config.json`.
///
/// Missing optional fields take diffusers' defaults; unknown fields (`_class_name`,
/// `_diffusers_version`, …) are ignored. The ITHQ checkpoint uses `num_vec_classes = 4097` and the
/// defaults for everything else.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VQDiffusionSchedulerConfig {
    /// Number of latent classes **including** the mask class (K + 1; 4097 for ITHQ).
    pub num_vec_classes: usize,
    /// Number of diffusion steps T of the training chain (timesteps 0..T).
    #[serde(default = "defaults::num_train_timesteps")]
    pub num_train_timesteps: usize,
    /// ᾱ at t = 0: probability that a token is still unchanged after the first step.
    #[serde(default = "defaults::alpha_cum_start")]
    pub alpha_cum_start: f64,
    /// ᾱ at t = T − 1.
    #[serde(default = "defaults::alpha_cum_end")]
    pub alpha_cum_end: f64,
    /// γ̄ at t = 0: probability that a token is masked after the first step.
    #[serde(default = "defaults::gamma_cum_start")]
    pub gamma_cum_start: f64,
    /// γ̄ at t = T − 1.
    #[serde(default = "defaults::gamma_cum_end")]
    pub gamma_cum_end: f64,
}

mod defaults {
    pub fn num_train_timesteps() -> usize {
        100
    }
    pub fn alpha_cum_start() -> f64 {
        0.99999
    }
    pub fn alpha_cum_end() -> f64 {
        0.000009
    }
    pub fn gamma_cum_start() -> f64 {
        0.000009
    }
    pub fn gamma_cum_end() -> f64 {
        0.99999
    }
}

impl VQDiffusionSchedulerConfig {
    /// A config with `num_vec_classes` (K + 1, mask included) and diffusers' defaults elsewhere.
    pub fn new(num_vec_classes: usize) -> Self {
        Self {
            num_vec_classes,
            num_train_timesteps: defaults::num_train_timesteps(),
            alpha_cum_start: defaults::alpha_cum_start(),
            alpha_cum_end: defaults::alpha_cum_end(),
            gamma_cum_start: defaults::gamma_cum_start(),
            gamma_cum_end: defaults::gamma_cum_end(),
        }
    }

    /// Parses a `scheduler_config.json` document and validates it.
    pub fn from_json(json: &str) -> Result<Self, SchedulerError> {
        Self::parse(json, "<string>")
    }

    /// Reads, parses and validates a `scheduler_config.json` file.
    pub fn from_file(path: &Path) -> Result<Self, SchedulerError> {
        let json = vq_weights::read_text_capped(path, vq_weights::CONFIG_MAX_BYTES)
            .map_err(|source| SchedulerError::ReadConfig { path: path.to_path_buf(), source })?;
        Self::parse(&json, &path.display().to_string())
    }

    fn parse(json: &str, origin: &str) -> Result<Self, SchedulerError> {
        let config: Self = serde_json::from_str(json)
            .map_err(|source| SchedulerError::ParseConfig { origin: origin.to_string(), source })?;
        config.validate()?;
        Ok(config)
    }

    /// Number of real (non-mask) classes K = `num_vec_classes − 1`; also the mask class id.
    pub fn num_classes(&self) -> usize {
        self.num_vec_classes - 1
    }

    /// Checks every field's range. The combined check (every schedule probability in (0, 1])
    /// happens when the tables are built ([`crate::ScheduleTables::new`]).
    ///
    /// The sizes are bounded far above any released model (ITHQ: 4,097 classes, 100 steps):
    /// `num_vec_classes` ≤ 2²⁰ + 1, `num_train_timesteps` ≤ 100,000.
    pub fn validate(&self) -> Result<(), SchedulerError> {
        let invalid = |field, value: String, reason| SchedulerError::InvalidConfig { field, value, reason };
        if self.num_vec_classes < 2 {
            return Err(invalid(
                "num_vec_classes",
                self.num_vec_classes.to_string(),
                "must be at least 2: one real class plus the mask class",
            ));
        }
        if self.num_train_timesteps < 2 {
            return Err(invalid(
                "num_train_timesteps",
                self.num_train_timesteps.to_string(),
                "must be at least 2: the schedules interpolate over T − 1 intervals",
            ));
        }
        for (field, value, max, reason) in [
            ("num_vec_classes", self.num_vec_classes, (1 << 20) + 1, "must be at most 1048577"),
            ("num_train_timesteps", self.num_train_timesteps, 100_000, "must be at most 100000"),
        ] {
            if value > max {
                return Err(invalid(field, value.to_string(), reason));
            }
        }
        // Logs of ᾱ, γ̄ and 1 − γ̄ are taken: ᾱ may be 1 (no corruption), γ̄ neither 0 nor 1.
        const ALPHA: (fn(f64) -> bool, &str) = (|v| v > 0.0 && v <= 1.0, "must be in (0, 1]");
        const GAMMA: (fn(f64) -> bool, &str) = (|v| v > 0.0 && v < 1.0, "must be in (0, 1)");
        for (field, value, (in_range, reason)) in [
            ("alpha_cum_start", self.alpha_cum_start, ALPHA),
            ("alpha_cum_end", self.alpha_cum_end, ALPHA),
            ("gamma_cum_start", self.gamma_cum_start, GAMMA),
            ("gamma_cum_end", self.gamma_cum_end, GAMMA),
        ] {
            if !in_range(value) {
                return Err(invalid(field, value.to_string(), reason));
            }
        }
        Ok(())
    }

    /// Builds the scheduler on `device`: validates the config, computes the tables in f64 and
    /// stores them as f32 logs (on the host and on `device`).
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<VQDiffusionScheduler<B>, SchedulerError> {
        VQDiffusionScheduler::new(self.clone(), device)
    }
}
