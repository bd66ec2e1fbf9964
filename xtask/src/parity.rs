//! `xtask parity`: every component and the whole pipeline of a fixture pipeline folder
//! against the diffusers 0.42.1 reference tensors, as a table of errors.
//!
//! Runs on any compiled-in backend, so the same table checks a GPU build (`--backend cuda`):
//! there, float errors grow and sampled ids may flip where diffusers' Gumbel margin is tiny;
//! the table reports the fraction of identical latent pixels.

use std::path::{Path, PathBuf};

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use clip_text::Truncation;
use serde_json::Value;
use transformer2d::PrepareOptions;
use vq_kernels::{EngineChoice, KernelBackend};
use vq_pipeline::{GenerateRequest, NegativeEmbeddings, NoiseSource, VQDiffusionPipeline};
use vq_scheduler::{clamp_log_probs, classifier_free_guidance, truncate, FixedUniforms};

/// Arguments of `xtask parity`.
#[derive(clap::Args)]
pub struct Args {
    /// Pipeline folder the reference was made from (any layout of the tiny fixture).
    #[arg(long, default_value = "fixtures/tiny/hub")]
    model: PathBuf,
    /// Reference tensors.
    #[arg(long, default_value = "fixtures/reference/tiny.safetensors")]
    reference: PathBuf,
    /// End-to-end cases.
    #[arg(long, default_value = "fixtures/reference/cases.json")]
    cases: PathBuf,
    /// Backend: one compiled in (`ndarray`, `flex`, `wgpu`, `wgpu-gl` (wgpu on OpenGL), `cuda`, `cuda-unfused`).
    #[arg(long, default_value = "ndarray")]
    backend: String,
    /// Float precision: f32, f16 or bf16.
    #[arg(long, default_value = "f32")]
    dtype: String,
    /// The transformer's engine: off, auto (the backend's where it has one) or on (an error
    /// without one). With an engine, rows comparing it with the tensor ops are added.
    #[arg(long, default_value = "auto")]
    engine: EngineChoice,
}

pub fn run(args: Args) -> Result<(), String> {
    crate::with_backend!(args.backend.as_str(), parity, &args)
}

/// The reference file: tensors by name and its JSON metadata.
struct Reference {
    path: PathBuf,
    meta: Value,
}

impl Reference {
    fn open(path: &Path) -> Result<Self, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| e.to_string())?;
        let meta = header.metadata().as_ref().and_then(|m| m.get("fixture")).ok_or("no `fixture` metadata")?;
        Ok(Self { path: path.into(), meta: serde_json::from_str(meta).map_err(|e| e.to_string())? })
    }

    fn data(&self, name: &str) -> Result<TensorData, String> {
        vq_weights::read_tensor(&self.path, name).map_err(|e| e.to_string())
    }

    fn f32<B: Backend, const D: usize>(&self, name: &str, device: &B::Device) -> Result<Tensor<B, D>, String> {
        Ok(Tensor::from_data(self.data(name)?, device))
    }

    fn int<B: Backend, const D: usize>(&self, name: &str, device: &B::Device) -> Result<Tensor<B, D, Int>, String> {
        Ok(Tensor::from_data(self.data(name)?, device))
    }
}

/// One line of the table.
struct Row {
    what: String,
    max_abs: Option<f32>,
    mismatches: Option<(usize, usize)>,
}

fn max_abs<B: Backend, const D: usize>(a: Tensor<B, D>, reference: &TensorData) -> f32 {
    let a = a.into_data().convert::<f32>().to_vec::<f32>().unwrap_or_default();
    let b = reference.to_vec::<f32>().unwrap_or_default();
    // −inf == −inf counts as equal (truncated entries).
    a.iter().zip(&b).map(|(x, y)| if x == y { 0.0 } else { (x - y).abs() }).fold(0.0, f32::max)
}

fn mismatches(a: &[i64], b: &[i64]) -> (usize, usize) {
    (a.iter().zip(b).filter(|(x, y)| x != y).count() + a.len().abs_diff(b.len()), b.len())
}

fn ints<B: Backend, const D: usize>(t: Tensor<B, D, Int>) -> Vec<i64> {
    t.into_data().convert::<i64>().to_vec::<i64>().unwrap_or_default()
}

fn parity<B: KernelBackend>(args: &Args, device: B::Device) -> Result<(), String> {
    vq_pipeline::set_precision::<B>(&device, crate::precision(&args.dtype)?).map_err(|e| e.to_string())?;
    let r = Reference::open(&args.reference)?;
    let pipeline = VQDiffusionPipeline::<B>::from_dir(&args.model, None, &device).map_err(|e| e.to_string())?;
    print_header(&format!("{} {}, engine {} — {}", B::name(&device), args.dtype, args.engine, args.model.display()));
    let mut with_mismatches = 0;
    let mut rows = 0;
    let mut row = |what: String, max_abs: Option<f32>, mismatches: Option<(usize, usize)>| {
        rows += 1;
        with_mismatches += usize::from(mismatches.is_some_and(|(m, _)| m > 0));
        print_row(&Row { what, max_abs, mismatches });
    };

    // Tokenizer and text encoder.
    let prompts: Vec<String> = r.meta["tok_prompts"]
        .as_array()
        .ok_or("no tok_prompts")?
        .iter()
        .map(|p| p.as_str().unwrap_or("").into())
        .collect();
    let mut ids = Vec::new();
    for p in &prompts {
        let padded = pipeline.tokenizer.encode_padded(p, Truncation::Diffusers).map_err(|e| e.to_string())?;
        ids.extend(padded.ids.iter().map(|&i| i as i64));
    }
    let expected_ids = r.data("tok.input_ids")?.to_vec::<i64>().map_err(|e| format!("{e:?}"))?;
    row(format!("tokenizer ({} prompts)", prompts.len()), None, Some(mismatches(&ids, &expected_ids)));
    let hidden = pipeline.text_encoder.forward(r.int::<B, 2>("tok.input_ids", &device)?).last_hidden_state;
    row("text encoder last_hidden_state".into(), Some(max_abs(hidden, &r.data("text.last_hidden_state")?)), None);
    if matches!(pipeline.negative, NegativeEmbeddings::Learned(_)) {
        let embeds = pipeline.encode_prompts(&prompts[..1], 1, true).map_err(|e| e.to_string())?.embeddings;
        row("prompt embeddings (guided)".into(), Some(max_abs(embeds, &r.data("encode.prompt_embeds")?)), None);
    }

    // Transformer, guidance and truncation at the recorded timesteps.
    let rate = r.meta["truncation_rate"].as_f64().unwrap_or(1.0) as f32;
    let scale = r.meta["guidance_scale"].as_f64().unwrap_or(5.0) as f32;
    let latents = r.int::<B, 2>("transformer.in.latents", &device)?;
    let text = r.f32::<B, 3>("encode.prompt_embeds", &device)?;
    let options = PrepareOptions::default().with_engine(args.engine);
    let prepared = pipeline.transformer.prepare(text.clone(), &options).map_err(|e| e.to_string())?;
    let engine = prepared.engine();
    eprintln!("transformer engine: {}", engine.as_deref().unwrap_or("none (burn's tensor ops)"));
    if let Some(why) = prepared.fallback() {
        eprintln!("transformer engine fell back to the tensor ops: {why}");
    }
    for t in
        r.meta["transformer_timesteps"].as_array().ok_or("no transformer_timesteps")?.iter().filter_map(Value::as_u64)
    {
        let out = prepared.forward(latents.clone(), &(t as usize).into());
        if engine.is_some() {
            let ops = pipeline.transformer.forward(latents.clone(), text.clone(), &(t as usize).into());
            row(format!("transformer engine vs tensor ops t={t}"), Some(max_abs(out.clone(), &ops.into_data())), None);
        }
        row(
            format!("transformer log p(x0) t={t}"),
            Some(max_abs(out, &r.data(&format!("transformer.t{t}.log_p_x_0"))?)),
            None,
        );
        let reference = r.f32::<B, 3>(&format!("transformer.t{t}.log_p_x_0"), &device)?;
        let guided = classifier_free_guidance(reference.clone().narrow(0, 0, 1), reference.narrow(0, 1, 1), scale);
        row(format!("guidance t={t}"), Some(max_abs(guided.clone(), &r.data(&format!("guide.t{t}.log_p_x_0"))?)), None);
        let clamped = clamp_log_probs(truncate(guided, rate));
        row(
            format!("truncation + clamp t={t}"),
            Some(max_abs(clamped, &r.data(&format!("guide.t{t}.clamped"))?)),
            None,
        );
    }

    // Scheduler: posterior and one step with diffusers' uniforms.
    let scheduler = pipeline.scheduler().map_err(|e| e.to_string())?;
    let log_p = r.f32::<B, 3>("sched.in.log_p_x_0", &device)?;
    let sample = r.int::<B, 2>("sched.in.sample", &device)?;
    for t in r.meta["sched_timesteps"].as_array().ok_or("no sched_timesteps")?.iter().filter_map(Value::as_u64) {
        let t = t as usize;
        if t > 0 {
            let posterior = scheduler.q_posterior(log_p.clone(), sample.clone(), t);
            row(
                format!("scheduler q_posterior t={t}"),
                Some(max_abs(posterior, &r.data(&format!("sched.t{t}.log_p_x_t_min_1"))?)),
                None,
            );
        }
        let mut noise = FixedUniforms::new([r.f32::<B, 3>(&format!("sched.t{t}.uniform"), &device)?]);
        let prev = ints(scheduler.step(log_p.clone(), t, sample.clone(), &mut noise));
        let expected = r.data(&format!("sched.t{t}.prev_sample"))?.to_vec::<i64>().map_err(|e| format!("{e:?}"))?;
        row(format!("scheduler step t={t} (ids)"), None, Some(mismatches(&prev, &expected)));
    }

    // VQ-VAE.
    let decoded = pipeline.vqvae.decode_indices(r.int::<B, 2>("vqvae.in.indices", &device)?, pipeline.latent_size());
    let decoded = decoded.map_err(|e| e.to_string())?;
    row("vqvae decode".into(), Some(max_abs(decoded.clone(), &r.data("vqvae.decoded")?)), None);
    let image = vq_model::to_unit_range(decoded);
    row("vqvae image [0, 1]".into(), Some(max_abs(image, &r.data("vqvae.image")?)), None);
    let latents = pipeline.vqvae.encode(r.f32::<B, 4>("vqvae.enc.image", &device)?).map_err(|e| e.to_string())?;
    row("vqvae encode latents".into(), Some(max_abs(latents.clone(), &r.data("vqvae.enc.latents")?)), None);
    let indices = ints(pipeline.vqvae.quantize(latents).map_err(|e| e.to_string())?.indices);
    let expected = r.data("vqvae.enc.indices")?.to_vec::<i64>().map_err(|e| format!("{e:?}"))?;
    row("vqvae encode indices".into(), None, Some(mismatches(&indices, &expected)));

    // End to end.
    let cases: Value = serde_json::from_str(&std::fs::read_to_string(&args.cases).map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    let nolearn = matches!(pipeline.negative, NegativeEmbeddings::EmptyPrompt);
    for case in cases["cases"].as_array().ok_or("no cases")? {
        if (case["pipeline"] == "nolearn") != nolearn {
            continue;
        }
        let name = case["name"].as_str().unwrap_or("?");
        let generation =
            pipeline.generate(&request(case)?.with_engine(args.engine)).map_err(|e| format!("{name}: {e}"))?;
        let tokens = generation.token_ids().concat();
        let expected = r.data(&format!("e2e.{name}.tokens"))?.to_vec::<i64>().map_err(|e| format!("{e:?}"))?;
        row(format!("e2e {name} tokens"), None, Some(mismatches(&tokens, &expected)));
        row(
            format!("e2e {name} image"),
            Some(max_abs(generation.images.clone(), &r.data(&format!("e2e.{name}.image"))?)),
            None,
        );
        let rgb: Vec<i64> = generation.rgb8().iter().flat_map(|i| i.as_raw().iter().map(|&b| b as i64)).collect();
        let expected = r.data(&format!("e2e.{name}.image_u8"))?.to_vec::<i64>().map_err(|e| format!("{e:?}"))?;
        row(format!("e2e {name} 8-bit pixels"), None, Some(mismatches(&rgb, &expected)));
    }

    println!("{rows} rows, {with_mismatches} with id mismatches");
    Ok(())
}

fn request(case: &Value) -> Result<GenerateRequest, String> {
    let prompts: Vec<String> = match &case["prompt"] {
        Value::String(p) => vec![p.clone()],
        Value::Array(ps) => ps.iter().filter_map(|p| p.as_str().map(String::from)).collect(),
        other => return Err(format!("bad prompt {other}")),
    };
    let number = |key: &str| case[key].as_f64().ok_or(format!("case without {key}"));
    Ok(GenerateRequest::new(prompts)
        .with_steps(number("num_inference_steps")? as usize)
        .with_guidance_scale(number("guidance_scale")? as f32)
        .with_truncation_rate(number("truncation_rate")? as f32)
        .with_images_per_prompt(number("num_images_per_prompt")? as usize)
        .with_noise(NoiseSource::Torch { seed: case["seed"].as_u64().ok_or("case without seed")? }))
}

fn print_header(title: &str) {
    println!("# parity with diffusers 0.42.1: {title}");
    println!("| {:<44} | {:>12} | {:>22} |", "component", "max abs err", "mismatches");
    println!("|{:-<46}|{:->14}|{:->24}|", "", "", "");
}

fn print_row(row: &Row) {
    let err = row.max_abs.map(|e| format!("{e:.2e}")).unwrap_or_default();
    let mis = row
        .mismatches
        .map(|(m, n)| format!("{m} / {n} ({:.2} % same)", 100.0 * (n - m.min(n)) as f64 / n.max(1) as f64))
        .unwrap_or_default();
    println!("| {:<44} | {:>12} | {:>22} |", row.what, err, mis);
}
