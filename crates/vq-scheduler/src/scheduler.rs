//! `VQDiffusionScheduler`: the reverse process p(x_{t−1} | x_t) of VQ-Diffusion's
//! mask-and-replace diffusion and its Gumbel-max sampling step (diffusers'
//! `schedulers/scheduling_vq_diffusion.py`).

use burn::tensor::{backend::Backend, DType, FloatDType, Int, Tensor};

use crate::{
    gumbel_max_sample, index_to_log_onehot, log_add_exp_scalar, log_sum_exp_classes, DeviceScheduleTables,
    ScheduleProbabilities, ScheduleTables, SchedulerError, UniformSource, VQDiffusionSchedulerConfig,
};

/// diffusers' `VQDiffusionScheduler` on burn tensors.
///
/// Classes run along dimension 1: K real classes `0..K` and the mask class K. Log tables live
/// on the host (f32, used as scalars) and on the device ([`Self::device_tables`]).
#[derive(Debug, Clone)]
pub struct VQDiffusionScheduler<B: Backend> {
    config: VQDiffusionSchedulerConfig,
    probabilities: ScheduleProbabilities,
    tables: ScheduleTables,
    device_tables: DeviceScheduleTables<B>,
    pub(crate) timesteps: Vec<usize>,
}

impl<B: Backend> VQDiffusionScheduler<B> {
    /// Validates `config`, computes the tables and uploads them to `device`. The timesteps start
    /// as the full chain `[T − 1, …, 0]`, as in diffusers.
    pub fn new(config: VQDiffusionSchedulerConfig, device: &B::Device) -> Result<Self, SchedulerError> {
        let tables = ScheduleTables::new(&config)?;
        let probabilities = ScheduleProbabilities::new(&config);
        let device_tables = tables.to_device(device);
        let timesteps = (0..config.num_train_timesteps).rev().collect();
        Ok(Self { config, probabilities, tables, device_tables, timesteps })
    }

    /// The config the scheduler was built from.
    pub fn config(&self) -> &VQDiffusionSchedulerConfig {
        &self.config
    }

    /// Number of real classes K (the mask class id).
    pub fn num_classes(&self) -> usize {
        self.config.num_classes()
    }

    /// The mask class id, K = `num_vec_classes − 1`.
    pub fn mask_class(&self) -> usize {
        self.config.num_classes()
    }

    /// The schedule's probabilities in f64, from which the tables were taken.
    pub fn probabilities(&self) -> &ScheduleProbabilities {
        &self.probabilities
    }

    /// The f32 log tables on the host.
    pub fn tables(&self) -> &ScheduleTables {
        &self.tables
    }

    /// The f32 log tables on the device.
    pub fn device_tables(&self) -> &DeviceScheduleTables<B> {
        &self.device_tables
    }

    /// The timesteps of the current chain, in sampling order.
    pub fn timesteps(&self) -> &[usize] {
        &self.timesteps
    }

    /// Sets the chain to `[S − 1, S − 2, …, 0]` for S = `num_inference_steps`.
    ///
    /// Like diffusers there is no respacing: S < T runs the last S steps of the training chain
    /// from an all-mask start. S = 0 and S > T are errors (diffusers fails on S > T later,
    /// indexing its tables out of range).
    pub fn set_timesteps(&mut self, num_inference_steps: usize) -> Result<(), SchedulerError> {
        let num_train_timesteps = self.config.num_train_timesteps;
        if num_inference_steps == 0 || num_inference_steps > num_train_timesteps {
            return Err(SchedulerError::InvalidInferenceSteps { steps: num_inference_steps, num_train_timesteps });
        }
        self.timesteps = (0..num_inference_steps).rev().collect();
        Ok(())
    }

    /// Log transition probabilities into the observed `x_t`, one column per pixel
    /// (diffusers' `log_Q_t_transitioning_to_known_class`).
    ///
    /// Not cumulative: row k is log q(x_t | x_{t−1} = k) for k in 0..=K (the mask row K is 0 where
    /// x_t is masked, −69.08 elsewhere). Cumulative: row k is log q(x_t | x_0 = k) for k in 0..K.
    /// For an unmasked x_t = j the class rows are logaddexp(onehot + log a, log b) — log(a + b) on
    /// row j, ≈ log b elsewhere; every row of a masked column is log c.
    ///
    /// # Shapes
    /// - `x_t`: `[batch, pixels]`
    /// - `log_onehot_x_t`: `[batch, K + 1, pixels]` ([`index_to_log_onehot`] of `x_t`)
    /// - output: `[batch, K + 1, pixels]`, or `[batch, K, pixels]` if `cumulative`
    ///
    /// # Panics
    /// If `t ≥ T` or the shapes disagree.
    pub fn log_q_t_transitioning_to_known_class(
        &self,
        t: usize,
        x_t: Tensor<B, 2, Int>,
        log_onehot_x_t: Tensor<B, 3>,
        cumulative: bool,
    ) -> Tensor<B, 3> {
        let k = self.num_classes();
        let [batch, pixels] = x_t.dims();
        assert_eq!(
            log_onehot_x_t.dims(),
            [batch, k + 1, pixels],
            "log_onehot_x_t must be [batch, K + 1, pixels] for x_t of shape {:?}",
            x_t.dims()
        );
        self.check_timestep(t);
        let (log_a, log_b, log_c) = self.tables.at(t, cumulative);

        // Row K of the one-hot is log q(x_t | x_{t−1} = mask): 0 if x_t is the mask, else "0".
        let mask_row = log_onehot_x_t.clone().narrow(1, k, 1);
        let class_rows = log_onehot_x_t.narrow(1, 0, k);
        let log_q = log_add_exp_scalar(class_rows.add_scalar(log_a), log_b);
        let masked_columns = x_t.equal_elem(k as i64).unsqueeze_dim::<3>(1).expand([batch, k, pixels]);
        let log_q = log_q.mask_fill(masked_columns, log_c);
        if cumulative {
            log_q
        } else {
            Tensor::cat(vec![log_q, mask_row], 1)
        }
    }

    /// Pushes log-probabilities over x_0 through the cumulative transition to step t:
    /// rows logaddexp(q + log ᾱ_t, log β̄_t), plus a mask row log γ̄_t.
    ///
    /// # Shapes
    /// - `q`: `[batch, K, pixels]`
    /// - output: `[batch, K + 1, pixels]`
    ///
    /// # Panics
    /// If `t > T` or `q` does not have K classes.
    pub fn apply_cumulative_transitions(&self, q: Tensor<B, 3>, t: usize) -> Tensor<B, 3> {
        let [batch, classes, pixels] = q.dims();
        assert_eq!(classes, self.num_classes(), "q must have K = {} classes", self.num_classes());
        let (log_a, log_b, log_c) = self.tables.at(t, true);
        let q = log_add_exp_scalar(q.add_scalar(log_a), log_b);
        let mask_row = Tensor::full([batch, 1, pixels], log_c, (&q.device(), DType::F32));
        Tensor::cat(vec![q, mask_row], 1)
    }

    /// log p(x_{t−1} | x_t) for t ≥ 1 from the model's log p(x_0 | x_t) (eq. 11 of the paper):
    ///
    /// q = log p(x_0) − log q(x_t | x_0); s = logsumexp_k q; q ← q − s;
    /// result = apply_cumulative_transitions(q, t − 1) + log q(x_t | x_{t−1}) + s.
    ///
    /// The result is unnormalised in form but sums to ≈ 1 over the K + 1 classes when
    /// `log_p_x_0` is normalised.
    ///
    /// # Shapes
    /// - `log_p_x_0`: `[batch, K, pixels]`
    /// - `x_t`: `[batch, pixels]`
    /// - output: `[batch, K + 1, pixels]`
    ///
    /// # Panics
    /// If `t = 0`, `t ≥ T`, or the shapes disagree.
    pub fn q_posterior(&self, log_p_x_0: Tensor<B, 3>, x_t: Tensor<B, 2, Int>, t: usize) -> Tensor<B, 3> {
        assert!(t >= 1, "q_posterior needs t ≥ 1 (step uses the model output directly at t = 0)");
        self.check_model_output(&log_p_x_0, &x_t);
        let log_p_x_0 = log_p_x_0.cast(FloatDType::F32);
        let log_onehot_x_t = index_to_log_onehot(x_t.clone(), self.num_classes() + 1);
        let log_q_x_t_given_x_0 =
            self.log_q_t_transitioning_to_known_class(t, x_t.clone(), log_onehot_x_t.clone(), true);
        let log_q_t_given_x_t_min_1 = self.log_q_t_transitioning_to_known_class(t, x_t, log_onehot_x_t, false);

        let q = log_p_x_0 - log_q_x_t_given_x_0;
        let q_log_sum_exp = log_sum_exp_classes(q.clone());
        let q = q - q_log_sum_exp.clone();
        let q = self.apply_cumulative_transitions(q, t - 1);
        q + log_q_t_given_x_t_min_1 + q_log_sum_exp
    }

    /// One reverse step: samples x_{t−1} given the model's log p(x_0 | x_t).
    ///
    /// At t = 0 the logits are `model_output` itself (K classes: the mask cannot be sampled);
    /// otherwise [`Self::q_posterior`] (K + 1 classes). One uniform tensor of the logits' shape is
    /// drawn from `noise`, turned into Gumbel noise and added; the argmax over classes (first
    /// index on ties) is the new sample.
    ///
    /// # Shapes
    /// - `model_output`: `[batch, K, pixels]` log-probabilities (after guidance, truncation, clamp)
    /// - `sample`: `[batch, pixels]`, ids in `0..=K`
    /// - output: `[batch, pixels]`, ids in `0..=K` (`0..K` at t = 0)
    ///
    /// # Panics
    /// If `t ≥ T` or the shapes disagree.
    pub fn step<N: UniformSource<B> + ?Sized>(
        &self,
        model_output: Tensor<B, 3>,
        t: usize,
        sample: Tensor<B, 2, Int>,
        noise: &mut N,
    ) -> Tensor<B, 2, Int> {
        self.check_step(&model_output, t, &sample);
        // The posterior and the sampling run in f32 whatever the model's float type.
        let model_output = model_output.cast(FloatDType::F32);
        let logits = if t == 0 { model_output } else { self.q_posterior(model_output, sample, t) };
        let uniform = noise.uniform(logits.dims(), &logits.device()).cast(FloatDType::F32);
        gumbel_max_sample(logits, uniform)
    }

    /// The checks of a step: `t < T` and the model output's shape against the sample's.
    pub(crate) fn check_step(&self, model_output: &Tensor<B, 3>, t: usize, sample: &Tensor<B, 2, Int>) {
        self.check_timestep(t);
        self.check_model_output(model_output, sample);
    }

    fn check_timestep(&self, t: usize) {
        assert!(
            t < self.config.num_train_timesteps,
            "timestep {t} out of range 0..{}",
            self.config.num_train_timesteps
        );
    }

    fn check_model_output(&self, log_p_x_0: &Tensor<B, 3>, x_t: &Tensor<B, 2, Int>) {
        let [batch, pixels] = x_t.dims();
        assert_eq!(
            log_p_x_0.dims(),
            [batch, self.num_classes(), pixels],
            "model output must be [batch, K = {}, pixels] matching the sample's {:?}",
            self.num_classes(),
            x_t.dims()
        );
    }
}
