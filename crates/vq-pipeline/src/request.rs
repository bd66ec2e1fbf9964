//! The arguments of a generation, as diffusers' `VQDiffusionPipeline.__call__` takes them.

use vq_kernels::EngineChoice;
use vq_scheduler::{RevealOrder, SkipPosterior};

use crate::{KeptRegion, PipelineError};

/// Where the Gumbel noise of each step comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoiseSource {
    /// `torch.Generator("cpu").manual_seed(seed)`: the same tokens as diffusers for the same
    /// seed (MT19937 on the host, uploaded every step).
    Torch {
        /// The seed (taken modulo 2³², as torch does).
        seed: u64,
    },
    /// burn's generator on the device: faster, a different stream.
    Device {
        /// Seeds the backend's generator first when given.
        seed: Option<u64>,
    },
}

/// Where truncation runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TruncationMode {
    /// On the host, with torch's f64 running sums: exactly diffusers' kept classes, for one
    /// read-back of the `[B, K, pixels]` log-probabilities per step.
    #[default]
    Exact,
    /// On the device by bisection ([`vq_scheduler::truncate_on_device`]): no read-back; a class
    /// within float rounding of the cut can go the other way, and a rate of 1 keeps every class.
    Device,
}

/// How the steps at t ≥ 1 draw x_{t−1} (t = 0 always samples every pixel from the model's
/// p(x₀ | x₁)).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Sampler {
    /// diffusers' posterior sampling: every pixel drawn anew from p(x_{t−1} | x_t) at every step.
    #[default]
    Posterior,
    /// Improved VQ-Diffusion's high-quality inference ([`vq_scheduler::reveal_step`]): an even
    /// share of the masked pixels becomes tokens at each step, in this order, and revealed pixels
    /// stay. Not in diffusers: no reference draws the same tokens.
    Reveal(RevealOrder),
}

/// diffusers' number of denoising steps.
pub(crate) const DIFFUSERS_STEPS: usize = 100;

/// One text-to-image request. Defaults are diffusers' (100 steps, guidance 5, truncation 1);
/// [`crate::VQDiffusionPipeline::request`] starts from a loaded pipeline's own defaults instead
/// (a model trained with fewer than 100 steps refuses 100).
///
/// ```
/// use vq_pipeline::{GenerateRequest, NoiseSource};
///
/// let request = GenerateRequest::new(["teddy bear playing in the pool"])
///     .with_steps(50)
///     .with_truncation_rate(0.86)
///     .with_noise(NoiseSource::Torch { seed: 0 });
/// assert_eq!(request.guidance_scale, 5.0);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateRequest {
    /// The prompts; each gives `num_images_per_prompt` images (prompt-major batch order).
    pub prompts: Vec<String>,
    /// Number of denoising steps S: the chain runs t = S−1, …, 0 (no respacing, as diffusers).
    pub num_inference_steps: usize,
    /// Classifier-free guidance scale s; guidance is on when s > 1.
    pub guidance_scale: f32,
    /// Keep, per latent pixel, the most likely classes whose probability mass reaches this
    /// rate, in (0, 1].
    pub truncation_rate: f32,
    /// Where truncation runs.
    pub truncation_mode: TruncationMode,
    /// How the steps draw the next tokens.
    pub sampler: Sampler,
    /// Images per prompt.
    pub num_images_per_prompt: usize,
    /// The noise of the sampling steps.
    pub noise: NoiseSource,
    /// Start tokens, one row of `h·w` ids per image (mask id allowed); all-mask when `None`.
    pub latents: Option<Vec<Vec<i64>>>,
    /// The picture to edit, as codebook ids: one row of `h·w` for the whole batch or one per
    /// image. With it the request is an image variation or an inpainting
    /// ([`Self::with_init_tokens`]); without, text-to-image.
    pub init_tokens: Option<Vec<Vec<i64>>>,
    /// Which latent pixels of `init_tokens` are drawn anew (`true`); the others keep their ids
    /// exactly. One row for the batch or one per image; every pixel when `None`.
    pub mask: Option<Vec<Vec<bool>>>,
    /// How much of the chain draws `init_tokens` anew, in (0, 1]: the tokens are noised forward
    /// to timestep ⌊strength·T⌋ − 1 and denoised from there; 1 starts from the mask.
    pub strength: f32,
    /// Timesteps skipped between network calls: 0 calls the network at every timestep
    /// (diffusers'); K calls it at t = start, start − (K + 1), …, and 0.
    pub skip: usize,
    /// How a chain with `skip > 0` jumps from one call's timestep to the next.
    pub skip_posterior: SkipPosterior,
    /// What the network sees of an inpainting's kept latent pixels before each call.
    pub kept_region: KeptRegion,
    /// The step callback runs when `step_index % callback_steps == 0`.
    pub callback_steps: usize,
    /// Whether the transformer runs on the backend's whole-forward engine (burn's CUDA backend
    /// has one) or on its tensor ops; default: the engine where there is one.
    pub engine: EngineChoice,
}

impl GenerateRequest {
    /// A request for `prompts` with diffusers' defaults and torch noise seeded 0.
    pub fn new<S: Into<String>>(prompts: impl IntoIterator<Item = S>) -> Self {
        Self {
            prompts: prompts.into_iter().map(Into::into).collect(),
            num_inference_steps: DIFFUSERS_STEPS,
            guidance_scale: 5.0,
            truncation_rate: 1.0,
            truncation_mode: TruncationMode::Exact,
            sampler: Sampler::Posterior,
            num_images_per_prompt: 1,
            noise: NoiseSource::Torch { seed: 0 },
            latents: None,
            init_tokens: None,
            mask: None,
            strength: 1.0,
            skip: 0,
            skip_posterior: SkipPosterior::OneStep,
            kept_region: KeptRegion::Renoised,
            callback_steps: 1,
            engine: EngineChoice::Auto,
        }
    }

    /// Sets the number of steps.
    pub fn with_steps(mut self, steps: usize) -> Self {
        self.num_inference_steps = steps;
        self
    }

    /// Sets the guidance scale.
    pub fn with_guidance_scale(mut self, scale: f32) -> Self {
        self.guidance_scale = scale;
        self
    }

    /// Sets the truncation rate.
    pub fn with_truncation_rate(mut self, rate: f32) -> Self {
        self.truncation_rate = rate;
        self
    }

    /// Sets where truncation runs.
    pub fn with_truncation_mode(mut self, mode: TruncationMode) -> Self {
        self.truncation_mode = mode;
        self
    }

    /// Sets how the steps draw the next tokens.
    pub fn with_sampler(mut self, sampler: Sampler) -> Self {
        self.sampler = sampler;
        self
    }

    /// Sets the number of images per prompt.
    pub fn with_images_per_prompt(mut self, n: usize) -> Self {
        self.num_images_per_prompt = n;
        self
    }

    /// Sets the noise source.
    pub fn with_noise(mut self, noise: NoiseSource) -> Self {
        self.noise = noise;
        self
    }

    /// Sets the start tokens.
    pub fn with_latents(mut self, latents: Vec<Vec<i64>>) -> Self {
        self.latents = Some(latents);
        self
    }

    /// Sets how often the step callback runs.
    pub fn with_callback_steps(mut self, every: usize) -> Self {
        self.callback_steps = every;
        self
    }

    /// Sets whether the transformer runs on the backend's engine.
    pub fn with_engine(mut self, engine: EngineChoice) -> Self {
        self.engine = engine;
        self
    }

    /// Number of images B = prompts × images per prompt.
    pub fn batch_size(&self) -> usize {
        self.prompts.len() * self.num_images_per_prompt
    }

    /// Whether classifier-free guidance runs (scale strictly above 1, as diffusers).
    pub fn guided(&self) -> bool {
        self.guidance_scale > 1.0
    }

    /// Checks every argument against the pipeline's sizes: `num_train_timesteps` T, the
    /// number of latent pixels N and the mask id K.
    pub fn validate(&self, num_train_timesteps: usize, pixels: usize, mask_id: usize) -> Result<(), PipelineError> {
        if self.prompts.is_empty() {
            return Err(PipelineError::invalid("prompt", "no prompt given"));
        }
        if self.num_inference_steps == 0 || self.num_inference_steps > num_train_timesteps {
            return Err(PipelineError::invalid(
                "num_inference_steps",
                format!(
                    "{} is outside 1..={num_train_timesteps} (the model's training steps; \
                     VQDiffusionPipeline::request starts from the model's own defaults)",
                    self.num_inference_steps
                ),
            ));
        }
        check_guidance_scale(self.guidance_scale).map_err(|e| PipelineError::invalid("guidance_scale", e))?;
        check_truncation_rate(self.truncation_rate).map_err(|e| PipelineError::invalid("truncation_rate", e))?;
        if let Sampler::Reveal(RevealOrder::Purity { weight }) = self.sampler {
            check_purity_weight(weight).map_err(|e| PipelineError::invalid("purity_weight", e))?;
        }
        if self.num_images_per_prompt == 0 {
            return Err(PipelineError::invalid("num_images_per_prompt", "must be at least 1"));
        }
        if self.callback_steps == 0 {
            return Err(PipelineError::invalid("callback_steps", "must be at least 1"));
        }
        self.validate_edit(pixels, mask_id)?;
        if let Some(latents) = &self.latents {
            let batch = self.batch_size();
            if latents.len() != batch || latents.iter().any(|row| row.len() != pixels) {
                let found: Vec<usize> = latents.iter().map(Vec::len).collect();
                return Err(PipelineError::invalid(
                    "latents",
                    format!("expected {batch} rows of {pixels} ids, found {} rows of lengths {found:?}", latents.len()),
                ));
            }
            let max = mask_id as i64;
            if let Some(bad) = latents.iter().flatten().find(|&&id| !(0..=max).contains(&id)) {
                return Err(PipelineError::invalid(
                    "latents",
                    format!("id {bad} is outside 0..={max} (codebook ids and the mask id {max})"),
                ));
            }
        }
        Ok(())
    }
}

/// The range of a guidance scale: finite and ≥ 0. The error reads after the argument's name
/// (e.g. `--guidance-scale: -1 must be a finite number ≥ 0`).
pub fn check_guidance_scale(scale: f32) -> Result<(), String> {
    match scale.is_finite() && scale >= 0.0 {
        true => Ok(()),
        false => Err(format!("{scale} must be a finite number ≥ 0")),
    }
}

/// The range of the purity prior's weight r: finite and ≥ 0.
pub fn check_purity_weight(weight: f32) -> Result<(), String> {
    match weight.is_finite() && weight >= 0.0 {
        true => Ok(()),
        false => Err(format!("{weight} must be a finite number ≥ 0")),
    }
}

/// The range of a truncation rate: (0, 1]. The error reads after the argument's name.
pub fn check_truncation_rate(rate: f32) -> Result<(), String> {
    match rate > 0.0 && rate <= 1.0 {
        true => Ok(()),
        false => Err(format!("{rate} is outside (0, 1]")),
    }
}
