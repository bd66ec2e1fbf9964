//! Per-sample schedule values: training draws a different timestep for every sample, while
//! the scheduler (like diffusers) works with one timestep per call.

use burn::tensor::{backend::Backend, Tensor, TensorData};
use vq_scheduler::ScheduleTables;

/// The log schedule values each sample's timestep needs, as `[batch, 1, 1]` tensors ready to
/// broadcast over `[batch, classes, pixels]`.
///
/// `t` indexes the per-step tables (log a_t, log β_t, log γ_t) and the cumulative tables
/// (log ᾱ_t, log β̄_t, log γ̄_t); `prev` holds the cumulative values at t − 1, which the
/// posterior needs. At t = 0 there is no t − 1; the objective replaces the posterior KL by the
/// decoder NLL there, and `prev` holds the (finite) values at t so that the discarded branch
/// stays finite and its zero gradient cannot turn into NaN.
#[derive(Debug, Clone)]
pub struct StepRates<B: Backend> {
    /// log a_t.
    pub log_at: Tensor<B, 3>,
    /// log β_t.
    pub log_bt: Tensor<B, 3>,
    /// log γ_t.
    pub log_ct: Tensor<B, 3>,
    /// log ᾱ_t.
    pub log_cumprod_at: Tensor<B, 3>,
    /// log β̄_t.
    pub log_cumprod_bt: Tensor<B, 3>,
    /// log γ̄_t.
    pub log_cumprod_ct: Tensor<B, 3>,
    /// log ᾱ_{t−1} (log ᾱ_t at t = 0).
    pub prev_log_cumprod_at: Tensor<B, 3>,
    /// log β̄_{t−1} (log β̄_t at t = 0).
    pub prev_log_cumprod_bt: Tensor<B, 3>,
    /// log γ̄_{t−1} (log γ̄_t at t = 0).
    pub prev_log_cumprod_ct: Tensor<B, 3>,
}

impl<B: Backend> StepRates<B> {
    /// Gathers the values for timesteps `t` (one per sample) from the scheduler's f32 tables
    /// on the host and uploads them.
    ///
    /// # Panics
    /// If `t` is empty or a timestep is ≥ T.
    pub fn gather(tables: &ScheduleTables, t: &[usize], device: &B::Device) -> Self {
        assert!(!t.is_empty(), "StepRates::gather needs at least one timestep");
        let steps = tables.num_train_timesteps();
        assert!(t.iter().all(|&t| t < steps), "timesteps {t:?} out of range 0..{steps}");
        let column = |table: &[f32], offset: usize| {
            let values: Vec<f32> = t.iter().map(|&t| table[t.saturating_sub(offset)]).collect();
            Tensor::<B, 3>::from_data(TensorData::new(values, [t.len(), 1, 1]), device)
        };
        Self {
            log_at: column(&tables.log_at, 0),
            log_bt: column(&tables.log_bt, 0),
            log_ct: column(&tables.log_ct, 0),
            log_cumprod_at: column(&tables.log_cumprod_at, 0),
            log_cumprod_bt: column(&tables.log_cumprod_bt, 0),
            log_cumprod_ct: column(&tables.log_cumprod_ct, 0),
            prev_log_cumprod_at: column(&tables.log_cumprod_at, 1),
            prev_log_cumprod_bt: column(&tables.log_cumprod_bt, 1),
            prev_log_cumprod_ct: column(&tables.log_cumprod_ct, 1),
        }
    }

    /// Batch size.
    pub fn batch(&self) -> usize {
        self.log_at.dims()[0]
    }
}
