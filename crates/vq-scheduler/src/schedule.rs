//! The mask-and-replace noise schedule (VQ-Diffusion §4.1): per-step and cumulative
//! probabilities a_t (keep), β_t (replace by one given class), γ_t (mask), computed in f64 and
//! stored as f32 logs, as diffusers' `alpha_schedules` / `gamma_schedules` and
//! `VQDiffusionScheduler.__init__` do.

use burn::tensor::{backend::Backend, DType, Tensor, TensorData};

use crate::{SchedulerError, VQDiffusionSchedulerConfig};

/// The schedule's probabilities in f64 (linear domain), index t = 0..T (plus T for cumulative).
///
/// With K real classes, for t in 0..T:
/// ᾱ_t and γ̄_t are linear in t between the config's start and end values;
/// a_t = ᾱ_t / ᾱ_{t−1}, 1 − γ_t = (1 − γ̄_t) / (1 − γ̄_{t−1}) (with ᾱ_{−1} = 1, γ̄_{−1} = 0);
/// β_t = (1 − a_t − γ_t) / K and β̄_t = (1 − ᾱ_t − γ̄_t) / K.
/// The cumulative vectors have one extra entry at index T: ᾱ_T = 1, γ̄_T = 0, β̄_T = 0.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleProbabilities {
    /// a_t, length T.
    pub at: Vec<f64>,
    /// β_t, length T.
    pub bt: Vec<f64>,
    /// γ_t, length T.
    pub ct: Vec<f64>,
    /// ᾱ_t, length T + 1.
    pub att: Vec<f64>,
    /// β̄_t, length T + 1.
    pub btt: Vec<f64>,
    /// γ̄_t, length T + 1.
    pub ctt: Vec<f64>,
}

impl ScheduleProbabilities {
    /// Computes the probabilities for a config in f64, with numpy's order of operations
    /// (`i / (T − 1) · (end − start) + start`, `(1 − a − c) / K`) so that the f32 logs
    /// round exactly like diffusers'.
    ///
    /// The config is not validated here; see [`ScheduleTables::new`].
    pub fn new(config: &VQDiffusionSchedulerConfig) -> Self {
        let steps = config.num_train_timesteps;
        let k = config.num_classes() as f64;
        let linear = |start: f64, end: f64| -> Vec<f64> {
            (0..steps).map(|i| i as f64 / (steps - 1) as f64 * (end - start) + start).collect()
        };
        let alpha_cum = linear(config.alpha_cum_start, config.alpha_cum_end);
        let gamma_cum = linear(config.gamma_cum_start, config.gamma_cum_end);

        let mut at = Vec::with_capacity(steps);
        let mut ct = Vec::with_capacity(steps);
        let (mut prev_alpha_cum, mut prev_one_minus_gamma_cum) = (1.0, 1.0);
        for (&alpha_cum_t, &gamma_cum_t) in alpha_cum.iter().zip(&gamma_cum) {
            at.push(alpha_cum_t / prev_alpha_cum);
            let one_minus_gamma_cum = 1.0 - gamma_cum_t;
            ct.push(1.0 - one_minus_gamma_cum / prev_one_minus_gamma_cum);
            prev_alpha_cum = alpha_cum_t;
            prev_one_minus_gamma_cum = one_minus_gamma_cum;
        }
        let bt = at.iter().zip(&ct).map(|(a, c)| (1.0 - a - c) / k).collect();

        let att: Vec<f64> = alpha_cum.into_iter().chain([1.0]).collect();
        let ctt: Vec<f64> = gamma_cum.into_iter().chain([0.0]).collect();
        let btt = att.iter().zip(&ctt).map(|(a, c)| (1.0 - a - c) / k).collect();
        Self { at, bt, ct, att, btt, ctt }
    }

    /// Checks that every probability used by the sampler (indices 0..T of all six vectors) lies
    /// in (0, 1], so that its log is finite.
    pub fn validate(&self) -> Result<(), SchedulerError> {
        let steps = self.at.len();
        for (table, values) in [
            ("at", &self.at),
            ("bt", &self.bt),
            ("ct", &self.ct),
            ("att", &self.att),
            ("btt", &self.btt),
            ("ctt", &self.ctt),
        ] {
            if let Some((index, &value)) = values[..steps].iter().enumerate().find(|(_, &v)| !(v > 0.0 && v <= 1.0)) {
                return Err(SchedulerError::InvalidSchedule { table, index, value });
            }
        }
        Ok(())
    }
}

/// The six log tables as diffusers stores them: `torch.log` of the f64 probabilities, cast
/// once to f32. Index T of the cumulative tables is (0, −inf, −inf); diffusers' sampler never
/// reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleTables {
    /// log a_t, length T.
    pub log_at: Vec<f32>,
    /// log β_t, length T.
    pub log_bt: Vec<f32>,
    /// log γ_t, length T.
    pub log_ct: Vec<f32>,
    /// log ᾱ_t, length T + 1.
    pub log_cumprod_at: Vec<f32>,
    /// log β̄_t, length T + 1.
    pub log_cumprod_bt: Vec<f32>,
    /// log γ̄_t, length T + 1.
    pub log_cumprod_ct: Vec<f32>,
}

impl ScheduleTables {
    /// Validates `config`, computes its probabilities in f64 and takes their f32 logs.
    pub fn new(config: &VQDiffusionSchedulerConfig) -> Result<Self, SchedulerError> {
        config.validate()?;
        let probabilities = ScheduleProbabilities::new(config);
        probabilities.validate()?;
        Ok(Self::from_probabilities(&probabilities))
    }

    /// f32 logs of f64 probabilities (log in f64, then one rounding to f32).
    pub fn from_probabilities(p: &ScheduleProbabilities) -> Self {
        let log = |values: &[f64]| values.iter().map(|v| v.ln() as f32).collect::<Vec<f32>>();
        Self {
            log_at: log(&p.at),
            log_bt: log(&p.bt),
            log_ct: log(&p.ct),
            log_cumprod_at: log(&p.att),
            log_cumprod_bt: log(&p.btt),
            log_cumprod_ct: log(&p.ctt),
        }
    }

    /// Number of training timesteps T.
    pub fn num_train_timesteps(&self) -> usize {
        self.log_at.len()
    }

    /// (log a_t, log β_t, log γ_t), or (log ᾱ_t, log β̄_t, log γ̄_t) if `cumulative`.
    ///
    /// # Panics
    /// If `t ≥ T` (`t > T` when `cumulative`).
    pub fn at(&self, t: usize, cumulative: bool) -> (f32, f32, f32) {
        let (a, b, c) = if cumulative {
            (&self.log_cumprod_at, &self.log_cumprod_bt, &self.log_cumprod_ct)
        } else {
            (&self.log_at, &self.log_bt, &self.log_ct)
        };
        assert!(
            t < a.len(),
            "timestep {t} out of range: the {} tables have {} entries",
            if cumulative { "cumulative" } else { "per-step" },
            a.len()
        );
        (a[t], b[t], c[t])
    }

    /// Uploads the six tables to `device` as 1-D f32 tensors (f32 also where the device's
    /// default float type is f16/bf16: the scheduler computes in f32).
    pub fn to_device<B: Backend>(&self, device: &B::Device) -> DeviceScheduleTables<B> {
        let upload = |values: &[f32]| {
            Tensor::<B, 1>::from_data(TensorData::new(values.to_vec(), [values.len()]), (device, DType::F32))
        };
        DeviceScheduleTables {
            log_at: upload(&self.log_at),
            log_bt: upload(&self.log_bt),
            log_ct: upload(&self.log_ct),
            log_cumprod_at: upload(&self.log_cumprod_at),
            log_cumprod_bt: upload(&self.log_cumprod_bt),
            log_cumprod_ct: upload(&self.log_cumprod_ct),
        }
    }
}

/// The log tables on a device (what diffusers' `set_timesteps` moves to the device), with the
/// same lengths and values as [`ScheduleTables`].
#[derive(Debug, Clone)]
pub struct DeviceScheduleTables<B: Backend> {
    /// log a_t, shape `[T]`.
    pub log_at: Tensor<B, 1>,
    /// log β_t, shape `[T]`.
    pub log_bt: Tensor<B, 1>,
    /// log γ_t, shape `[T]`.
    pub log_ct: Tensor<B, 1>,
    /// log ᾱ_t, shape `[T + 1]`.
    pub log_cumprod_at: Tensor<B, 1>,
    /// log β̄_t, shape `[T + 1]`.
    pub log_cumprod_bt: Tensor<B, 1>,
    /// log γ̄_t, shape `[T + 1]`.
    pub log_cumprod_ct: Tensor<B, 1>,
}
