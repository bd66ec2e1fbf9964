//! `edit-eval`: editing and fast sampling on a trained shapes pipeline, judged by
//! `vq_train::eval` (the evaluator of `xtask eval`).
//!
//! * `inpaint` — generate a picture per prompt, mask the grid cell of its first object, and
//!   inpaint that cell with a prompt that names another object there (another shape and colour,
//!   the same size and place). Scored: the new object's colour, shape, size and position, the
//!   other objects, and the kept latent pixels (which must equal the encoded ones exactly).
//! * `variations` — the same pictures varied at several strengths, once with their own prompt
//!   and once with the first object recoloured: how far the result moves from the input and how
//!   well it follows the prompt.
//! * `fast` — held-out prompts drawn with fewer network calls: diffusers' truncated chain, the
//!   strided chain with the original's one-step jump and with the exact jump, and the reveal
//!   and purity samplers on either chain; accuracy and time per image.

use std::path::{Path, PathBuf};
use std::time::Instant;

use image::{GrayImage, Luma, RgbImage};
use vq_pipeline::KernelBackend;
use vq_pipeline::{GenerateRequest, KeptRegion, NoiseSource, RevealOrder, Sampler, SkipPosterior, VQDiffusionPipeline};
use vq_train::data::{Color, Dataset, DatasetConfig, Grid, HeldOut, MentionRates, ObjectPrompt, Prompt, Shape, Split};
use vq_train::eval::{evaluate, EvalReport, ImageScore, Tally};
use vq_train::sampling::contact_sheet;

#[derive(clap::Args, Clone)]
pub struct Args {
    /// The pipeline folder (e.g. models/shapes).
    #[arg(long, default_value = "models/shapes")]
    model: PathBuf,
    /// Backend: ndarray, flex, wgpu, wgpu-gl or cuda (xtask features).
    #[arg(long, default_value = "ndarray")]
    backend: String,
    /// Tables to compute: inpaint, variations, fast (repeatable; default all three).
    #[arg(long)]
    table: Vec<String>,
    /// Pictures per table (prompts of the validation split for inpaint and variations, of the
    /// held-out split for fast).
    #[arg(long, default_value_t = 32)]
    count: usize,
    /// Prompts per pipeline call.
    #[arg(long, default_value_t = 8)]
    batch_size: usize,
    /// Seed of the dataset writing the prompts.
    #[arg(long, default_value_t = 1234)]
    prompt_seed: u64,
    /// Seed of the torch noise (batch i uses seed + i).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Where to write a figure of the first inpaintings (the default kept region): rows of
    /// input, mask, result.
    #[arg(long)]
    figure: Option<PathBuf>,
    /// Number of inpaintings in the figure.
    #[arg(long, default_value_t = 4)]
    figure_count: usize,
    /// Timesteps skipped between network calls in the inpaint table's inpaintings (0: all T).
    #[arg(long, default_value_t = 0)]
    inpaint_skip: usize,
}

pub fn run(args: Args) -> Result<(), String> {
    crate::with_backend!(args.backend.as_str(), edit_eval, &args)
}

/// The sampling settings shared by every table: the model's recommended guidance and truncation.
struct Setup<'a, B: KernelBackend> {
    pipeline: &'a VQDiffusionPipeline<B>,
    guidance_scale: f32,
    truncation_rate: f32,
    args: &'a Args,
}

/// The pictures, their tokens and the seconds spent.
type Generated = (Vec<RgbImage>, Vec<Vec<i64>>, f64);

impl<B: KernelBackend> Setup<'_, B> {
    /// A request for `prompts` with the model's settings, all T steps, torch noise for batch `i`.
    fn request(&self, prompts: &[String], batch: usize) -> GenerateRequest {
        GenerateRequest::new(prompts.to_vec())
            .with_steps(self.pipeline.scheduler_config.num_train_timesteps)
            .with_guidance_scale(self.guidance_scale)
            .with_truncation_rate(self.truncation_rate)
            .with_noise(NoiseSource::Torch { seed: self.args.seed + batch as u64 })
    }

    /// Runs `make(chunk, batch index)` over the prompts in batches; returns pictures and tokens in
    /// prompt order and the seconds spent generating.
    fn generate(
        &self,
        count: usize,
        make: impl Fn(std::ops::Range<usize>, usize) -> GenerateRequest,
    ) -> Result<Generated, String> {
        let (mut images, mut tokens, mut seconds) = (Vec::new(), Vec::new(), 0.0);
        let size = self.args.batch_size.max(1);
        for (batch, start) in (0..count).step_by(size).enumerate() {
            let request = make(start..(start + size).min(count), batch);
            let clock = Instant::now();
            let generation = self.pipeline.generate(&request).map_err(|e| e.to_string())?;
            seconds += clock.elapsed().as_secs_f64();
            images.extend(generation.rgb8());
            tokens.extend(generation.token_ids());
        }
        Ok((images, tokens, seconds))
    }
}

fn edit_eval<B: KernelBackend>(args: &Args, device: B::Device) -> Result<(), String> {
    let pipeline = VQDiffusionPipeline::<B>::from_dir(&args.model, None, &device).map_err(|e| e.to_string())?;
    let recommended = pipeline.sampling_defaults;
    let setup = Setup {
        pipeline: &pipeline,
        guidance_scale: recommended.guidance_scale.unwrap_or(3.0),
        truncation_rate: recommended.truncation_rate.unwrap_or(1.0),
        args,
    };
    println!(
        "{}: guidance {}, truncation {}, {} steps, torch seed {}, prompt seed {}, {} pictures per table",
        args.model.display(),
        setup.guidance_scale,
        setup.truncation_rate,
        pipeline.scheduler_config.num_train_timesteps,
        args.seed,
        args.prompt_seed,
        args.count
    );
    let tables = match args.table.as_slice() {
        [] => vec!["inpaint".to_string(), "variations".into(), "fast".into()],
        tables => tables.to_vec(),
    };
    for table in &tables {
        match table.as_str() {
            "inpaint" => inpaint(&setup)?,
            "variations" => variations(&setup)?,
            "fast" => fast(&setup)?,
            other => return Err(format!("--table {other}: expected inpaint, variations or fast")),
        }
    }
    Ok(())
}

/// Prompts of `split` that name every attribute.
fn prompts(setup: &Setup<'_, impl KernelBackend>, split: Split) -> Result<Vec<(String, Prompt)>, String> {
    let (width, _) = setup.pipeline.image_size();
    let config = DatasetConfig { image_size: width, mentions: MentionRates::ALWAYS, ..DatasetConfig::default() };
    let dataset = Dataset::new(config, setup.args.prompt_seed).map_err(|e| e.to_string())?;
    Ok((0..setup.args.count as u64)
        .map(|i| {
            let sample = dataset.sample(split, i);
            (sample.caption, sample.prompt)
        })
        .collect())
}

/// The first object of `prompt` replaced by another shape and colour, chosen by `i`: the colour
/// contrasts with the background, differs from every object's, and is not held out with the shape.
fn replaced(prompt: &Prompt, i: usize) -> Prompt {
    let old = prompt.objects[0];
    let shape_index = Shape::ALL.iter().position(|&s| s == old.shape).expect("a known shape");
    let shape = Shape::ALL[(shape_index + 1 + i % 3) % 4];
    let held_out = HeldOut::default();
    let color = (0..8)
        .map(|k| Color::ALL[(i + k) % 8])
        .find(|&c| {
            prompt.objects.iter().all(|o| o.color != c)
                && prompt.background.is_none_or(|bg| bg.contrasts_with(c))
                && !held_out.color_shape.contains(&(c, shape))
        })
        .expect("some colour fits");
    let mut new = prompt.clone();
    new.objects[0] = ObjectPrompt { shape, color, ..old };
    new
}

/// The first object of `prompt` in another colour (contrasting, not held out, unused).
fn recoloured(prompt: &Prompt, i: usize) -> Prompt {
    let old = prompt.objects[0];
    let held_out = HeldOut::default();
    let color = (1..8)
        .map(|k| Color::ALL[(i + k) % 8])
        .find(|&c| {
            prompt.objects.iter().all(|o| o.color != c)
                && prompt.background.is_none_or(|bg| bg.contrasts_with(c))
                && !held_out.color_shape.contains(&(c, old.shape))
        })
        .expect("some colour fits");
    let mut new = prompt.clone();
    new.objects[0].color = color;
    new
}

/// A white square over the grid cell of the first object of `prompt` on black.
fn cell_mask(prompt: &Prompt, size: u32) -> GrayImage {
    let position = prompt.objects[0].position.expect("prompts name every position");
    let (x0, y0, x1, y1) = Grid { image_size: size }.cell_bounds(position);
    GrayImage::from_fn(size, size, |x, y| {
        let (x, y) = (f64::from(x) + 0.5, f64::from(y) + 0.5);
        Luma([if x >= x0 && x < x1 && y >= y0 && y < y1 { 255 } else { 0 }])
    })
}

fn mean_abs_difference(a: &RgbImage, b: &RgbImage, inside: impl Fn(u32, u32) -> bool) -> f64 {
    let (mut sum, mut n) = (0.0, 0usize);
    for (x, y, p) in a.enumerate_pixels() {
        if inside(x, y) {
            let q = b.get_pixel(x, y);
            sum += p.0.iter().zip(q.0).map(|(&u, v)| f64::from(u.abs_diff(v))).sum::<f64>();
            n += 3;
        }
    }
    sum / n.max(1) as f64
}

fn percent(tally: Tally) -> String {
    format!("{:.1} % ({}/{})", 100.0 * tally.accuracy(), tally.correct, tally.total)
}

fn inpaint<B: KernelBackend>(setup: &Setup<'_, B>) -> Result<(), String> {
    let pipeline = setup.pipeline;
    let prompts = prompts(setup, Split::Validation)?;
    let captions: Vec<String> = prompts.iter().map(|(c, _)| c.clone()).collect();
    let (originals, _, _) = setup.generate(prompts.len(), |range, b| setup.request(&captions[range], b))?;
    let (size, _) = pipeline.image_size();
    let edited: Vec<Prompt> = prompts.iter().enumerate().map(|(i, (_, p))| replaced(p, i)).collect();
    let edited_captions: Vec<String> = edited.iter().map(Prompt::caption).collect();
    let masks: Vec<GrayImage> = prompts.iter().map(|(_, p)| cell_mask(p, size)).collect();
    let latent_masks: Vec<Vec<bool>> =
        masks.iter().map(|m| pipeline.latent_mask(m)).collect::<Result<_, _>>().map_err(|e| e.to_string())?;
    let init = pipeline.encode_images(&originals).map_err(|e| e.to_string())?;

    println!(
        "\ninpainting {} pictures (validation prompts): the first object's cell redrawn as another object",
        prompts.len()
    );
    println!("e.g. {:?} → {:?}; skip {}", captions[0], edited_captions[0], setup.args.inpaint_skip);
    let heading = "| how | new object: colour | shape | size | position | all four | other objects right | kept tokens changed | kept pixels: mean abs. diff. | s / picture |";
    println!("{heading}\n|---|---|---|---|---|---|---|---|---|---|");
    let mut figure_rows = Vec::new();
    for (name, kept_region) in [
        ("inpainting, kept tokens as encoded", KeptRegion::AsEncoded),
        ("inpainting, kept tokens re-noised to t", KeptRegion::Renoised),
    ] {
        let inpaint_request = |range: std::ops::Range<usize>, b: usize| {
            setup
                .request(&edited_captions[range.clone()], b)
                .with_init_tokens(init[range.clone()].to_vec())
                .with_mask(latent_masks[range].to_vec())
                .with_skip(setup.args.inpaint_skip)
                .with_kept_region(kept_region)
        };
        let (images, tokens, seconds) = setup.generate(prompts.len(), inpaint_request)?;
        let changed: usize = (0..prompts.len())
            .map(|i| (0..init[i].len()).filter(|&p| !latent_masks[i][p] && tokens[i][p] != init[i][p]).count())
            .sum();
        let kept_pixels = mean_over(&images, &originals, &masks, false);
        print_inpaint_row(name, &images, &edited, changed, kept_pixels, seconds);
        if kept_region == KeptRegion::default() {
            figure_rows = (0..setup.args.figure_count.min(prompts.len()))
                .map(|i| (originals[i].clone(), masks[i].clone(), images[i].clone()))
                .collect();
        }
    }
    let (scratch, _, seconds) = setup.generate(prompts.len(), |range, b| setup.request(&edited_captions[range], b))?;
    let all_pixels = mean_over(&scratch, &originals, &masks, false);
    print_inpaint_row(
        "text-to-image of the edited prompt (for comparison)",
        &scratch,
        &edited,
        usize::MAX,
        all_pixels,
        seconds,
    );
    if let Some(path) = &setup.args.figure {
        save_figure(&figure_rows, path)?;
        let captions: String = (0..figure_rows.len())
            .map(|i| format!("{}: {:?} → {:?}\n", i + 1, captions[i], edited_captions[i]))
            .collect();
        let text = path.with_extension("txt");
        std::fs::write(&text, captions).map_err(|e| format!("{}: {e}", text.display()))?;
        println!("figure: {} (captions: {})", path.display(), text.display());
    }
    Ok(())
}

/// Mean absolute pixel difference between `a` and `b` outside (`inside_mask = false`) or inside
/// the white part of each mask, averaged over the pictures.
fn mean_over(a: &[RgbImage], b: &[RgbImage], masks: &[GrayImage], inside_mask: bool) -> f64 {
    let total: f64 = (0..a.len())
        .map(|i| mean_abs_difference(&a[i], &b[i], |x, y| (masks[i].get_pixel(x, y).0[0] >= 128) == inside_mask))
        .sum();
    total / a.len() as f64
}

fn print_inpaint_row(
    name: &str,
    images: &[RgbImage],
    prompts: &[Prompt],
    changed: usize,
    kept_pixels: f64,
    seconds: f64,
) {
    let scores: Vec<ImageScore> = images.iter().zip(prompts).map(|(image, prompt)| evaluate(image, prompt)).collect();
    let first = |f: &dyn Fn(&vq_train::eval::ObjectScore) -> bool| -> Tally {
        scores.iter().map(|s| f(&s.objects[0])).collect()
    };
    let others: Tally = scores.iter().flat_map(|s| s.objects[1..].iter().map(|o| o.all_correct())).collect();
    let changed = match changed {
        usize::MAX => "—".to_string(),
        n => n.to_string(),
    };
    println!(
        "| {name} | {} | {} | {} | {} | {} | {} | {changed} | {kept_pixels:.2} | {:.2} |",
        percent(first(&|o| o.color())),
        percent(first(&|o| o.shape())),
        percent(first(&|o| o.size == Some(true))),
        percent(first(&|o| o.position == Some(true))),
        percent(first(&|o| o.all_correct())),
        percent(others),
        seconds / images.len() as f64
    );
}

/// Rows of (input, mask, result) side by side, at twice the pictures' size.
fn save_figure(rows: &[(RgbImage, GrayImage, RgbImage)], path: &Path) -> Result<(), String> {
    let tiles: Vec<RgbImage> = rows
        .iter()
        .flat_map(|(input, mask, result)| {
            let mask = RgbImage::from_fn(mask.width(), mask.height(), |x, y| {
                let v = mask.get_pixel(x, y).0[0];
                image::Rgb([v, v, v])
            });
            [input.clone(), mask, result.clone()]
        })
        .collect();
    // Twice the size, nearest neighbour: the model's pictures are 64 × 64.
    let sheet = contact_sheet(&tiles, 3);
    let (w, h) = sheet.dimensions();
    image::imageops::resize(&sheet, 2 * w, 2 * h, image::imageops::FilterType::Nearest)
        .save(path)
        .map_err(|e| format!("{}: {e}", path.display()))
}

fn variations<B: KernelBackend>(setup: &Setup<'_, B>) -> Result<(), String> {
    let pipeline = setup.pipeline;
    let prompts = prompts(setup, Split::Validation)?;
    let captions: Vec<String> = prompts.iter().map(|(c, _)| c.clone()).collect();
    let (originals, _, _) = setup.generate(prompts.len(), |range, b| setup.request(&captions[range], b))?;
    let init = pipeline.encode_images(&originals).map_err(|e| e.to_string())?;
    let recoloured: Vec<Prompt> = prompts.iter().enumerate().map(|(i, (_, p))| recoloured(p, i)).collect();
    let recoloured_captions: Vec<String> = recoloured.iter().map(Prompt::caption).collect();
    let own: Vec<Prompt> = prompts.iter().map(|(_, p)| p.clone()).collect();
    let t = pipeline.scheduler_config.num_train_timesteps;
    println!(
        "\nimage variations of {} pictures (validation prompts), by strength s (start at ⌊s·T⌋ − 1 of T = {t})",
        prompts.len()
    );
    println!(
        "| s | first call at t | prompt | tokens kept | mean abs. pixel diff. to the input | every object right | first object: colour | shape | s / picture |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for strength in [0.1f32, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0] {
        for (label, named, texts) in [("own", &own, &captions), ("recoloured", &recoloured, &recoloured_captions)] {
            // Other noise than the originals': at strength 1 the own prompt would redraw them exactly.
            let request = |range: std::ops::Range<usize>, b: usize| {
                setup
                    .request(&texts[range.clone()], b)
                    .with_noise(NoiseSource::Torch { seed: setup.args.seed + 1000 + b as u64 })
                    .with_init_tokens(init[range].to_vec())
                    .with_strength(strength)
            };
            let first_call = request(0..1, 0).timesteps(t)[0];
            let (images, tokens, seconds) = setup.generate(prompts.len(), request)?;
            let kept: usize =
                tokens.iter().zip(&init).map(|(a, b)| a.iter().zip(b).filter(|(x, y)| x == y).count()).sum();
            let total: usize = init.iter().map(Vec::len).sum();
            let distance: f64 =
                images.iter().zip(&originals).map(|(a, b)| mean_abs_difference(a, b, |_, _| true)).sum::<f64>()
                    / images.len() as f64;
            let scores: Vec<ImageScore> =
                images.iter().zip(named.iter()).map(|(image, p)| evaluate(image, p)).collect();
            let all: Tally = scores.iter().map(|s| s.objects.iter().all(|o| o.all_correct())).collect();
            let color: Tally = scores.iter().map(|s| s.objects[0].color()).collect();
            let shape: Tally = scores.iter().map(|s| s.objects[0].shape()).collect();
            println!(
                "| {strength} | {first_call} | {label} | {:.1} % | {distance:.1} | {} | {} | {} | {:.2} |",
                100.0 * kept as f64 / total as f64,
                percent(all),
                percent(color),
                percent(shape),
                seconds / images.len() as f64
            );
        }
    }
    Ok(())
}

/// One fast-sampling configuration: name, sampler, steps, skip, jump.
type FastConfig = (&'static str, Sampler, usize, usize, SkipPosterior);

fn fast<B: KernelBackend>(setup: &Setup<'_, B>) -> Result<(), String> {
    let t = setup.pipeline.scheduler_config.num_train_timesteps;
    let prompts = prompts(setup, Split::HeldOut)?;
    let captions: Vec<String> = prompts.iter().map(|(c, _)| c.clone()).collect();
    let reveal = Sampler::Reveal(RevealOrder::Uniform);
    let purity = Sampler::Reveal(RevealOrder::Purity { weight: 1.0 });
    let (one, exact) = (SkipPosterior::OneStep, SkipPosterior::Exact);
    let mut configs: Vec<FastConfig> = Vec::new();
    for (name, sampler) in [("posterior", Sampler::Posterior), ("reveal", reveal), ("purity", purity)] {
        for steps in [t, t / 2, t.div_ceil(3), t / 5] {
            configs.push((name, sampler, steps, 0, one));
        }
        for skip in [1, 2, 5] {
            configs.push((name, sampler, t, skip, one));
            if sampler == Sampler::Posterior {
                configs.push((name, sampler, t, skip, exact));
            }
        }
    }
    println!("\nfast sampling: {} held-out prompts per row", prompts.len());
    println!(
        "| sampler | chain | network calls | colour | shape | size | position | count | whole picture | s / picture |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for (name, sampler, steps, skip, posterior) in configs {
        let make = |range: std::ops::Range<usize>, b: usize| {
            setup
                .request(&captions[range], b)
                .with_sampler(sampler)
                .with_steps(steps)
                .with_skip(skip)
                .with_skip_posterior(posterior)
        };
        let calls = make(0..1, 0).network_calls(t);
        let chain = match (skip, sampler, posterior) {
            (0, _, _) if steps == t => "every timestep".to_string(),
            (0, _, _) => format!("truncated: {} … 0", steps - 1),
            (k, Sampler::Reveal(_), _) => format!("skip {k}"),
            (k, _, SkipPosterior::OneStep) => format!("skip {k}, one-step jump"),
            (k, _, SkipPosterior::Exact) => format!("skip {k}, exact jump"),
        };
        let (images, _, seconds) = setup.generate(prompts.len(), make)?;
        let mut report = EvalReport::default();
        for (image, (_, prompt)) in images.iter().zip(&prompts) {
            report.add(&evaluate(image, prompt));
        }
        println!(
            "| {name} | {chain} | {calls} | {} | {} | {} | {} | {} | {} | {:.2} |",
            percent(report.color()),
            percent(report.shape()),
            percent(report.size()),
            percent(report.position()),
            percent(report.count),
            percent(report.image),
            seconds / images.len() as f64
        );
    }
    Ok(())
}
