//! `xtask bench`: timings at the full microsoft/vq-diffusion-ithq size (random weights, the
//! same FLOPs as the real checkpoint) on a chosen backend and precision.
//!
//! Measures the prompt encoding (CLIP text encoder, one prompt, and the learned null embedding),
//! one transformer forward (batch 2: the guidance pair), one sampling step after the
//! transformer (guidance combine, truncation, clamp, posterior, Gumbel-max), the VQ decode of
//! one image, and whole 100-step guided generations; the forwards and generations once per
//! `--engine` (burn's tensor ops, the backend's whole-forward engine), with the engine's
//! preparation (its start-up: kernel compilation or cache, graph capture) timed apart. Each
//! figure is the median of `--reps` runs after `--warmup` runs, with the device synchronised
//! around every run. Results go to stdout as a table and, with `--json`, to a file. Peak device
//! memory is measured outside (e.g. `nvidia-smi` sampling), since burn 0.21 exposes no
//! allocator high-water mark.

use std::path::PathBuf;
use std::time::Instant;

use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, ElementConversion, Int, Tensor};
use transformer2d::{PrepareOptions, PreparedTransformer, Transformer2DModel};
use vq_kernels::engine::{Elem, HostEngine, StepTime};
use vq_kernels::{EngineChoice, KernelBackend};
use vq_pipeline::ithq::{ithq_configs, ithq_scheduler_config};
use vq_pipeline::{GenerateRequest, NoiseSource, TruncationMode, VQDiffusionPipeline};
use vq_scheduler::{
    clamp_log_probs, classifier_free_guidance, truncate, truncate_on_device, DeviceNoise, TorchGenerator, UniformSource,
};

use crate::products::{forward_products, operands, Form};

/// Arguments of `xtask bench`.
#[derive(clap::Args, Clone)]
pub struct Args {
    /// Backend: one compiled in (`ndarray`, `flex`, `wgpu`, `wgpu-gl` (wgpu on OpenGL), `cuda`, `cuda-unfused`).
    #[arg(long, default_value = "ndarray")]
    backend: String,
    /// Float precision: f32, f16 or bf16.
    #[arg(long, default_value = "f32")]
    dtype: String,
    /// What to measure: comma-separated from encode, forward, step, decode, generate, products
    /// (each kind of matrix product of a forward with the backend's matmul, alone) and profile
    /// (each step of an engine's forward alone: its products' rates); the last two are not in
    /// the default list.
    #[arg(long, default_value = "encode,forward,step,decode,generate")]
    what: String,
    /// Images per generation, comma-separated.
    #[arg(long, default_value = "1,4")]
    images: String,
    /// Steps of a generation.
    #[arg(long, default_value_t = 100)]
    steps: usize,
    /// Noise of the generations: torch (host MT19937, exact truncation on the host) or device
    /// (burn's generator, truncation on the device).
    #[arg(long, default_value = "device")]
    rng: String,
    /// Untimed runs first.
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    /// Timed runs (median reported).
    #[arg(long, default_value_t = 5)]
    reps: usize,
    /// Tokenizer folder (any CLIP tokenizer; the committed fixture has the real vocabulary).
    #[arg(long, default_value = "fixtures/tiny/hub/tokenizer")]
    tokenizer: PathBuf,
    /// Use only this many transformer blocks (profiling; the ITHQ model has 36).
    #[arg(long)]
    layers: Option<usize>,
    /// Also write the results as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Check after every step of the warm-up generation that the sampled ids are classes of the
    /// chain (reads them back each step, so only the untimed warm-up does it).
    #[arg(long)]
    check_tokens: bool,
    /// The transformer's engine, comma-separated from off (burn's tensor ops, text keys and
    /// values computed once), auto (the backend's engine where it has one), on (the engine or an
    /// error) and host (the engine's plan run on the CPU: checks this benchmark's engine path on
    /// any backend; forward and profile only). Each forward and generation is timed with each.
    #[arg(long, default_value = "auto")]
    engine: String,
}

/// One `--engine` value.
#[derive(Clone, Copy, PartialEq)]
enum Engine {
    /// Through `GenerateRequest::engine` / `PrepareOptions`.
    Choice(EngineChoice),
    /// The CPU plan executor behind the engine interface.
    Host,
}

impl Engine {
    fn name(self) -> &'static str {
        match self {
            Self::Choice(choice) => choice.name(),
            Self::Host => "host",
        }
    }
}

/// The engines of `--engine` ("off,on").
fn engines(list: &str) -> Result<Vec<Engine>, String> {
    list.split(',')
        .map(|name| match name.trim() {
            "host" => Ok(Engine::Host),
            other => other.parse::<EngineChoice>().map(Engine::Choice).map_err(|e| format!("--engine: {e} or host")),
        })
        .collect()
}

/// The transformer prepared for one generation's `text` with `engine`.
fn prepare<'a, B: KernelBackend>(
    model: &'a Transformer2DModel<B>,
    text: &Tensor<B, 3>,
    engine: Engine,
) -> Result<PreparedTransformer<'a, B>, String> {
    match engine {
        Engine::Choice(choice) => {
            model.prepare(text.clone(), &PrepareOptions::default().with_engine(choice)).map_err(|e| e.to_string())
        }
        Engine::Host => {
            let host = HostEngine::new(&model.describe(text.clone()), Elem::F32).map_err(|e| e.to_string())?;
            Ok(model.prepare_with_engine(text.clone(), Box::new(host)))
        }
    }
}

pub fn run(args: Args) -> Result<(), String> {
    crate::with_backend!(args.backend.as_str(), bench, &args)
}

/// Steps of one kind (see [`StepTime::kind`]) added up, in plan order: (kind, count, FLOPs,
/// seconds).
fn profile_by_kind(steps: &[StepTime]) -> Vec<(String, usize, f64, f64)> {
    let mut kinds: Vec<(String, usize, f64, f64)> = Vec::new();
    for step in steps {
        let kind = step.kind();
        match kinds.iter_mut().find(|(k, ..)| *k == kind) {
            Some((_, count, flops, seconds)) => {
                *count += 1;
                *flops += step.flops;
                *seconds += step.seconds;
            }
            None => kinds.push((kind, 1, step.flops, step.seconds)),
        }
    }
    kinds
}

/// The image counts of `--images` ("1,4").
fn image_counts(images: &str) -> Result<Vec<usize>, String> {
    images.split(',').map(|s| s.trim().parse::<usize>().map_err(|e| format!("--images {images:?}: {e}"))).collect()
}

/// A rate in TFLOP/s with two decimals below 10 (CPUs), whole numbers above (GPUs).
fn tflops(flops: f64, seconds: f64) -> String {
    let rate = flops / seconds / 1e12;
    if rate < 10.0 {
        format!("{rate:.2} TFLOP/s")
    } else {
        format!("{rate:.0} TFLOP/s")
    }
}

/// Median wall time in seconds of `reps` runs of `f`, each followed by a device sync.
fn time<B: Backend>(device: &B::Device, warmup: usize, reps: usize, mut f: impl FnMut()) -> Result<f64, String> {
    let mut run = || {
        let start = Instant::now();
        f();
        sync::<B>(device)?;
        Ok::<f64, String>(start.elapsed().as_secs_f64())
    };
    for i in 0..warmup {
        eprintln!("  warm-up {i}: {:.3} s", run()?);
    }
    let mut times = (0..reps.max(1)).map(|_| run()).collect::<Result<Vec<f64>, String>>()?;
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

/// Waits for `device`. A failed sync reports every failed operation since the last one (on CUDA
/// once, megabytes of the same error after the first): the message keeps its start,
/// where the first failure is.
fn sync<B: Backend>(device: &B::Device) -> Result<(), String> {
    B::sync(device).map_err(|e| {
        let message = format!("{e:?}");
        match message.char_indices().nth(4000) {
            Some((cut, _)) => format!("device sync failed: {}… ({} characters in all)", &message[..cut], message.len()),
            None => format!("device sync failed: {message}"),
        }
    })
}

/// Fails unless every id of `tokens` is a class of the chain, `0..=mask_id`. A step that
/// samples outside makes the next transformer forward read outside its embedding table, which
/// on CUDA is an illegal address several kernels later: there, burn's argmax over NaN scores is
/// −1 (NaN prompt embeddings, e.g. of a zero-weight text encoder, give NaN scores).
fn check_token_range<B: Backend>(tokens: Tensor<B, 2, Int>, mask_id: usize, what: &str) -> Result<(), String> {
    let min = tokens.clone().min().into_scalar().elem::<i64>();
    let max = tokens.max().into_scalar().elem::<i64>();
    match min >= 0 && max <= mask_id as i64 {
        true => Ok(()),
        false => Err(format!("{what} sampled ids in [{min}, {max}], outside 0..={mask_id}")),
    }
}

/// NaN counts of the first step of a guided generation (t = 0, all-mask input): where a
/// sampling failure starts.
fn first_step_nans<B: KernelBackend>(
    pipeline: &VQDiffusionPipeline<B>,
    prompt: &str,
    k: usize,
    pixels: usize,
) -> String {
    let nans = |t: Tensor<B, 3>| t.is_nan().int().sum().into_scalar().elem::<i64>();
    let embeddings = match pipeline.encode_prompts(&[prompt.to_string()], 1, true) {
        Ok(prompt) => prompt.embeddings,
        Err(e) => return format!("encoding failed: {e}"),
    };
    let latents = Tensor::<B, 2, Int>::full([2, pixels], k as i64, &embeddings.device());
    let out = pipeline.transformer.forward(latents, embeddings.clone(), &0usize.into());
    format!(
        "NaNs: prompt embeddings {} of {}, transformer output {} of {}",
        nans(embeddings.clone()),
        embeddings.shape().num_elements(),
        nans(out.clone()),
        out.shape().num_elements(),
    )
}

fn bench<B: KernelBackend>(args: &Args, device: B::Device) -> Result<(), String> {
    let what: Vec<&str> = args.what.split(',').map(str::trim).collect();
    const PARTS: [&str; 7] = ["encode", "forward", "step", "decode", "generate", "products", "profile"];
    if let Some(unknown) = what.iter().find(|part| !PARTS.contains(part)) {
        return Err(format!("--what: unknown part {unknown:?} (known: {})", PARTS.join(", ")));
    }
    let engines = engines(&args.engine)?;
    vq_pipeline::set_precision::<B>(&device, crate::precision(&args.dtype)?).map_err(|e| e.to_string())?;
    let tokenizer = clip_text::Tokenizer::from_dir(&args.tokenizer).map_err(|e| e.to_string())?;
    let start = Instant::now();
    let mut configs = ithq_configs();
    if let Some(layers) = args.layers {
        configs.transformer.num_layers = layers;
    }
    let (transformer_config, text_len) = (configs.transformer.clone(), configs.text_encoder.max_position_embeddings);
    let pipeline = VQDiffusionPipeline::<B>::random(configs, ithq_scheduler_config(), tokenizer, &device)
        .map_err(|e| e.to_string())?;
    sync::<B>(&device)?;
    eprintln!("built the ITHQ architecture with random weights in {:.1} s", start.elapsed().as_secs_f64());
    let mut results = Vec::new();
    let mut record = |name: String, seconds: f64| {
        println!("{:<44} {:>10.4} s", name, seconds);
        results.push(serde_json::json!({ "name": name, "seconds": seconds }));
    };
    let layers = args.layers.map(|l| format!(", {l} of 36 blocks")).unwrap_or_default();
    let label = format!("{} {}{layers}", B::name(&device), args.dtype);
    println!("# backend: {label}");

    let prompt = "teddy bear playing in the pool";
    let (k, pixels) = (4096, 1024);
    if what.contains(&"encode") {
        let mut failure = None;
        let t = time::<B>(&device, args.warmup, args.reps, || {
            if let Err(e) = pipeline.encode_prompts(&[prompt.to_string()], 1, true) {
                failure = Some(e.to_string());
            }
        })?;
        if let Some(e) = failure {
            return Err(format!("encoding {prompt:?}: {e}"));
        }
        record("prompt encoding (CLIP + null embedding), 1 prompt".into(), t);
    }
    let text = Tensor::<B, 3>::random([2, 77, 512], Distribution::Normal(0.0, 1.0), &device);
    if what.contains(&"forward") || what.contains(&"profile") {
        let latents = Tensor::<B, 2, Int>::full([2, pixels], k as i64, &device);
        for &engine in &engines {
            // The first preparation of a process compiles the engine's kernels (or loads them
            // from the disk cache); the timed ones after it show the per-generation cost.
            let start = Instant::now();
            let prepared = prepare(&pipeline.transformer, &text, engine)?;
            sync::<B>(&device)?;
            let first = start.elapsed().as_secs_f64();
            let name = engine.name();
            eprintln!("  engine {name}: {}", prepared.engine().unwrap_or_else(|| "none (burn's tensor ops)".into()));
            if let Some(why) = prepared.fallback() {
                eprintln!("  engine {name} fell back to the tensor ops: {why}");
            }
            record(format!("prepare (engine {name}), first in this process"), first);
            let t = time::<B>(&device, 0, args.reps.min(3), || {
                let _ = prepare(&pipeline.transformer, &text, engine).expect("prepared once already");
            })?;
            record(format!("prepare (engine {name})"), t);
            if what.contains(&"forward") {
                let t = time::<B>(&device, args.warmup, args.reps, || {
                    let out = prepared.forward(latents.clone(), &50usize.into());
                    let _ = out.dtype();
                })?;
                record(format!("transformer forward, batch 2 (engine {name})"), t);
            }
            if what.contains(&"profile") {
                let _ = prepared.forward(latents.clone(), &50usize.into());
                match prepared.profile(args.reps) {
                    Some(steps) => {
                        for (kind, count, flops, seconds) in profile_by_kind(&steps) {
                            let rate =
                                if flops > 0.0 { format!(", {}", tflops(flops, seconds)) } else { String::new() };
                            record(format!("  step {kind} ×{count} (engine {name}{rate})"), seconds);
                        }
                        let total: f64 = steps.iter().map(|s| s.seconds).sum();
                        record(format!("  steps of one forward, each alone (engine {name})"), total);
                    }
                    None => eprintln!("  engine {name}: no step profile (no engine runs)"),
                }
            }
        }
    }
    if what.contains(&"step") {
        let mut scheduler = pipeline.scheduler().map_err(|e| e.to_string())?;
        scheduler.set_timesteps(100).map_err(|e| e.to_string())?;
        let logits = Tensor::<B, 3>::random([2, k, pixels], Distribution::Normal(0.0, 3.0), &device);
        let log_p = burn::tensor::activation::log_softmax(logits, 1);
        let sample = Tensor::<B, 2, Int>::full([1, pixels], k as i64, &device);
        let mut last = None;
        for (label, mut noise, on_device) in [
            ("torch rng, exact truncation", Box::new(TorchGenerator::new(0)) as Box<dyn UniformSource<B>>, false),
            ("device rng, exact truncation", Box::new(DeviceNoise) as Box<dyn UniformSource<B>>, false),
            ("device rng, device truncation", Box::new(DeviceNoise) as Box<dyn UniformSource<B>>, true),
        ] {
            for rate in [1.0f32, 0.86] {
                let t = time::<B>(&device, args.warmup, args.reps, || {
                    let uncond = log_p.clone().narrow(0, 0, 1);
                    let cond = log_p.clone().narrow(0, 1, 1);
                    let guided = classifier_free_guidance(uncond, cond, 5.0);
                    let truncated = if on_device { truncate_on_device(guided, rate) } else { truncate(guided, rate) };
                    last = Some(scheduler.step(clamp_log_probs(truncated), 50, sample.clone(), noise.as_mut()));
                })?;
                record(format!("sampling step, batch 1, truncation {rate}, {label}"), t);
                check_token_range(last.take().expect("timed at least once"), k, "the sampling step")?;
            }
        }
    }
    if what.contains(&"decode") {
        let ids = Tensor::<B, 2, Int>::random([1, pixels], Distribution::Uniform(0.0, k as f64), &device);
        let t = time::<B>(&device, args.warmup, args.reps, || {
            let _ = pipeline.decode(ids.clone()).expect("decode");
        })?;
        record("VQ decode, 1 image 256×256".into(), t);
    }
    let choices: Vec<EngineChoice> =
        engines.iter().filter_map(|engine| if let Engine::Choice(c) = engine { Some(*c) } else { None }).collect();
    if what.contains(&"generate") {
        for (n, choice) in image_counts(&args.images)?.into_iter().flat_map(|n| choices.iter().map(move |&c| (n, c))) {
            let noise = match args.rng.as_str() {
                "torch" => NoiseSource::Torch { seed: 0 },
                _ => NoiseSource::Device { seed: Some(0) },
            };
            // Device noise goes with device truncation: no read-back inside the loop.
            let truncation = match noise {
                NoiseSource::Torch { .. } => TruncationMode::Exact,
                NoiseSource::Device { .. } => TruncationMode::Device,
            };
            let request = GenerateRequest::new([prompt])
                .with_steps(args.steps)
                .with_images_per_prompt(n)
                .with_noise(noise)
                .with_truncation_mode(truncation)
                .with_engine(choice);
            // Whole generations are long: one warm-up, then the median of (reps + 1) / 2 runs.
            // The warm-up compiles (and with autotune, tunes) the loop's kernels, minutes on a
            // fresh CUDA cache: it reports its progress, synchronising now and then, and with
            // --check-tokens checks every step's ids.
            let start = Instant::now();
            let mut synced = Ok(());
            let mut failure = None;
            let warm_up = pipeline.generate_with_callback(&request, |state| {
                if args.check_tokens && failure.is_none() {
                    let what = format!("step {} (t = {})", state.index, state.timestep);
                    failure = check_token_range(state.sample.clone(), k, &what).err();
                }
                if synced.is_ok() && (state.index < 3 || state.index % 10 == 9) {
                    synced = sync::<B>(&device);
                    eprintln!("  warm-up: step {} done at {:.2} s", state.index + 1, start.elapsed().as_secs_f64());
                }
            });
            if let Some(failure) = failure {
                return Err(format!("{failure}; {}", first_step_nans(&pipeline, prompt, k, pixels)));
            }
            let warm_up = warm_up.map_err(|e| e.to_string())?;
            synced?;
            sync::<B>(&device)?;
            if args.check_tokens {
                eprintln!("  every step sampled ids in 0..={k}");
            }
            // E.g. NaN log-probabilities (sampled at the floor): a timing of such a run is no benchmark.
            let warnings = if warm_up.warnings.is_empty() { "none".to_string() } else { warm_up.warnings.join("; ") };
            eprintln!("  warm-up: {:.3} s, warnings: {warnings}", start.elapsed().as_secs_f64());
            let t = time::<B>(&device, 0, args.reps.div_ceil(2), || {
                let _ = pipeline.generate(&request).expect("generate");
            })?;
            let engine = choice.name();
            record(format!("generate, {} steps, guidance 5, {n} image(s) (engine {engine})", args.steps), t);
            record(format!("  per image ({n} image(s), engine {engine})"), t / n as f64);
        }
    }
    if what.contains(&"products") {
        for n in image_counts(&args.images)? {
            let batch = 2 * n;
            let (mut total, mut flops) = (0.0, 0.0);
            for product in forward_products(&transformer_config, batch, text_len) {
                let flat_too = product.form == Form::Linear && product.m > 1;
                for flat in [false, true].into_iter().filter(|&flat| !flat || flat_too) {
                    let (lhs, rhs) = operands::<B>(&product, flat, &device);
                    // The outputs of one run stay alive through its sync (so that none of its
                    // products can be skipped) and are freed when the next run starts.
                    let mut outputs = Vec::with_capacity(product.count);
                    let t = time::<B>(&device, args.warmup, args.reps, || {
                        outputs.clear();
                        outputs.extend((0..product.count).map(|_| lhs.clone().matmul(rhs.clone())));
                    })?;
                    drop(outputs);
                    let rate = tflops(product.flops(), t);
                    let form = if flat { ", rows flattened" } else { "" };
                    record(format!("products b{batch}: {} ×{}{form} ({rate})", product.name, product.count), t);
                    if !flat {
                        (total, flops) = (total + t, flops + product.flops());
                    }
                }
            }
            record(format!("products of one forward, batch {batch} ({})", tflops(flops, total)), total);
        }
    }
    if let Some(path) = &args.json {
        let json = serde_json::json!({ "backend": label, "results": results });
        std::fs::write(path, serde_json::to_string_pretty(&json).unwrap()).map_err(|e| e.to_string())?;
    }
    Ok(())
}
