//! Several requests in one transformer batch, each drawing its own noise.
//!
//! A server that gathers the requests arriving together and runs them as one batch pays for
//! one transformer call per step instead of one per request. Noise is never shared across
//! requests: each keeps its own torch generator ([`PerRequestNoise`]), which draws its rows'
//! uniforms in the order the request alone would draw them. A request in a batch therefore
//! gives the tokens it gives alone, as long as the backend's kernels compute a row the same way
//! whatever the batch size (the CPU backends do: `crates/vq-pipeline/tests/batch.rs` checks it).

use std::ops::ControlFlow;

use burn::tensor::backend::Backend;
use burn::tensor::{DType, Tensor, TensorData};
use vq_scheduler::{TorchGenerator, UniformSource};

use crate::generate::StepState;
use crate::{GenerateRequest, Generation, KernelBackend, NoiseSource, PipelineError, VQDiffusionPipeline};

/// What requests must share to run in one batch: every setting of a [`GenerateRequest`]
/// except its own rows (prompts, images per prompt, start tokens) and its seed.
///
/// ```
/// use vq_pipeline::{BatchKey, EngineChoice, GenerateRequest, NoiseSource};
///
/// let a = GenerateRequest::new(["a red circle"]).with_noise(NoiseSource::Torch { seed: 1 });
/// let b = GenerateRequest::new(["a blue square"]).with_images_per_prompt(3);
/// assert_eq!(BatchKey::of(&a), BatchKey::of(&b));
/// assert_ne!(BatchKey::of(&a), BatchKey::of(&b.clone().with_steps(20)));
/// assert_ne!(BatchKey::of(&a), BatchKey::of(&b.with_engine(EngineChoice::Off)));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct BatchKey(GenerateRequest);

impl BatchKey {
    /// The shared settings of `request`. Comparing whole requests with their own rows cleared
    /// keeps any setting added to [`GenerateRequest`] later part of the key.
    pub fn of(request: &GenerateRequest) -> Self {
        let mut shared = request.clone();
        shared.prompts.clear();
        shared.num_images_per_prompt = 1;
        shared.latents = None;
        if let NoiseSource::Torch { .. } = shared.noise {
            shared.noise = NoiseSource::Torch { seed: 0 };
        }
        Self(shared)
    }
}

/// Uniforms for a batch made of several requests: request i owns the next `rows` rows of every
/// draw and fills them from its own [`TorchGenerator`], so its stream is the one it draws
/// alone. Relies on every draw of the sampling loop being `[batch, …]` in row-major order.
#[derive(Clone)]
pub struct PerRequestNoise {
    parts: Vec<(TorchGenerator, usize)>,
}

impl PerRequestNoise {
    /// One generator per `(seed, rows)`, in batch order.
    pub fn new(parts: impl IntoIterator<Item = (u64, usize)>) -> Self {
        Self { parts: parts.into_iter().map(|(seed, rows)| (TorchGenerator::new(seed), rows)).collect() }
    }

    /// Rows of the whole batch.
    pub fn rows(&self) -> usize {
        self.parts.iter().map(|(_, rows)| rows).sum()
    }
}

impl<B: Backend> UniformSource<B> for PerRequestNoise {
    /// # Panics
    /// If `shape[0]` is not [`Self::rows`].
    fn uniform(&mut self, shape: [usize; 3], device: &B::Device) -> Tensor<B, 3> {
        let [batch, classes, pixels] = shape;
        assert_eq!(batch, self.rows(), "PerRequestNoise: a draw of {batch} rows for a batch of {}", self.rows());
        let mut values = Vec::with_capacity(batch * classes * pixels);
        for (generator, rows) in &mut self.parts {
            values.extend(generator.uniform_vec(*rows * classes * pixels));
        }
        Tensor::from_data(TensorData::new(values, shape), (device, DType::F32))
    }
}

impl<B: KernelBackend> VQDiffusionPipeline<B> {
    /// Generates the images of several requests as one batch, one [`Generation`] per request in
    /// order. The requests must have the same [`BatchKey`] and torch noise
    /// ([`NoiseSource::Torch`]); each gets the tokens it gets alone (see the module docs). The
    /// transformer is prepared once for the whole batch, with the engine the requests share
    /// ([`GenerateRequest::engine`] is part of the [`BatchKey`]).
    ///
    /// The callback sees the whole batch: request i's rows follow those of requests 0..i, in its
    /// own prompt-major order. [`ControlFlow::Break`] stops the chain with
    /// [`PipelineError::Cancelled`].
    pub fn generate_batch(
        &self,
        requests: &[GenerateRequest],
        callback: impl FnMut(&StepState<'_, B>) -> ControlFlow<()>,
    ) -> Result<Vec<Generation<B>>, PipelineError> {
        let Some(first) = requests.first() else {
            return Ok(Vec::new());
        };
        let (h, w) = self.latent_size();
        let mask_id = self.scheduler_config.num_vec_classes - 1;
        let key = BatchKey::of(first);
        let mut seeds = Vec::with_capacity(requests.len());
        for request in requests {
            request.validate(self.scheduler_config.num_train_timesteps, h * w, mask_id)?;
            let NoiseSource::Torch { seed } = request.noise else {
                return Err(PipelineError::invalid(
                    "noise",
                    "a batch draws each request's noise from its own torch generator: use NoiseSource::Torch",
                ));
            };
            if BatchKey::of(request) != key {
                return Err(PipelineError::invalid(
                    "requests",
                    "a batch needs the same settings in every request (all but prompts, images per prompt, start \
                     tokens and seed)",
                ));
            }
            seeds.push((seed, request.batch_size()));
        }

        // Each request's rows as it lays them out alone: every prompt repeated for its images.
        let mut merged = key.0;
        merged.prompts = requests
            .iter()
            .flat_map(|r| r.prompts.iter().flat_map(|p| std::iter::repeat_n(p.clone(), r.num_images_per_prompt)))
            .collect();
        if requests.iter().any(|r| r.latents.is_some()) {
            let all_mask = vec![mask_id as i64; h * w];
            merged.latents = Some(
                requests
                    .iter()
                    .flat_map(|r| r.latents.clone().unwrap_or_else(|| vec![all_mask.clone(); r.batch_size()]))
                    .collect(),
            );
        }
        let mut noise = PerRequestNoise::new(seeds);
        let mut generation = self.generate_with_noise(&merged, &mut noise, callback)?;

        // The prompt warnings come first; what follows concerns the whole batch.
        let shared_warnings = generation.warnings.split_off(self.prompt_warnings(&merged.prompts)?.len());
        let mut offset = 0;
        let mut generations = Vec::with_capacity(requests.len());
        for request in requests {
            let rows = request.batch_size();
            let mut warnings = self.prompt_warnings(&request.prompts)?;
            warnings.extend(shared_warnings.iter().cloned());
            generations.push(Generation {
                tokens: generation.tokens.clone().narrow(0, offset, rows),
                images: generation.images.clone().narrow(0, offset, rows),
                warnings,
            });
            offset += rows;
        }
        Ok(generations)
    }
}
