//! The crate's typed error.

use std::path::PathBuf;

/// Errors of configuring and driving a [`crate::VQDiffusionScheduler`].
///
/// Shape mismatches and out-of-range timesteps passed to the tensor functions are programmer
/// errors and panic with a message instead (see each function's `# Panics`).
#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    /// A config field holds a value the schedule cannot be built from.
    #[error("invalid scheduler config: `{field}` = {value} ({reason})")]
    InvalidConfig {
        /// The offending field, named as in `scheduler_config.json`.
        field: &'static str,
        /// The value as written in the config.
        value: String,
        /// What the value must satisfy.
        reason: &'static str,
    },
    /// The config's fields are each in range, but together they give a schedule probability
    /// that is not strictly positive (its log would be −inf or NaN), e.g. ᾱ_t + γ̄_t > 1.
    #[error(
        "scheduler config gives a non-positive probability: {table}[{index}] = {value:e} \
         (every a_t, β_t, γ_t, ᾱ_t, β̄_t, γ̄_t for t < num_train_timesteps must be in (0, 1])"
    )]
    InvalidSchedule {
        /// The probability table (`at`, `bt`, `ct`, `att`, `btt` or `ctt`).
        table: &'static str,
        /// The timestep index into the table.
        index: usize,
        /// The f64 value found there.
        value: f64,
    },
    /// `set_timesteps` was asked for zero steps or for more steps than the schedule has.
    #[error("num_inference_steps = {steps} must be in 1..={num_train_timesteps} (num_train_timesteps)")]
    InvalidInferenceSteps {
        /// The requested number of steps.
        steps: usize,
        /// The schedule's `num_train_timesteps`.
        num_train_timesteps: usize,
    },
    /// The config file could not be read.
    #[error("cannot read scheduler config {path}: {source}")]
    ReadConfig {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The config JSON could not be parsed (bad JSON, missing `num_vec_classes`, wrong types).
    #[error("cannot parse scheduler config {origin}: {source}")]
    ParseConfig {
        /// The file path, or `<string>` for in-memory JSON.
        origin: String,
        /// The parser's error.
        source: serde_json::Error,
    },
}
