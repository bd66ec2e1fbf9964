//! Evaluating a trained pipeline: generate images for prompts of a split that name every
//! attribute, with torch-compatible seeds, and score them with [`crate::eval`].

use vq_kernels::KernelBackend;
use image::RgbImage;
use vq_pipeline::{GenerateRequest, NoiseSource, Sampler, VQDiffusionPipeline};

use crate::data::{Dataset, DatasetConfig, MentionRates, Prompt, Split};
use crate::eval::{evaluate, EvalReport};
use crate::TrainError;

/// What to generate.
#[derive(Debug, Clone)]
pub struct SamplingEval {
    /// The split whose captions are the prompts ([`Split::HeldOut`]: combinations never seen
    /// in training).
    pub split: Split,
    /// Number of images (one per prompt).
    pub count: usize,
    /// Prompts per pipeline call.
    pub batch_size: usize,
    /// Classifier-free guidance scale.
    pub guidance_scale: f32,
    /// Truncation rate of the sampler.
    pub truncation_rate: f32,
    /// How the steps draw the next tokens (diffusers' posterior sampling, or the reveal sampler).
    pub sampler: Sampler,
    /// Seed of the dataset that writes the prompts.
    pub dataset_seed: u64,
    /// Seed of the first batch's torch noise (batch `i` uses `seed + i`).
    pub seed: u64,
}

/// The prompts of `eval`: captions of `eval.split` naming every attribute.
pub fn eval_prompts(eval: &SamplingEval, image_size: u32) -> Result<Vec<(String, Prompt)>, TrainError> {
    let config = DatasetConfig { image_size, mentions: MentionRates::ALWAYS, ..DatasetConfig::default() };
    let dataset = Dataset::new(config, eval.dataset_seed)?;
    Ok((0..eval.count as u64)
        .map(|i| {
            let sample = dataset.sample(eval.split, i);
            (sample.caption, sample.prompt)
        })
        .collect())
}

/// Generates one image per prompt with all T steps and scores it. Returns the report and the
/// images (prompt order).
pub fn evaluate_pipeline<B: KernelBackend>(
    pipeline: &VQDiffusionPipeline<B>,
    eval: &SamplingEval,
    image_size: u32,
) -> Result<(EvalReport, Vec<(String, RgbImage)>), TrainError> {
    let prompts = eval_prompts(eval, image_size)?;
    let steps = pipeline.scheduler_config.num_train_timesteps;
    let mut report = EvalReport::default();
    let mut images = Vec::with_capacity(prompts.len());
    for (batch_index, chunk) in prompts.chunks(eval.batch_size.max(1)).enumerate() {
        let request = GenerateRequest::new(chunk.iter().map(|(caption, _)| caption.clone()))
            .with_steps(steps)
            .with_guidance_scale(eval.guidance_scale)
            .with_truncation_rate(eval.truncation_rate)
            .with_sampler(eval.sampler)
            .with_noise(NoiseSource::Torch { seed: eval.seed + batch_index as u64 });
        let generation = pipeline.generate(&request).map_err(|e| TrainError::model("generating", e))?;
        for ((caption, prompt), image) in chunk.iter().zip(generation.rgb8()) {
            report.add(&evaluate(&image, prompt));
            images.push((caption.clone(), image));
        }
    }
    Ok((report, images))
}

/// Tiles equally sized images into a grid `columns` wide (row-major), for a quick look.
///
/// # Panics
/// If `images` is empty or `columns` is 0.
pub fn contact_sheet(images: &[RgbImage], columns: usize) -> RgbImage {
    assert!(!images.is_empty() && columns > 0, "contact_sheet needs images and columns");
    let (w, h) = images[0].dimensions();
    let rows = images.len().div_ceil(columns);
    let mut sheet = RgbImage::new(w * columns as u32, h * rows as u32);
    for (i, image) in images.iter().enumerate() {
        let (x, y) = ((i % columns) as u32 * w, (i / columns) as u32 * h);
        image::imageops::replace(&mut sheet, image, i64::from(x), i64::from(y));
    }
    sheet
}
