//! `eval`: generate images for prompts the model never saw in training (held-out attribute
//! combinations, every attribute named) and score colour, shape, size, position, background
//! and count with `vq_train::eval`, next to the VQ-VAE's reconstruction ceiling. With `--vqvae`
//! instead of `--model`, only a stage-1 VQ-VAE's reconstructions are scored (its ceiling, before
//! a transformer is trained on its tokens).
//!
//! Several prompt sets in one run (`--prompt-seed 1234 --prompt-seed 777 --count 32 --count 64`)
//! are scored one by one, exactly as separate runs would score them, then together: the total
//! table is the one to compare models on (each table gives one standard error per attribute).
//!
//! `--scenes` picks what the prompts describe: `mixed` (default: the split's one- and two-object
//! scenes, every attribute named), `one`, `two-positioned` (sizes and positions named) and
//! `two-unpositioned` ("a red circle and a blue square on a white background": the model picks
//! the places). Each kind draws its own prompts from each prompt seed and is scored apart — two
//! objects are harder to draw, and without positions extra copies are the usual failure, which
//! the `count` row (exactly as many objects detected as named) catches. With several kinds a last
//! table gives one row per kind.

use std::path::{Path, PathBuf};
use std::time::Instant;

use vq_kernels::KernelBackend;
use vq_model::{VQModel, VQModelConfig};
use vq_pipeline::{RevealOrder, Sampler, VQDiffusionPipeline};
use vq_train::data::{Dataset, DatasetConfig, HeldOut, MentionRates, Split};
use vq_train::eval::EvalReport;
use vq_train::sampling::{contact_sheet, evaluate_pipeline, PromptSet, SamplingEval};
use vq_train::vqvae::reconstruction_report;

use crate::args::BackendArgs;
use crate::backend::{dispatch, Job};
use crate::error::CliError;

/// `vq-train eval`.
#[derive(Debug, Clone, clap::Args)]
pub struct EvalArgs {
    /// The pipeline folder (e.g. a `transformer` run's `pipeline/`).
    #[arg(long, value_name = "DIR", required_unless_present = "vqvae")]
    model: Option<PathBuf>,
    /// Only score the reconstructions of this VQ-VAE folder (a `vqvae` run's `vqvae/`).
    #[arg(long, value_name = "DIR", conflicts_with_all = ["model", "sheet"])]
    vqvae: Option<PathBuf>,
    /// The compute backend.
    #[command(flatten)]
    backend: BackendArgs,
    /// Prompts: held-out (combinations never trained on) or validation.
    #[arg(long, value_enum, default_value_t = SplitArg::HeldOut)]
    split: SplitArg,
    /// Number of images (one per prompt), default 8. 8 take ≈ 1 min on a 2-core CPU at the plan's
    /// size (230 GFLOP per image); use 200+ on a GPU. Repeatable: one per --prompt-seed, or one for
    /// all of them.
    #[arg(long)]
    count: Vec<usize>,
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
    #[arg(long, value_enum, default_value_t = SamplerArg::Posterior)]
    sampler: SamplerArg,
    /// With --sampler purity: the weight r of the purity prior's sharpening.
    #[arg(long, default_value_t = 1.0)]
    purity_weight: f32,
    /// Seed of the torch noise.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Seed of the dataset writing the prompts, default 1234. Repeatable: each seed is one prompt
    /// set, scored alone and then with the others (the ceiling reads the first).
    #[arg(long)]
    prompt_seed: Vec<u64>,
    /// What the prompts describe, scored apart: mixed (one or two objects, every attribute named),
    /// one, two-positioned, two-unpositioned; several with commas (`--scenes
    /// one,two-positioned,two-unpositioned`). Each kind gets --count prompts per --prompt-seed.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "mixed")]
    scenes: Vec<ScenesArg>,
    /// Ground-truth images reconstructed by the VQ-VAE for the ceiling (0 to skip).
    #[arg(long, default_value_t = 32)]
    reconstructions: usize,
    /// Where to write a contact sheet of the generated images (8 per row); their captions go to the
    /// same path with the extension `txt`. With several prompt seeds, one sheet per set, the seed
    /// added to the file name (`sheet-777.png`); with several --scenes, the kind too
    /// (`sheet-two-unpositioned-777.png`).
    #[arg(long)]
    sheet: Option<PathBuf>,
    /// Where to write a contact sheet of the reconstructions: rows of 8 ground-truth images, each
    /// followed by a row of their VQ-VAE reconstructions.
    #[arg(long)]
    reconstruction_sheet: Option<PathBuf>,
}

/// `--split`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum SplitArg {
    /// Attribute combinations never shown in training.
    HeldOut,
    /// Combinations seen in training, on other scenes.
    Validation,
}

/// `--scenes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ScenesArg {
    /// One or two objects (the split's own mix), every attribute named.
    Mixed,
    /// One object, every attribute named.
    One,
    /// Two objects, sizes, positions and background named.
    TwoPositioned,
    /// Two objects, colours, shapes and background named: no sizes, no positions.
    TwoUnpositioned,
}

impl From<ScenesArg> for PromptSet {
    fn from(scenes: ScenesArg) -> Self {
        match scenes {
            ScenesArg::Mixed => PromptSet::Mixed,
            ScenesArg::One => PromptSet::One,
            ScenesArg::TwoPositioned => PromptSet::TwoPositioned,
            ScenesArg::TwoUnpositioned => PromptSet::TwoUnpositioned,
        }
    }
}

/// `--sampler`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum SamplerArg {
    /// diffusers' posterior sampling.
    Posterior,
    /// Reveal masked pixels in random order.
    Reveal,
    /// Reveal the purest pixels first (the purity prior).
    Purity,
}

/// Scores on `--backend`: tables on stdout.
pub fn eval(args: &EvalArgs) -> Result<(), CliError> {
    dispatch(args.backend.backend, Eval(args))
}

struct Eval<'a>(&'a EvalArgs);

impl Job for Eval<'_> {
    fn run<B: KernelBackend>(self, device: B::Device) -> Result<(), CliError> {
        score::<B>(self.0, device)
    }
}

/// `--prompt-seed` and `--count` when not given.
const DEFAULT_PROMPT_SEED: u64 = 1234;
const DEFAULT_COUNT: usize = 8;

fn score<B: KernelBackend>(args: &EvalArgs, device: B::Device) -> Result<(), CliError> {
    let split = match args.split {
        SplitArg::HeldOut => Split::HeldOut,
        SplitArg::Validation => Split::Validation,
    };
    if args.reconstructions == 0 && (args.vqvae.is_some() || args.reconstruction_sheet.is_some()) {
        return Err(CliError::Usage(
            "--reconstructions 0: --vqvae and --reconstruction-sheet need at least one reconstruction".into(),
        ));
    }
    if args.vqvae.is_some() && (!args.count.is_empty() || args.prompt_seed.len() > 1) {
        return Err(CliError::Usage(
            "--vqvae scores the reconstructions of one prompt set: give its size with --reconstructions N \
             and at most one --prompt-seed (--count sets the number of generated images)"
                .into(),
        ));
    }
    let sets = prompt_sets(args).map_err(CliError::Usage)?;
    let Some(model) = &args.model else {
        let dir = args.vqvae.as_ref().expect("clap requires --model or --vqvae");
        // Stage 1 records its image side as the config's `sample_size`.
        let config = VQModelConfig::from_file(&dir.join("config.json")).map_err(failure)?;
        let vqvae = VQModel::<B>::from_config(&config, dir, None, &device)
            .map_err(|e| CliError::Failure(format!("{}: {e}", dir.display())))?;
        let start = Instant::now();
        let ceiling = reconstructions(&vqvae, config.sample_size as u32, split, sets[0].0, args, &device)?;
        println!(
            "{} reconstructions of {split:?} images: {:.1} s",
            args.reconstructions,
            start.elapsed().as_secs_f64()
        );
        print_table(&ceiling, None, "VQ reconstruction");
        print_ceiling_breakdown(&ceiling, split);
        return Ok(());
    };
    let pipeline = VQDiffusionPipeline::<B>::from_dir(model, None, &device).map_err(failure)?;
    let (h, _) = pipeline.latent_size();
    let levels = pipeline.configs.vqvae.block_out_channels.len();
    let image_size = (h << (levels - 1)) as u32;

    let recommended = &pipeline.sampling_defaults;
    let guidance_scale = args.guidance.or(recommended.guidance_scale).unwrap_or(3.0);
    let truncation_rate = args.truncation.or(recommended.truncation_rate).unwrap_or(1.0);
    let sampler = match args.sampler {
        SamplerArg::Posterior => Sampler::Posterior,
        SamplerArg::Reveal => Sampler::Reveal(RevealOrder::Uniform),
        SamplerArg::Purity => Sampler::Reveal(RevealOrder::Purity { weight: args.purity_weight }),
    };
    let ceiling = match args.reconstructions {
        0 => None,
        _ => Some(reconstructions(&pipeline.vqvae, image_size, split, sets[0].0, args, &device)?),
    };
    // The ceiling's own breakdown once; each prompt set's table shows its figures beside the set's.
    if let Some(ceiling) = &ceiling {
        println!("{} reconstructions of {split:?} images (the ceiling):", args.reconstructions);
        print_ceiling_breakdown(ceiling, split);
    }
    let mut kinds: Vec<PromptSet> = Vec::new();
    for scenes in &args.scenes {
        let set = PromptSet::from(*scenes);
        if !kinds.contains(&set) {
            kinds.push(set);
        }
    }
    let mut totals = Vec::with_capacity(kinds.len());
    for &kind in &kinds {
        let mut total = EvalReport::default();
        for &(prompt_seed, count) in &sets {
            let start = Instant::now();
            let eval = SamplingEval {
                split,
                count,
                batch_size: args.batch_size,
                guidance_scale,
                truncation_rate,
                sampler,
                prompts: kind,
                dataset_seed: prompt_seed,
                seed: args.seed,
            };
            let (report, images) = evaluate_pipeline(&pipeline, &eval, image_size).map_err(failure)?;
            println!(
                "{} images for {:?} prompts ({}; prompt seed {prompt_seed}), guidance {guidance_scale}, \
                 truncation {truncation_rate}, sampler {sampler:?}, {} steps, torch seed {}: {:.1} s",
                images.len(),
                split,
                kind.label(),
                pipeline.scheduler_config.num_train_timesteps,
                args.seed,
                start.elapsed().as_secs_f64()
            );
            print_report(&report, ceiling.as_ref(), split);
            for (caption, _) in images.iter().take(4) {
                println!("  e.g. {caption:?}");
            }
            if let Some(path) = &args.sheet {
                save_captioned_sheet(images, &sheet_path(path, kind, kinds.len(), prompt_seed, sets.len()))?;
            }
            total.merge(&report);
        }
        if sets.len() > 1 {
            println!("all {} prompt sets of {} ({} images):", sets.len(), kind.label(), total.count.total);
            print_report(&total, ceiling.as_ref(), split);
        }
        totals.push((kind, total));
    }
    if totals.len() > 1 {
        print!("{}", kinds_table(&totals));
    }
    Ok(())
}

/// The prompt sets of `args`: (prompt seed, image count), `--count` given once for all seeds or
/// once per seed.
fn prompt_sets(args: &EvalArgs) -> Result<Vec<(u64, usize)>, String> {
    let seeds = match args.prompt_seed.as_slice() {
        [] => vec![DEFAULT_PROMPT_SEED],
        seeds => seeds.to_vec(),
    };
    let counts = match args.count.as_slice() {
        [] => vec![DEFAULT_COUNT; seeds.len()],
        [count] => vec![*count; seeds.len()],
        counts if counts.len() == seeds.len() => counts.to_vec(),
        counts => {
            return Err(format!(
                "{} --count values for {} --prompt-seed values: give one count for all, or one per prompt seed",
                counts.len(),
                seeds.len()
            ))
        }
    };
    if counts.contains(&0) {
        return Err("--count 0: every prompt set needs at least one image".into());
    }
    Ok(seeds.into_iter().zip(counts).collect())
}

/// The contact sheet of one prompt set: `path`, with the kind added when several are scored and
/// the seed added when several are (`sheet-two-unpositioned-777.png`).
fn sheet_path(path: &Path, kind: PromptSet, kinds: usize, seed: u64, seeds: usize) -> PathBuf {
    let path = match kinds {
        1 => path.to_path_buf(),
        _ => suffixed_path(path, scenes_name(kind)),
    };
    match seeds {
        1 => path,
        _ => seeded_path(&path, seed),
    }
}

/// The `--scenes` value of a kind.
fn scenes_name(kind: PromptSet) -> &'static str {
    match kind {
        PromptSet::Mixed => "mixed",
        PromptSet::One => "one",
        PromptSet::TwoPositioned => "two-positioned",
        PromptSet::TwoUnpositioned => "two-unpositioned",
    }
}

/// `path` with `-{suffix}` added to its file stem.
fn suffixed_path(path: &Path, suffix: &str) -> PathBuf {
    let stem = path.file_stem().map_or_else(|| "sheet".into(), |stem| stem.to_string_lossy().into_owned());
    let extension = path.extension().map(|e| format!(".{}", e.to_string_lossy())).unwrap_or_default();
    path.with_file_name(format!("{stem}-{suffix}{extension}"))
}

/// One row per kind of scene: every attribute's accuracy and its count of judgements ("–" where
/// the prompts name no such attribute).
fn kinds_table(totals: &[(PromptSet, EvalReport)]) -> String {
    let names = totals[0].1.attributes().map(|(name, _)| name);
    let mut text = format!("by kind of scene:\n{:>42} |", "scenes");
    for name in names {
        text += &format!(" {name:>17} |");
    }
    text += "\n";
    for (kind, report) in totals {
        text += &format!("{:>42} |", kind.label());
        for (_, tally) in report.attributes() {
            text += &match tally.total {
                0 => format!(" {:>17} |", "–"),
                _ => format!(" {:6.1} % ({:>3}/{:<3}) |", 100.0 * tally.accuracy(), tally.correct, tally.total),
            };
        }
        text += "\n";
    }
    text
}

/// `path` with `-{seed}` added to its file stem (`sheet.png` → `sheet-777.png`).
fn seeded_path(path: &Path, seed: u64) -> PathBuf {
    suffixed_path(path, &seed.to_string())
}

/// A report's table (beside the ceiling's), its shape and colour confusion tables and, for held-out
/// prompts, its accuracy by held-out combination (the ceiling's are printed once, before the sets).
fn print_report(report: &EvalReport, ceiling: Option<&EvalReport>, split: Split) {
    print_table(report, ceiling, "generated");
    print!("shapes of the generated objects:\n{}", report.shape_confusion_table());
    print!("colours of the generated objects:\n{}", report.color_confusion_table());
    print_held_out(report, split, "generated");
}

/// The reconstructions' shape confusion table and, for held-out images, their accuracy by held-out
/// combination.
fn print_ceiling_breakdown(ceiling: &EvalReport, split: Split) {
    print!("shapes of the reconstructed objects:\n{}", ceiling.shape_confusion_table());
    print_held_out(ceiling, split, "reconstructed");
}

/// Shape and colour accuracy by held-out combination (the dataset's default combinations, the
/// ones the prompts are written from), for the held-out split only.
fn print_held_out(report: &EvalReport, split: Split, what: &str) {
    if split == Split::HeldOut {
        print!("{what} objects by held-out combination:\n{}", report.held_out_table(&HeldOut::default()));
    }
}

/// The generated images' contact sheet at `path` and their captions beside it (`.txt`).
fn save_captioned_sheet(images: Vec<(String, image::RgbImage)>, path: &Path) -> Result<(), CliError> {
    let captions: String = images
        .iter()
        .enumerate()
        .map(|(i, (caption, _))| format!("{}.{}: {caption}\n", i / 8 + 1, i % 8 + 1))
        .collect();
    let captions_path = path.with_extension("txt");
    std::fs::write(&captions_path, captions)
        .map_err(|e| CliError::Failure(format!("{}: {e}", captions_path.display())))?;
    let pictures: Vec<_> = images.into_iter().map(|(_, image)| image).collect();
    save_sheet(&pictures, path)?;
    println!("captions (row.column: caption): {}", captions_path.display());
    Ok(())
}

/// The VQ-VAE's scores on `--reconstructions` ground-truth images of `split`, and their sheet
/// when `--reconstruction-sheet` asks for one.
fn reconstructions<B: KernelBackend>(
    vqvae: &VQModel<B>,
    image_size: u32,
    split: Split,
    prompt_seed: u64,
    args: &EvalArgs,
    device: &B::Device,
) -> Result<EvalReport, CliError> {
    let config = DatasetConfig { image_size, mentions: MentionRates::ALWAYS, ..DatasetConfig::default() };
    let dataset = Dataset::new(config, prompt_seed)?;
    let (report, pairs) = reconstruction_report(vqvae, &dataset, split, args.reconstructions, 32, device)?;
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

fn save_sheet(images: &[image::RgbImage], path: &Path) -> Result<(), CliError> {
    contact_sheet(images, 8).save(path).map_err(|e| CliError::Failure(format!("{}: {e}", path.display())))?;
    println!("contact sheet: {}", path.display());
    Ok(())
}

/// One row per attribute: accuracy, counts and one standard error, beside the ceiling's.
fn print_table(report: &EvalReport, ceiling: Option<&EvalReport>, heading: &str) {
    println!("{:>11} | {:>27} | {:>27}", "attribute", heading, ceiling.map_or("", |_| "VQ reconstruction"));
    let ceiling_rows = ceiling.map(EvalReport::attributes);
    for (i, (name, tally)) in report.attributes().into_iter().enumerate() {
        // "–" where the prompts name no such attribute (no size or position without them).
        let cell = |t: vq_train::eval::Tally| match t.total {
            0 => format!("{:>27}", "–"),
            _ => {
                let (accuracy, error) = (100.0 * t.accuracy(), 100.0 * t.standard_error());
                format!("{accuracy:6.2} % ± {error:4.1} ({:>4}/{:<4})", t.correct, t.total)
            }
        };
        let right = ceiling_rows.map(|rows| cell(rows[i].1)).unwrap_or_default();
        println!("{name:>11} | {} | {right}", cell(tally));
    }
}

/// Any error as a [`CliError::Failure`].
fn failure(error: impl std::fmt::Display) -> CliError {
    CliError::Failure(error.to_string())
}
