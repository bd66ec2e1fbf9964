//! `vq-diffusion generate` on one backend: load, sample with a progress bar, write the files.

use std::hash::{BuildHasher, RandomState};
use std::time::Instant;

use vq_kernels::KernelBackend;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use vq_pipeline::{
    set_precision, GenerateRequest, LoadOptions, NoiseSource, PipelineError, RevealOrder, Sampler, VQDiffusionPipeline,
};

use crate::args::{truncation_mode_name, GenerateArgs, Rng};
use crate::error::CliError;
use crate::output::{check_writable, image_paths, write_tokens, Metadata};
use crate::report;

/// Runs a generation on `device` of backend `B`.
pub fn run<B: KernelBackend>(device: B::Device, args: &GenerateArgs) -> Result<(), CliError> {
    let images = image_paths(&args.output, args.batch_size());
    for path in images.iter().chain(&args.tokens) {
        check_writable(path)?;
    }
    set_precision::<B>(&device, args.dtype.precision()).map_err(|e| match e {
        PipelineError::Precision { precision, message } => CliError::Failure(format!(
            "--dtype {precision} is not supported by the {} backend: {message}",
            args.backend.name()
        )),
        other => other.into(),
    })?;

    let model = &args.model()?;
    let truncation_mode = args.truncation_mode();
    report(&format!("Loading {} ({} backend, {})…", model, args.backend.name(), args.dtype.precision().name()));
    let start = Instant::now();
    let pipeline = VQDiffusionPipeline::<B>::from_pretrained(model, &LoadOptions::default(), &device)?;
    report(&format!("Loaded {} in {:.1} s", pipeline.dir.display(), start.elapsed().as_secs_f32()));

    let max_steps = pipeline.scheduler_config.num_train_timesteps;
    let steps = args.steps.unwrap_or(100.min(max_steps));
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
    let noise = match args.rng {
        Rng::Torch => NoiseSource::Torch { seed },
        Rng::Device => NoiseSource::Device { seed: Some(seed) },
    };
    let request = GenerateRequest::new(args.prompts().to_vec());
    let recommended = &pipeline.sampling_defaults;
    let guidance_scale = args.guidance_scale.or(recommended.guidance_scale).unwrap_or(request.guidance_scale);
    let truncation_rate = args.truncation_rate.or(recommended.truncation_rate).unwrap_or(request.truncation_rate);
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
        .with_noise(noise)
        .with_truncation_mode(truncation_mode)
        .with_sampler(args.sampler());

    let bar = progress_bar(steps);
    let start = Instant::now();
    let generation = pipeline.generate_with_callback(&request, |step| bar.set_position(step.index as u64 + 1))?;
    bar.finish_and_clear();
    report(&format!("Generated {} image(s) in {:.1} s", images.len(), start.elapsed().as_secs_f32()));
    for warning in &generation.warnings {
        report(&format!("warning: {warning}"));
    }

    let metadata = Metadata {
        model,
        seed,
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
    // Batch order is prompt-major: image i belongs to prompt i / K.
    for (i, (image, path)) in generation.rgb8().iter().zip(&images).enumerate() {
        let prompt = &args.prompts()[i / args.num_images_per_prompt];
        vq_pipeline::write_png(path, image, &metadata.chunks(prompt))?;
        crate::print_path(path);
    }
    if let Some(path) = &args.tokens {
        write_tokens(path, &generation.token_ids())?;
        crate::print_path(path);
    }
    Ok(())
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
