//! What the worker runs: an [`Engine`] turns a batch of requests into images. The real one is
//! a [`PipelineEngine`] on any burn backend; the trait lets tests wrap it (e.g. to inject a
//! fault) without a second code path in the server.

use std::ops::ControlFlow;

use image::RgbImage;
use serde::Serialize;
use vq_pipeline::{EngineChoice, GenerateRequest, KernelBackend, PipelineError, VQDiffusionPipeline};

/// What is loaded: `GET /v1/models`, the page's defaults, the PNG metadata.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelInfo {
    /// The model as the operator named it (folder or repository id); recorded in the PNGs.
    pub id: String,
    /// Image width in pixels.
    pub width: u32,
    /// Image height in pixels.
    pub height: u32,
    /// Training steps T: requests may ask for 1..=T steps.
    pub num_train_timesteps: usize,
    /// Steps when a request gives none: 100, or T when smaller (as the command line).
    pub default_steps: usize,
    /// Guidance scale when a request gives none (the model's `sampling_defaults.json`, else 5).
    pub guidance_scale: f32,
    /// Truncation rate when a request gives none (the model's `sampling_defaults.json`, else 1).
    pub truncation_rate: f32,
    /// The compute backend's name.
    pub backend: &'static str,
    /// The float precision's name.
    pub dtype: &'static str,
}

impl ModelInfo {
    /// `WIDTHxHEIGHT`, as the images API writes sizes.
    pub fn size(&self) -> String {
        format!("{}x{}", self.width, self.height)
    }
}

/// Generates the images of a batch of requests on the worker thread.
pub trait Engine: Send + 'static {
    /// What is loaded.
    fn model(&self) -> &ModelInfo;

    /// The images of `requests`, run as one batch (they share a [`vq_pipeline::BatchKey`]),
    /// one list per request in order. `progress` gets the number of steps done after each step;
    /// [`ControlFlow::Break`] stops the batch with [`PipelineError::Cancelled`].
    fn generate(
        &mut self,
        requests: &[GenerateRequest],
        progress: &mut dyn FnMut(usize) -> ControlFlow<()>,
    ) -> Result<Vec<Vec<RgbImage>>, PipelineError>;
}

/// The pipeline as an [`Engine`].
#[derive(Debug)]
pub struct PipelineEngine<B: KernelBackend> {
    pipeline: VQDiffusionPipeline<B>,
    model: ModelInfo,
    engine: EngineChoice,
}

impl<B: KernelBackend> PipelineEngine<B> {
    /// Serves `pipeline`, recording `model` (as the operator named it), `backend` and `dtype`
    /// in the PNGs.
    pub fn new(pipeline: VQDiffusionPipeline<B>, model: &str, backend: &'static str, dtype: &'static str) -> Self {
        let (h, w) = pipeline.latent_size();
        // Each VQ-VAE up block but the last doubles the side (diffusers' `vae_scale_factor`).
        let scale = 1 << pipeline.configs.vqvae.block_out_channels.len().saturating_sub(1);
        let defaults = GenerateRequest::new([""]);
        let recommended = pipeline.sampling_defaults;
        let num_train_timesteps = pipeline.scheduler_config.num_train_timesteps;
        let model = ModelInfo {
            id: model.to_string(),
            width: (w * scale) as u32,
            height: (h * scale) as u32,
            num_train_timesteps,
            default_steps: defaults.num_inference_steps.min(num_train_timesteps),
            guidance_scale: recommended.guidance_scale.unwrap_or(defaults.guidance_scale),
            truncation_rate: recommended.truncation_rate.unwrap_or(defaults.truncation_rate),
            backend,
            dtype,
        };
        Self { pipeline, model, engine: EngineChoice::Auto }
    }

    /// Runs the transformer on the backend's whole-forward engine or not (`generate --engine`);
    /// default [`EngineChoice::Auto`], as the command line.
    pub fn with_engine(mut self, engine: EngineChoice) -> Self {
        self.engine = engine;
        self
    }
}

impl<B: KernelBackend> Engine for PipelineEngine<B> {
    fn model(&self) -> &ModelInfo {
        &self.model
    }

    fn generate(
        &mut self,
        requests: &[GenerateRequest],
        progress: &mut dyn FnMut(usize) -> ControlFlow<()>,
    ) -> Result<Vec<Vec<RgbImage>>, PipelineError> {
        // One engine for the whole server: the batch prepares the transformer once with it.
        let requests: Vec<GenerateRequest> =
            requests.iter().map(|request| request.clone().with_engine(self.engine)).collect();
        let generations = self.pipeline.generate_batch(&requests, |step| progress(step.index + 1))?;
        Ok(generations.iter().map(|generation| generation.rgb8()).collect())
    }
}
