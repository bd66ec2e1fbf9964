//! Evaluating a trained pipeline: generate images for prompts of a split, with torch-compatible
//! seeds, and score them with [`crate::eval`]. A [`PromptSet`] picks which scenes the prompts
//! describe: the split's own mix (every attribute named), single objects, or pairs of objects
//! with or without their positions named — the pairs whose places a model must choose itself.

use image::RgbImage;
use vq_kernels::KernelBackend;
use vq_pipeline::{GenerateRequest, NoiseSource, Sampler, VQDiffusionPipeline};

use crate::data::{Dataset, DatasetConfig, MentionRates, Prompt, Split};
use crate::eval::{evaluate, EvalReport};
use crate::rng::SplitMix64;
use crate::TrainError;

/// Which scenes a prompt set describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PromptSet {
    /// The split's own scenes (one object or, at the dataset's default rate, two), every
    /// attribute named — the set earlier evaluations scored, drawn from the prompt seed itself.
    Mixed,
    /// One object, every attribute named.
    One,
    /// Two objects, sizes, positions and background named ("a small red circle on the left and
    /// a large blue square in the center on a white background").
    TwoPositioned,
    /// Two objects, colours, shapes and background named, no size and no position ("a red
    /// circle and a blue square on a white background"): the model chooses the places.
    TwoUnpositioned,
}

impl PromptSet {
    /// Every set, in display order.
    pub const ALL: [PromptSet; 4] =
        [PromptSet::Mixed, PromptSet::One, PromptSet::TwoPositioned, PromptSet::TwoUnpositioned];

    /// A short label ("two objects, no sizes or positions").
    pub fn label(self) -> &'static str {
        match self {
            PromptSet::Mixed => "one or two objects, every attribute named",
            PromptSet::One => "one object, every attribute named",
            PromptSet::TwoPositioned => "two objects, sizes and positions named",
            PromptSet::TwoUnpositioned => "two objects, no sizes or positions",
        }
    }

    /// The dataset that writes this set's prompts, for images of side `image_size`.
    pub fn dataset_config(self, image_size: u32) -> DatasetConfig {
        let base = DatasetConfig { image_size, mentions: MentionRates::ALWAYS, ..DatasetConfig::default() };
        match self {
            PromptSet::Mixed => base,
            PromptSet::One => DatasetConfig { two_objects: 0.0, ..base },
            PromptSet::TwoPositioned => DatasetConfig { two_objects: 1.0, ..base },
            PromptSet::TwoUnpositioned => DatasetConfig {
                two_objects: 1.0,
                mentions: MentionRates { size: 0.0, position: 0.0, background: 1.0 },
                ..base
            },
        }
    }

    /// The dataset seed of this set for `prompt_seed`: the prompt seed itself for
    /// [`PromptSet::Mixed`] (so its prompts are those earlier evaluations scored), else a seed
    /// mixed from it and the set, so that each set draws its own scenes rather than the mixed
    /// set's first objects again.
    pub fn dataset_seed(self, prompt_seed: u64) -> u64 {
        match self {
            PromptSet::Mixed => prompt_seed,
            set => SplitMix64::for_item(prompt_seed, PROMPT_SET_STREAM, set as u64).next_u64(),
        }
    }
}

/// The stream key of [`PromptSet::dataset_seed`] (any constant other than the splits' keys).
const PROMPT_SET_STREAM: u64 = 0x5CE7E5;

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
    /// Which scenes the prompts describe.
    pub prompts: PromptSet,
    /// Seed of the prompts ([`PromptSet::dataset_seed`] turns it into the dataset's seed).
    pub dataset_seed: u64,
    /// Seed of the first batch's torch noise (batch `i` uses `seed + i`).
    pub seed: u64,
}

/// The prompts of `eval`: captions of `eval.split`'s scenes of the kind `eval.prompts` picks.
pub fn eval_prompts(eval: &SamplingEval, image_size: u32) -> Result<Vec<(String, Prompt)>, TrainError> {
    let config = eval.prompts.dataset_config(image_size);
    let dataset = Dataset::new(config, eval.prompts.dataset_seed(eval.dataset_seed))?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Color, Shape};

    fn prompts(set: PromptSet, split: Split, seed: u64, count: usize) -> Vec<Prompt> {
        let eval = SamplingEval {
            split,
            count,
            batch_size: 8,
            guidance_scale: 3.0,
            truncation_rate: 1.0,
            sampler: Sampler::Posterior,
            prompts: set,
            dataset_seed: seed,
            seed: 0,
        };
        eval_prompts(&eval, 64)
            .unwrap()
            .into_iter()
            .map(|(caption, prompt)| {
                assert_eq!(Prompt::parse(&caption).unwrap(), prompt);
                prompt
            })
            .collect()
    }

    #[test]
    fn each_prompt_set_names_what_it_says() {
        for split in [Split::HeldOut, Split::Validation] {
            for prompt in prompts(PromptSet::One, split, 1234, 200) {
                assert_eq!(prompt.objects.len(), 1);
                assert!(prompt.objects[0].position.is_some() && prompt.objects[0].size.is_some());
                assert!(prompt.background.is_some());
            }
            for prompt in prompts(PromptSet::TwoPositioned, split, 1234, 200) {
                assert_eq!(prompt.objects.len(), 2);
                assert!(prompt.objects.iter().all(|o| o.position.is_some() && o.size.is_some()));
                assert!(prompt.background.is_some());
            }
            for prompt in prompts(PromptSet::TwoUnpositioned, split, 1234, 200) {
                assert_eq!(prompt.objects.len(), 2);
                assert!(prompt.objects.iter().all(|o| o.position.is_none() && o.size.is_none()));
                assert!(prompt.background.is_some());
            }
        }
    }

    #[test]
    fn the_mixed_set_keeps_the_prompt_seed_and_the_others_draw_their_own_scenes() {
        // The mixed set is the dataset of the prompt seed with every attribute named.
        let config = DatasetConfig { image_size: 64, mentions: MentionRates::ALWAYS, ..DatasetConfig::default() };
        let dataset = Dataset::new(config, 777).unwrap();
        let expected: Vec<Prompt> = (0..50).map(|i| dataset.sample(Split::HeldOut, i).prompt).collect();
        assert_eq!(prompts(PromptSet::Mixed, Split::HeldOut, 777, 50), expected);
        // Each other set draws scenes of its own: their first objects differ from the mixed set's.
        let first = |prompts: Vec<Prompt>| -> Vec<(Color, Shape)> {
            prompts.iter().map(|p| (p.objects[0].color, p.objects[0].shape)).collect()
        };
        let mixed = first(expected);
        let sets = [PromptSet::One, PromptSet::TwoPositioned, PromptSet::TwoUnpositioned];
        let firsts: Vec<_> = sets.iter().map(|&set| first(prompts(set, Split::HeldOut, 777, 50))).collect();
        for (set, objects) in sets.iter().zip(&firsts) {
            let same = objects.iter().zip(&mixed).filter(|(a, b)| a == b).count();
            // 32 (colour, shape) pairs: about 50 / 32 agree by chance.
            assert!(same < 10, "{set:?}: {same} of 50 first objects as in the mixed set");
        }
        assert_ne!(firsts[1], firsts[2]);
        // Another prompt seed, another list.
        assert_ne!(first(prompts(PromptSet::TwoUnpositioned, Split::HeldOut, 778, 50)), firsts[2]);
    }
}
