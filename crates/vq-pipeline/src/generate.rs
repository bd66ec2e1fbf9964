//! The sampling loop of `VQDiffusionPipeline.__call__`.

use std::ops::ControlFlow;

use burn::tensor::backend::Backend;
use burn::tensor::{ElementConversion, FloatDType, Int, Tensor};
use transformer2d::{PrepareOptions, Timesteps};
use vq_kernels::KernelBackend;
use vq_scheduler::{
    clamp_log_probs, classifier_free_guidance, reveal_step, truncate, truncate_on_device, DeviceNoise, TorchGenerator,
    UniformSource, LOG_PROB_FLOOR,
};

use crate::output::Generation;
use crate::{GenerateRequest, KeptRegion, NoiseSource, PipelineError, Sampler, TruncationMode, VQDiffusionPipeline};

/// What the step callback sees.
pub struct StepState<'a, B: Backend> {
    /// Index of the step in the chain, from 0.
    pub index: usize,
    /// Number of steps of the chain.
    pub total: usize,
    /// The diffusion timestep t of the step just taken.
    pub timestep: usize,
    /// The tokens x_{t−1} after the step, `[B, h·w]` (decode them with
    /// [`VQDiffusionPipeline::decode`] for a preview).
    pub sample: &'a Tensor<B, 2, Int>,
}

impl<B: KernelBackend> VQDiffusionPipeline<B> {
    /// Generates images for `request`.
    pub fn generate(&self, request: &GenerateRequest) -> Result<Generation<B>, PipelineError> {
        self.generate_with_callback(request, |_| {})
    }

    /// Generates images, calling `callback` after every `request.callback_steps`-th step.
    ///
    /// Per step: the transformer predicts log p(x₀ | x_t) for the unconditional and the
    /// conditional rows at once; guidance combines them and renormalises; truncation keeps the
    /// likeliest classes; the −70 clamp; then the scheduler samples x_{t−1} (or, with
    /// [`Sampler::Reveal`], reveals some masked pixels).
    pub fn generate_with_callback(
        &self,
        request: &GenerateRequest,
        mut callback: impl FnMut(&StepState<'_, B>),
    ) -> Result<Generation<B>, PipelineError> {
        let mut noise: Box<dyn UniformSource<B>> = match request.noise {
            NoiseSource::Torch { seed } => Box::new(TorchGenerator::new(seed)),
            NoiseSource::Device { seed } => {
                if let Some(seed) = seed {
                    B::seed(&self.device, seed);
                }
                Box::new(DeviceNoise)
            }
        };
        self.generate_with_noise(request, noise.as_mut(), |step| {
            callback(step);
            ControlFlow::Continue(())
        })
    }

    /// Generates images as [`Self::generate_with_callback`] does, drawing the sampling noise from
    /// `noise` instead of `request.noise` (e.g. [`crate::PerRequestNoise`] for a batch of
    /// several requests). `callback` may stop the chain: [`ControlFlow::Break`] ends it with
    /// [`PipelineError::Cancelled`].
    pub fn generate_with_noise(
        &self,
        request: &GenerateRequest,
        noise: &mut dyn UniformSource<B>,
        mut callback: impl FnMut(&StepState<'_, B>) -> ControlFlow<()>,
    ) -> Result<Generation<B>, PipelineError> {
        let (h, w) = self.latent_size();
        let mask_id = self.scheduler_config.num_vec_classes - 1;
        request.validate(self.scheduler_config.num_train_timesteps, h * w, mask_id)?;
        let batch = request.batch_size();
        let guided = request.guided();

        let prompt = self.encode_prompts(&request.prompts, request.num_images_per_prompt, guided)?;
        let mut scheduler = self.scheduler()?;
        let num_train_timesteps = self.scheduler_config.num_train_timesteps;
        scheduler.set_strided_timesteps(request.start_steps(num_train_timesteps), request.skip)?;
        // What stays constant over the steps (the text's keys and values, or the whole engine).
        let transformer = self
            .transformer
            .prepare(prompt.embeddings.clone(), &PrepareOptions::default().with_engine(request.engine))?;
        let timesteps = scheduler.timesteps().to_vec();
        let (mut sample, kept) = self.start_tokens(request, &scheduler, timesteps[0], &mut *noise);
        // Steps whose log-probabilities held a NaN, counted on the device (read once at the end).
        let mut nan_steps = Tensor::<B, 1, Int>::zeros([1], &self.device);
        for (index, &t) in timesteps.iter().enumerate() {
            if let (Some(kept), KeptRegion::Renoised) = (&kept, request.kept_region) {
                // The kept tokens drawn from q(x_t | x_0) before the call: a state consistent with t.
                sample = scheduler.q_sample(sample, t, Some(kept.keep.clone()), &mut *noise);
            }
            let input = if guided { Tensor::cat(vec![sample.clone(), sample.clone()], 0) } else { sample.clone() };
            // Guidance, truncation and the scheduler run in f32 whatever the model's precision:
            // small differences of log-probabilities decide which classes survive truncation.
            let log_p_x_0 = transformer.forward(input, &Timesteps::Shared(t)).cast(FloatDType::F32);
            let log_p_x_0 = if guided {
                // Rows [0, B) are unconditional, [B, 2B) conditional.
                let uncond = log_p_x_0.clone().narrow(0, 0, batch);
                let cond = log_p_x_0.narrow(0, batch, batch);
                classifier_free_guidance(uncond, cond, request.guidance_scale)
            } else {
                log_p_x_0
            };
            let (log_p_x_0, nan) = floor_nans(log_p_x_0);
            nan_steps = nan_steps + nan;
            let log_p_x_0 = match request.truncation_mode {
                TruncationMode::Exact => truncate(log_p_x_0, request.truncation_rate),
                TruncationMode::Device => truncate_on_device(log_p_x_0, request.truncation_rate),
            };
            let log_p_x_0 = clamp_log_probs(log_p_x_0);
            // The reveal sampler spreads the masked pixels over the calls left before t = 0 (t
            // itself on an unstrided chain).
            let next = timesteps.get(index + 1).copied().unwrap_or(0);
            let calls_left = timesteps.len() - 1 - index;
            sample = match request.sampler {
                Sampler::Reveal(order) if t > 0 => reveal_step(log_p_x_0, calls_left, sample, order, &mut *noise),
                _ => scheduler.step_to(log_p_x_0, t, next, sample, request.skip_posterior, &mut *noise),
            };
            if let Some(kept) = &kept {
                sample = kept.impose(sample);
            }
            if index % request.callback_steps == 0
                && callback(&StepState { index, total: timesteps.len(), timestep: t, sample: &sample }).is_break()
            {
                return Err(PipelineError::Cancelled { step: index });
            }
        }
        let images = self.decode(sample.clone())?;
        let mut warnings = prompt.warnings;
        warnings.extend(
            transformer.fallback().map(|why| format!("{why}; the transformer ran on the backend's tensor ops")),
        );
        let nan_steps = nan_steps.into_scalar().elem::<i64>();
        if nan_steps > 0 {
            warnings.push(format!(
                "the model's log-probabilities were NaN at {nan_steps} of {} steps (sampled as the {LOG_PROB_FLOOR} \
                 floor: the images do not follow the prompt); in half precision this is an overflow, try f32",
                timesteps.len()
            ));
        }
        Ok(Generation { tokens: sample, images, warnings })
    }

    /// Decodes tokens to images in [0, 1].
    ///
    /// # Shapes
    /// - tokens: `[B, h·w]` codebook ids (no mask id)
    /// - output: `[B, H, W, 3]` (NHWC, like diffusers' `output_type="np"`)
    pub fn decode(&self, tokens: Tensor<B, 2, Int>) -> Result<Tensor<B, 4>, PipelineError> {
        let decoded = self.vqvae.decode_indices(tokens, self.latent_size())?;
        Ok(vq_model::to_unit_range(decoded))
    }
}

/// NaN log-probabilities (a model that overflowed, e.g. in f16) take the −70 floor, and the
/// returned `[1]` count is 1 if there were any. Why: the argmax of NaN scores is backend-defined —
/// a valid id on the CPU, −1 on CUDA, where the next transformer forward then reads outside its
/// embedding table (an illegal address instead of an error). Finite values pass unchanged, so
/// parity with diffusers is untouched.
///
/// NaN is found as "not ≤ +∞" rather than by `is_nan`, which burn computes as `x ≠ x`: on CPUs
/// with AVX2 but not AVX-512, burn-ndarray's vector equality is the unordered compare, which
/// calls NaN equal to itself, so `is_nan` found no NaN there (docs/numerics.md). An ordered
/// `≤` is false for NaN on every vector unit.
fn floor_nans<B: Backend>(log_p: Tensor<B, 3>) -> (Tensor<B, 3>, Tensor<B, 1, Int>) {
    let nan = log_p.clone().lower_equal_elem(f32::INFINITY).bool_not();
    let any = nan.clone().any().int();
    (log_p.mask_fill(nan, LOG_PROB_FLOOR), any)
}
