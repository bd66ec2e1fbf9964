//! `vq-diffusion generate` on one backend: check the outputs, load, sample with a progress bar,
//! write the files (whole or not at all, see [`crate::staging`]).

use std::hash::{BuildHasher, RandomState};
use std::io::Write;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use vq_kernels::KernelBackend;
use vq_pipeline::{
    set_precision, GenerateRequest, ImageMetadata, LoadOptions, NoiseSource, PipelineError, RevealOrder, Sampler,
    VQDiffusionPipeline, BATCH_PROMPTS,
};

use crate::args::{truncation_mode_name, GenerateArgs, Rng};
use crate::error::CliError;
use crate::format::{ImageFormat, Kept};
use crate::output::{image_path, tokens_json};
use crate::report;
use crate::staging::{plan, Staged};
use crate::words::unknown_words_warning;

/// Runs a generation on `device` of backend `B`.
pub fn run<B: KernelBackend>(device: B::Device, args: &GenerateArgs) -> Result<(), CliError> {
    let batch = args.batch_size()?;
    let format = ImageFormat::of(&args.output)?;
    let outputs: Vec<(&'static str, std::path::PathBuf)> = (0..batch)
        .map(|i| ("--output", image_path(&args.output, batch, i)))
        .chain(args.tokens.iter().map(|t| ("--tokens", t.clone())))
        .collect();
    let targets = plan(&outputs)?;
    set_precision::<B>(&device, args.dtype.precision()).map_err(|e| match e {
        PipelineError::Precision { precision, message } => CliError::Failure(format!(
            "--dtype {precision} is not supported by the {} backend: {message}",
            args.backend.name()
        )),
        other => other.into(),
    })?;

    // The pictures to edit are read before the model, so that a bad file fails at once.
    let edit_inputs = args.edit.read_inputs()?;
    let model = &args.model()?;
    let truncation_mode = args.truncation_mode();
    report(&format!("Loading {} ({} backend, {})…", model, args.backend.name(), args.dtype.precision().name()));
    let start = Instant::now();
    let pipeline = VQDiffusionPipeline::<B>::from_pretrained(model, &LoadOptions::default(), &device)?;
    report(&format!("Loaded {} in {:.1} s", pipeline.dir.display(), start.elapsed().as_secs_f32()));
    if let Some(warning) = unknown_words_warning(args.prompts().iter().flat_map(|p| pipeline.unknown_words(p))) {
        report(&warning);
    }
    // The pipeline's own defaults, as the library's `VQDiffusionPipeline::request` gives them.
    let request = pipeline.request(args.prompts().to_vec());

    let max_steps = pipeline.scheduler_config.num_train_timesteps;
    let steps = args.steps.unwrap_or(request.num_inference_steps);
    if steps > max_steps {
        return Err(CliError::Usage(format!(
            "--steps {steps} is more than this model's num_train_timesteps {max_steps}"
        )));
    }

    let seed = match args.seed {
        Some(seed) => seed,
        None => {
            let seed = random_seed();
            report(&format!("Seed {seed} (drawn at random; pass --seed {seed} to reproduce)"));
            seed
        }
    };
    let noise = |seed| match args.rng {
        Rng::Torch => NoiseSource::Torch { seed },
        Rng::Device => NoiseSource::Device { seed: Some(seed) },
    };
    let recommended = &pipeline.sampling_defaults;
    let guidance_scale = args.guidance_scale.unwrap_or(request.guidance_scale);
    let truncation_rate = args.truncation_rate.unwrap_or(request.truncation_rate);
    if (args.guidance_scale.is_none() && recommended.guidance_scale.is_some())
        || (args.truncation_rate.is_none() && recommended.truncation_rate.is_some())
    {
        report(&format!(
            "Guidance scale {guidance_scale}, truncation rate {truncation_rate}: the model's {} \
             (--guidance-scale / --truncation-rate override it)",
            vq_pipeline::SAMPLING_DEFAULTS_FILE
        ));
    }
    let request = request
        .with_steps(steps)
        .with_guidance_scale(guidance_scale)
        .with_truncation_rate(truncation_rate)
        .with_images_per_prompt(args.num_images_per_prompt)
        .with_noise(noise(seed))
        .with_truncation_mode(truncation_mode)
        .with_sampler(args.sampler())
        .with_engine(args.engine.choice());
    let request = edit_inputs.apply(&args.edit, &pipeline, request)?;
    let calls = request.network_calls(max_steps);

    let metadata = ImageMetadata {
        model,
        seed,
        seed_per_image: args.seed_per_image,
        prompts: args.prompts(),
        num_images_per_prompt: args.num_images_per_prompt,
        rng: args.rng.name(),
        steps,
        guidance_scale,
        truncation_rate,
        truncation_mode: truncation_mode_name(truncation_mode),
        sampler: args.sampler.name(),
        purity_weight: match args.sampler() {
            Sampler::Reveal(RevealOrder::Purity { weight }) => Some(weight),
            _ => None,
        },
        backend: args.backend.name(),
        dtype: args.dtype.precision().name(),
    };
    let mut staged = Staged::default();
    // What JPEG's 64 KiB of EXIF could not hold, said once per run.
    let mut lost = Kept::All;
    let mut write_image = |i: usize, image: &image::RgbImage| {
        staged.write(&targets[i], |out| {
            let mut parameters = metadata.chunks(i);
            parameters.extend(args.edit.chunks());
            let kept = format.encode(image, &parameters, BATCH_PROMPTS, out)?;
            lost = lost.max(kept);
            Ok(())
        })
    };

    let start = Instant::now();
    let mut warnings: Vec<String> = Vec::new();
    let tokens: Vec<Vec<i64>> = if args.seed_per_image {
        // Image i alone with seed + i: the request of `--prompt P --seed S+i`.
        let bar = progress_bar(calls * batch);
        let mut tokens = Vec::with_capacity(batch);
        for i in 0..batch {
            let one = GenerateRequest {
                prompts: vec![args.prompts()[i / args.num_images_per_prompt].clone()],
                num_images_per_prompt: 1,
                noise: noise(seed + i as u64),
                ..request.clone()
            };
            let done = (i * calls) as u64;
            let generation =
                pipeline.generate_with_callback(&one, |step| bar.set_position(done + step.index as u64 + 1))?;
            warnings.extend(generation.warnings.iter().filter(|w| !warnings.contains(w)).cloned().collect::<Vec<_>>());
            write_image(i, &generation.rgb8()[0])?;
            tokens.extend(generation.token_ids());
        }
        bar.finish_and_clear();
        tokens
    } else {
        let bar = progress_bar(calls);
        let generation = pipeline.generate_with_callback(&request, |step| bar.set_position(step.index as u64 + 1))?;
        bar.finish_and_clear();
        warnings = generation.warnings.clone();
        // Batch order is prompt-major: image i belongs to prompt i / K.
        for (i, image) in generation.rgb8().iter().enumerate() {
            write_image(i, image)?;
        }
        generation.token_ids()
    };
    report(&format!("Generated {batch} image(s) in {:.1} s", start.elapsed().as_secs_f32()));
    for warning in &warnings {
        report(&format!("warning: {warning}"));
    }
    match lost {
        Kept::All => {}
        Kept::WithoutBatchPrompts => report(
            "warning: the batch's prompts do not fit into a JPEG's 64 KiB of EXIF: the images record their own \
             prompt and place in the batch only (PNG and WebP keep them all)",
        ),
        Kept::None => report("warning: the parameters do not fit into a JPEG's 64 KiB of EXIF and are not recorded"),
    }
    if args.tokens.is_some() {
        let json = tokens_json(&tokens);
        staged.write(&targets[batch], |out| out.write_all(json.as_bytes()).map_err(|e| e.to_string()))?;
    }
    staged.commit()
}

/// A seed in 0..2³² (what torch's CPU generator uses of a seed) from the process's random
/// hash keys, which the standard library draws from the operating system.
fn random_seed() -> u64 {
    RandomState::new().hash_one(Instant::now()) & 0xFFFF_FFFF
}

/// Steps done out of `steps`, on stderr (drawn only when stderr is a terminal).
fn progress_bar(steps: usize) -> ProgressBar {
    let style = ProgressStyle::with_template("{bar:40} {pos}/{len} steps [{elapsed_precise} < {eta_precise}]")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    ProgressBar::with_draw_target(Some(steps as u64), ProgressDrawTarget::stderr()).with_style(style)
}
