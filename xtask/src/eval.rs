//! `eval`: generate images for prompts the model never saw in training (held-out attribute
//! combinations, every attribute named) and score colour, shape, size, position, background
//! and count with `vq_train::eval`, next to the VQ-VAE's reconstruction ceiling. With `--vqvae`
//! instead of `--model`, only a stage-1 VQ-VAE's reconstructions are scored (its ceiling, before
//! a transformer is trained on its tokens).

use std::path::PathBuf;
use std::time::Instant;

use burn::tensor::backend::Backend;
use vq_model::{VqModel, VqModelConfig};
use vq_pipeline::{RevealOrder, Sampler, VQDiffusionPipeline};
use vq_train::data::{Dataset, DatasetConfig, MentionRates, Split};
use vq_train::eval::EvalReport;
use vq_train::sampling::{contact_sheet, evaluate_pipeline, SamplingEval};
use vq_train::vqvae::reconstruction_report;

#[derive(clap::Args, Clone)]
pub struct Args {
    /// The pipeline folder (e.g. a `train-transformer` run's `pipeline/`).
    #[arg(long, required_unless_present = "vqvae")]
    model: Option<PathBuf>,
    /// Only score the reconstructions of this VQ-VAE folder (a `train-vqvae` run's `vqvae/`).
    #[arg(long, conflicts_with_all = ["model", "sheet"])]
    vqvae: Option<PathBuf>,
    /// Backend: ndarray, flex, wgpu or cuda (xtask features).
    #[arg(long, default_value = "ndarray")]
    backend: String,
    /// Prompts: held-out (combinations never trained on) or validation.
    #[arg(long, default_value = "held-out")]
    split: String,
    /// Number of images (one per prompt). 8 take ≈ 1 min on a 2-core CPU at the plan's size
    /// (230 GFLOP per image); use 200+ on a GPU.
    #[arg(long, default_value_t = 8)]
    count: usize,
    /// Prompts per pipeline call.
    #[arg(long, default_value_t = 8)]
    batch_size: usize,
    /// Guidance scale. Default: the model's sampling_defaults.json, else 3.
    #[arg(long)]
    guidance: Option<f32>,
    /// Truncation rate. Default: the model's sampling_defaults.json, else 1.
    #[arg(long)]
    truncation: Option<f32>,
    /// Sampler: posterior (diffusers'), reveal or purity (Improved VQ-Diffusion's high-quality
    /// inference; see `vq-diffusion generate --help`).
    #[arg(long, default_value = "posterior")]
    sampler: String,
    /// With --sampler purity: the weight r of the purity prior's sharpening.
    #[arg(long, default_value_t = 1.0)]
    purity_weight: f32,
    /// Seed of the torch noise.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Seed of the dataset writing the prompts.
    #[arg(long, default_value_t = 1234)]
    prompt_seed: u64,
    /// Ground-truth images reconstructed by the VQ-VAE for the ceiling (0 to skip).
    #[arg(long, default_value_t = 32)]
    reconstructions: usize,
    /// Where to write a contact sheet of the generated images (8 per row); their captions go to the
    /// same path with the extension `txt`.
    #[arg(long)]
    sheet: Option<PathBuf>,
    /// Where to write a contact sheet of the reconstructions: rows of 8 ground-truth images, each
    /// followed by a row of their VQ-VAE reconstructions.
    #[arg(long)]
    reconstruction_sheet: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<(), String> {
    crate::with_backend!(args.backend.as_str(), eval, &args)
}

fn eval<B: Backend>(args: &Args, device: B::Device) -> Result<(), String> {
    let split = match args.split.as_str() {
        "held-out" => Split::HeldOut,
        "validation" => Split::Validation,
        other => return Err(format!("--split {other}: expected held-out or validation")),
    };
    if args.reconstructions == 0 && (args.vqvae.is_some() || args.reconstruction_sheet.is_some()) {
        return Err("--reconstructions 0: --vqvae and --reconstruction-sheet need at least one reconstruction".into());
    }
    let Some(model) = &args.model else {
        let dir = args.vqvae.as_ref().expect("clap requires --model or --vqvae");
        // Stage 1 records its image side as the config's `sample_size`.
        let config = VqModelConfig::from_file(&dir.join("config.json")).map_err(|e| e.to_string())?;
        let vqvae = VqModel::<B>::from_pretrained_config(&config, dir, None, &device)
            .map_err(|e| format!("{}: {e}", dir.display()))?;
        let start = Instant::now();
        let ceiling = reconstructions(&vqvae, config.sample_size as u32, split, args, &device)?;
        println!(
            "{} reconstructions of {split:?} images: {:.1} s",
            args.reconstructions,
            start.elapsed().as_secs_f64()
        );
        print_table(&ceiling, None, "VQ reconstruction");
        print!("shapes of the reconstructed objects:\n{}", ceiling.shape_confusion_table());
        return Ok(());
    };
    let start = Instant::now();
    let pipeline = VQDiffusionPipeline::<B>::from_dir(model, None, &device).map_err(|e| e.to_string())?;
    let (h, _) = pipeline.latent_size();
    let levels = pipeline.configs.vqvae.block_out_channels.len();
    let image_size = (h << (levels - 1)) as u32;

    let recommended = &pipeline.sampling_defaults;
    let guidance_scale = args.guidance.or(recommended.guidance_scale).unwrap_or(3.0);
    let truncation_rate = args.truncation.or(recommended.truncation_rate).unwrap_or(1.0);
    let sampler = match args.sampler.as_str() {
        "posterior" => Sampler::Posterior,
        "reveal" => Sampler::Reveal(RevealOrder::Uniform),
        "purity" => Sampler::Reveal(RevealOrder::Purity { weight: args.purity_weight }),
        other => return Err(format!("--sampler {other}: expected posterior, reveal or purity")),
    };
    let eval = SamplingEval {
        split,
        count: args.count,
        batch_size: args.batch_size,
        guidance_scale,
        truncation_rate,
        sampler,
        dataset_seed: args.prompt_seed,
        seed: args.seed,
    };
    let (report, images) = evaluate_pipeline(&pipeline, &eval, image_size).map_err(|e| e.to_string())?;
    let generated_s = start.elapsed().as_secs_f64();
    let ceiling = match args.reconstructions {
        0 => None,
        _ => Some(reconstructions(&pipeline.vqvae, image_size, split, args, &device)?),
    };
    println!(
        "{} images for {:?} prompts, guidance {guidance_scale}, truncation {truncation_rate}, sampler {sampler:?}, {} steps, \
         torch seed {}: {:.1} s",
        images.len(),
        split,
        pipeline.scheduler_config.num_train_timesteps,
        args.seed,
        generated_s
    );
    print_table(&report, ceiling.as_ref(), "generated");
    print!("shapes of the generated objects:\n{}", report.shape_confusion_table());
    print!("colours of the generated objects:\n{}", report.color_confusion_table());
    if let Some(ceiling) = &ceiling {
        print!("shapes of the reconstructed objects:\n{}", ceiling.shape_confusion_table());
    }
    for (caption, _) in images.iter().take(4) {
        println!("  e.g. {caption:?}");
    }
    if let Some(path) = &args.sheet {
        let captions: String = images
            .iter()
            .enumerate()
            .map(|(i, (caption, _))| format!("{}.{}: {caption}\n", i / 8 + 1, i % 8 + 1))
            .collect();
        let captions_path = path.with_extension("txt");
        std::fs::write(&captions_path, captions).map_err(|e| format!("{}: {e}", captions_path.display()))?;
        let pictures: Vec<_> = images.into_iter().map(|(_, image)| image).collect();
        save_sheet(&pictures, path)?;
        println!("captions (row.column: caption): {}", captions_path.display());
    }
    Ok(())
}

/// The VQ-VAE's scores on `--reconstructions` ground-truth images of `split`, and their sheet
/// when `--reconstruction-sheet` asks for one.
fn reconstructions<B: Backend>(
    vqvae: &VqModel<B>,
    image_size: u32,
    split: Split,
    args: &Args,
    device: &B::Device,
) -> Result<EvalReport, String> {
    let config = DatasetConfig { image_size, mentions: MentionRates::ALWAYS, ..DatasetConfig::default() };
    let dataset = Dataset::new(config, args.prompt_seed).map_err(|e| e.to_string())?;
    let (report, pairs) =
        reconstruction_report(vqvae, &dataset, split, args.reconstructions, 32, device).map_err(|e| e.to_string())?;
    if let Some(path) = &args.reconstruction_sheet {
        // Rows of 8: originals, then their reconstructions right below (a short last row
        // padded with black).
        let (w, h) = pairs[0].0.dimensions();
        let mut rows = Vec::new();
        for chunk in pairs.chunks(8) {
            let pad = 8 - chunk.len();
            rows.extend(chunk.iter().map(|(original, _)| original.clone()));
            rows.extend(std::iter::repeat_n(image::RgbImage::new(w, h), pad));
            rows.extend(chunk.iter().map(|(_, reconstruction)| reconstruction.clone()));
            rows.extend(std::iter::repeat_n(image::RgbImage::new(w, h), pad));
        }
        save_sheet(&rows, path)?;
    }
    Ok(report)
}

fn save_sheet(images: &[image::RgbImage], path: &std::path::Path) -> Result<(), String> {
    contact_sheet(images, 8).save(path).map_err(|e| format!("{}: {e}", path.display()))?;
    println!("contact sheet: {}", path.display());
    Ok(())
}

fn print_table(report: &EvalReport, ceiling: Option<&EvalReport>, heading: &str) {
    println!("{:>11} | {:>18} | {:>18}", "attribute", heading, ceiling.map_or("", |_| "VQ reconstruction"));
    let ceiling_rows = ceiling.map(EvalReport::attributes);
    for (i, (name, tally)) in report.attributes().into_iter().enumerate() {
        let cell =
            |t: vq_train::eval::Tally| format!("{:6.2} % ({:>4}/{:<4})", 100.0 * t.accuracy(), t.correct, t.total);
        let right = ceiling_rows.map(|rows| cell(rows[i].1)).unwrap_or_default();
        println!("{name:>11} | {} | {right}", cell(tally));
    }
}
