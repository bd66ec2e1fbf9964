//! The run configuration both training stages share: where a run writes, how long it trains, how
//! it learns and how it reports. Each stage's config embeds one as its `run` field (flattened in
//! JSON, so the fields keep their names) with the stage's own defaults.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::data::DatasetConfig;
use crate::TrainError;

/// How a training run goes, whichever stage it trains; [`crate::train::run_loop`] carries it out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    /// Output folder: the stage's result, `checkpoint/`, `loss.csv` and `loss.png`.
    pub out_dir: PathBuf,
    /// Images per step.
    pub batch_size: usize,
    /// Training steps (the cosine schedule's length).
    pub steps: usize,
    /// Peak AdamW learning rate.
    pub learning_rate: f64,
    /// Linear warm-up steps.
    pub warmup_steps: usize,
    /// AdamW's decoupled weight decay.
    pub weight_decay: f32,
    /// Indices of the backend's devices that share each batch (data parallelism; an index twice
    /// puts two replicas on one device, each on its own stream); empty: the device given to the
    /// trainer alone. The model and optimizer live on that device either way.
    pub device_indices: Vec<u16>,
    /// Stop cleanly (save and export) after this many minutes of training in this process.
    pub max_minutes: Option<f64>,
    /// With `max_minutes`: keep the learning-rate schedule of `steps` instead of shortening it to
    /// end inside the budget (for a run continued over several processes).
    pub keep_schedule: bool,
    /// Print a progress line every this many steps.
    pub log_every: usize,
    /// Save a checkpoint every this many steps (and at the end).
    pub checkpoint_every: usize,
    /// CPU threads rendering batches.
    pub workers: usize,
    /// Seed of the dataset stream, the device RNG and the host RNG.
    pub seed: u64,
    /// Continue from `out_dir/checkpoint` when it exists.
    pub resume: bool,
    /// Start from the weights of an exported model instead of a random initialisation: a
    /// `vqvae/` folder for stage 1, a pipeline folder for stage 2. Its configs fix the
    /// architecture; a checkpoint in `out_dir` takes precedence.
    pub init_from: Option<PathBuf>,
    /// The dataset (stage 2 replaces its image side with the VQ-VAE's `sample_size`).
    pub dataset: DatasetConfig,
}

impl RunConfig {
    /// Refuses values the loop cannot run with, naming the field and the value.
    pub fn validate(&self) -> Result<(), TrainError> {
        let refuse = |field: &str, value: &dyn std::fmt::Display, reason: &str| {
            Err(TrainError::model("run config", format!("{field} {value}: {reason}")))
        };
        if self.batch_size == 0 {
            return refuse("batch_size", &self.batch_size, "must be at least 1");
        }
        if self.log_every == 0 {
            return refuse("log_every", &self.log_every, "must be at least 1");
        }
        if self.checkpoint_every == 0 {
            return refuse("checkpoint_every", &self.checkpoint_every, "must be at least 1");
        }
        if !(self.learning_rate.is_finite() && self.learning_rate >= 0.0) {
            return refuse("learning_rate", &self.learning_rate, "must be a finite number ≥ 0");
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return refuse("weight_decay", &self.weight_decay, "must be a finite number ≥ 0");
        }
        if let Some(minutes) = self.max_minutes.filter(|m| !(m.is_finite() && *m >= 0.0)) {
            return refuse("max_minutes", &minutes, "must be a finite number ≥ 0");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run() -> RunConfig {
        crate::vqvae::VqVaeTrainConfig::default().run
    }

    #[test]
    fn values_the_loop_cannot_run_with_are_refused_by_name() {
        assert_eq!(run().validate(), Ok(()));
        let cases = [
            (RunConfig { batch_size: 0, ..run() }, "batch_size 0: must be at least 1"),
            (RunConfig { log_every: 0, ..run() }, "log_every 0: must be at least 1"),
            (RunConfig { checkpoint_every: 0, ..run() }, "checkpoint_every 0: must be at least 1"),
            (RunConfig { learning_rate: f64::NAN, ..run() }, "learning_rate NaN: must be a finite number ≥ 0"),
            (RunConfig { weight_decay: -1.0, ..run() }, "weight_decay -1: must be a finite number ≥ 0"),
            (RunConfig { max_minutes: Some(f64::INFINITY), ..run() }, "max_minutes inf: must be a finite number ≥ 0"),
        ];
        for (config, message) in cases {
            assert_eq!(config.validate().unwrap_err().to_string(), format!("run config: {message}"));
        }
    }
}
