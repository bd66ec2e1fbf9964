//! The stage-2 training loop: VQ-Diffusion's objective on tokens of the frozen VQ-VAE.

use crate::TrainBackend;
use vq_kernels::KernelBackend;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::grad_clipping::GradientClippingConfig;
use burn::module::AutodiffModule;
use burn::optim::{AdamWConfig, Optimizer};
use clip_text::Tokenizer;
use serde::{Deserialize, Serialize};
use vq_model::VQModel;
use vq_scheduler::{ScheduleTables, VQDiffusionSchedulerConfig};

use super::export::write_pipeline;
use super::model::{TextToTokens, TextToTokensConfig};
use super::parallel::{split_step, step_gradients, Replica};
use crate::data::{Dataset, DatasetConfig, Split};
use crate::loss::{TimestepSampler, VqDiffusionLossConfig};
use crate::rng::SplitMix64;
use crate::text::{caption_words, write_trimmed_tokenizer};
use crate::train::batches::BatchStream;
use crate::train::checkpoint::{
    load_module, load_state, load_trainee, save_module_as, save_record, save_state, RunState,
};
use crate::train::export::{create_dir, read_json, StoreDtype};
use crate::train::log::{LossCurve, LossWindows, Progress};
use crate::train::parallel::replica_devices;
use crate::train::params::{ema_decay_at, update_ema};
use crate::train::schedule::step_learning_rate;
use crate::TrainError;

/// Everything stage 2 needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DiffusionTrainConfig {
    /// Output folder: `pipeline/` (the exported model), `tokenizer/`, `checkpoint/`,
    /// `loss.csv`, `loss.png`.
    pub out_dir: PathBuf,
    /// The trained VQ-VAE (`vqvae/` written by stage 1).
    pub vqvae_dir: PathBuf,
    /// A full CLIP tokenizer folder (`vocab.json` + `merges.txt`) to trim.
    pub clip_tokenizer_dir: PathBuf,
    /// T, the number of diffusion steps (the pipeline runs all of them).
    pub num_timesteps: usize,
    /// Transformer heads.
    pub heads: usize,
    /// Transformer head width.
    pub head_dim: usize,
    /// Transformer blocks.
    pub layers: usize,
    /// Text encoder width.
    pub text_width: usize,
    /// Text encoder layers.
    pub text_layers: usize,
    /// Text encoder heads.
    pub text_heads: usize,
    /// Token positions (tokenizer `model_max_length`).
    pub text_length: usize,
    /// Images per step.
    pub batch_size: usize,
    /// Training steps (the cosine schedule's length).
    pub steps: usize,
    /// Peak learning rate.
    pub learning_rate: f64,
    /// Linear warm-up steps.
    pub warmup_steps: usize,
    /// AdamW weight decay.
    pub weight_decay: f32,
    /// AdamW β₁.
    pub beta_1: f32,
    /// AdamW β₂.
    pub beta_2: f32,
    /// Gradient clipping: each parameter's gradient is scaled to at most this L2 norm
    /// (burn clips per parameter, not globally).
    pub grad_clip_norm: f32,
    /// Decay of the weight EMA that is exported (0 exports the raw weights).
    pub ema_decay: f64,
    /// Probability that a caption is replaced by the null embedding.
    pub caption_dropout: f64,
    /// λ of the auxiliary x_0 loss. The default, 0.05, is 100 × the original's 5e−4: at λ = 5e−4
    /// the x_0 prediction of a masked image — where the caption alone must place each object — is
    /// trained only through the posterior KL, whose gradient there is ≈ 1/T as strong, and the
    /// shapes model learned no positions in 4,000 steps (BENCHMARKS.md, session 7).
    pub auxiliary_loss_weight: f64,
    /// Indices of the backend's devices that share each batch (data parallelism; an index twice
    /// puts two replicas on one device, each on its own stream); empty: the `device` given to
    /// [`train_diffusion`] alone. The model and optimizer live on that device either way.
    pub device_indices: Vec<u16>,
    /// Stop cleanly (and save and export) after this many minutes in this process.
    pub max_minutes: Option<f64>,
    /// With `max_minutes`: keep the learning-rate schedule of `steps` instead of shortening it to
    /// end inside the budget (for a run continued over several processes).
    pub keep_schedule: bool,
    /// Print a progress line every this many steps.
    pub log_every: usize,
    /// Save a checkpoint every this many steps (and at the end).
    pub checkpoint_every: usize,
    /// CPU threads rendering batches.
    pub workers: usize,
    /// Seed of the dataset stream, the device RNG and the host RNG.
    pub seed: u64,
    /// Precision of the checkpoint's weights and weight EMA (the optimizer state stays f32):
    /// F16 halves what a run carries between machines.
    pub checkpoint_dtype: StoreDtype,
    /// Continue from `out_dir/checkpoint` when it exists.
    pub resume: bool,
    /// The dataset (its image side is replaced by the VQ-VAE's `sample_size`).
    pub dataset: DatasetConfig,
    /// Start from this exported pipeline's text encoder, transformer and null embedding (its
    /// configs fix the sizes: `heads`, `head_dim`, `layers`, `text_*` and `num_timesteps` are
    /// ignored). Its K, latent grid and tokenizer must be those of `vqvae_dir` and the trimmed
    /// tokenizer — [`super::retarget_pipeline`] moves a pipeline onto a new VQ-VAE. A checkpoint
    /// in `out_dir` takes precedence.
    pub init_from: Option<PathBuf>,
}

impl Default for DiffusionTrainConfig {
    /// The plan's stage 2 (crate README): transformer 6 × 32 wide, 6 layers, T = 50; CLIP text
    /// encoder 128 wide, 4 layers, 4 heads, 32 positions; batch 128, AdamW (0.9, 0.96), wd
    /// 4.5e−2, lr 5e−4, 500 warm-up steps, cosine, clip 0.5, EMA 0.999, 4 k steps.
    fn default() -> Self {
        Self {
            out_dir: PathBuf::from("runs/diffusion"),
            vqvae_dir: PathBuf::from("runs/vqvae/vqvae"),
            clip_tokenizer_dir: PathBuf::from("fixtures/tiny/hub/tokenizer"),
            num_timesteps: 50,
            heads: 6,
            head_dim: 32,
            layers: 6,
            text_width: 128,
            text_layers: 4,
            text_heads: 4,
            text_length: 32,
            batch_size: 128,
            steps: 4000,
            learning_rate: 5e-4,
            warmup_steps: 500,
            weight_decay: 4.5e-2,
            beta_1: 0.9,
            beta_2: 0.96,
            grad_clip_norm: 0.5,
            ema_decay: 0.999,
            caption_dropout: 0.1,
            auxiliary_loss_weight: 0.05,
            device_indices: Vec::new(),
            max_minutes: None,
            keep_schedule: false,
            log_every: 50,
            checkpoint_every: 500,
            workers: 4,
            seed: 0,
            checkpoint_dtype: StoreDtype::F32,
            resume: true,
            dataset: DatasetConfig::default(),
            init_from: None,
        }
    }
}

/// What a finished (or budget-stopped) run reports.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DiffusionTrainSummary {
    /// Steps done in total.
    pub steps_done: usize,
    /// Mean loss of the first logging window of this process.
    pub first_loss: f64,
    /// Mean loss of the last logging window.
    pub final_loss: f64,
    /// Seconds per step in this process.
    pub seconds_per_step: f64,
    /// Parameters of text encoder + transformer + null embedding.
    pub parameters: usize,
    /// The exported pipeline folder.
    pub pipeline_dir: PathBuf,
}

/// Exports the weight EMA of a stage-2 checkpoint (`run_dir/checkpoint/ema.mpk`, with
/// `run_dir/model_config.json` and `run_dir/tokenizer/`) as a pipeline folder, with the VQ-VAE
/// of `vqvae_dir`.
pub fn export_checkpoint<B: KernelBackend>(
    run_dir: &std::path::Path,
    vqvae_dir: &std::path::Path,
    out_dir: &std::path::Path,
    dtype: StoreDtype,
    device: &B::Device,
) -> Result<(), TrainError> {
    #[derive(Deserialize)]
    struct Saved {
        model: TextToTokensConfig,
        scheduler: VQDiffusionSchedulerConfig,
    }
    let saved: Saved = read_json(&run_dir.join("model_config.json"))?;
    let model = load_module(saved.model.init::<B>(device)?, &run_dir.join("checkpoint").join("ema"), device)?;
    write_pipeline(&model, &saved.model, vqvae_dir, &run_dir.join("tokenizer"), &saved.scheduler, out_dir, dtype)
}

/// Checks the sizes `from` of the `init_from` pipeline `dir` against what the data fixes: K and
/// the latent grid of the VQ-VAE, the trimmed tokenizer (the same `vocab.json`) and `text_length`.
fn check_init_from(
    dir: &Path,
    from: &TextToTokensConfig,
    sized: &TextToTokensConfig,
    tokenizer_dir: &Path,
) -> Result<(), TrainError> {
    let context = format!("init_from {}", dir.display());
    let mismatch = [
        ("K (the VQ-VAE's codes)", from.num_classes, sized.num_classes),
        ("the latent grid's side", from.latent_size, sized.latent_size),
        ("text positions", from.text_length, sized.text_length),
    ]
    .into_iter()
    .find(|(_, pipeline, here)| pipeline != here);
    if let Some((what, pipeline, here)) = mismatch {
        return Err(TrainError::model(
            context,
            format!("{what} is {pipeline} there and {here} here (retarget the pipeline onto the VQ-VAE first)"),
        ));
    }
    let vocab =
        |dir: &Path| std::fs::read(dir.join("vocab.json")).map_err(|e| TrainError::io(&dir.join("vocab.json"), e));
    if vocab(&dir.join("tokenizer"))? != vocab(tokenizer_dir)? {
        return Err(TrainError::model(context, "its tokenizer's vocab.json is not the trimmed tokenizer's"));
    }
    Ok(())
}

/// The JSON part of a checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct State {
    #[serde(flatten)]
    run: RunState,
    /// The importance sampler of timesteps and its loss statistics.
    sampler: TimestepSampler,
}

/// Trains text encoder + transformer on tokens of the frozen VQ-VAE and exports the pipeline
/// to `out_dir/pipeline` (also when the time budget stops the run early).
pub fn train_diffusion<B: TrainBackend>(
    config: &DiffusionTrainConfig,
    device: &B::Device,
    progress: &mut dyn FnMut(&str),
) -> Result<DiffusionTrainSummary, TrainError> {
    let checkpoint_dir = config.out_dir.join("checkpoint");
    create_dir(&checkpoint_dir)?;
    B::seed(device, config.seed);

    let tokenizer_dir = config.out_dir.join("tokenizer");
    let vocab_size =
        write_trimmed_tokenizer(&config.clip_tokenizer_dir, &tokenizer_dir, &caption_words(), config.text_length)?;
    let tokenizer = Tokenizer::from_dir(&tokenizer_dir).map_err(|e| TrainError::model("trimmed tokenizer", e))?;
    // The frozen VQ-VAE on every replica's device.
    let load_vqvae = |device: &B::Device| {
        VQModel::<B::InnerBackend>::from_pretrained(&config.vqvae_dir, None, device)
            .map_err(|e| TrainError::model(format!("loading {}", config.vqvae_dir.display()), e))
    };
    let replicas = replica_devices::<B>(device, &config.device_indices, config.batch_size)
        .map_err(|e| TrainError::model("data parallelism", e))?
        .into_iter()
        .map(|device| Ok(Replica { vqvae: load_vqvae(&device)?, device }))
        .collect::<Result<Vec<_>, TrainError>>()?;
    let vqvae = &replicas[0].vqvae;
    let num_classes = vqvae.quantize.num_embeddings();
    let levels = vqvae.encoder.down_blocks.len();
    // Stage 1 records its image side as the VQ-VAE config's `sample_size`.
    let vq_config = vq_model::VQModelConfig::from_file(&config.vqvae_dir.join("config.json"))
        .map_err(|e| TrainError::model("VQ-VAE config", e))?;
    let dataset_config = DatasetConfig { image_size: vq_config.sample_size as u32, ..config.dataset.clone() };
    let latent_size = vq_config.sample_size >> (levels - 1);

    let sized = TextToTokensConfig {
        num_classes,
        latent_size,
        num_timesteps: config.num_timesteps,
        heads: config.heads,
        head_dim: config.head_dim,
        layers: config.layers,
        vocab_size,
        text_width: config.text_width,
        text_layers: config.text_layers,
        text_heads: config.text_heads,
        text_length: config.text_length,
        eos_token_id: i64::from(tokenizer.eos_id()),
    };
    let (model_config, mut model) = match &config.init_from {
        Some(dir) => {
            let (from, model) = TextToTokens::<B>::from_pipeline(dir, device)?;
            check_init_from(dir, &from, &sized, &tokenizer_dir)?;
            progress(&format!("starting from the weights of {}", dir.display()));
            (from, model)
        }
        None => {
            let model = sized.init(device)?;
            (sized, model)
        }
    };
    let mut scheduler_config = VQDiffusionSchedulerConfig::new(num_classes + 1);
    scheduler_config.num_train_timesteps = model_config.num_timesteps;
    let tables = ScheduleTables::new(&scheduler_config).map_err(|e| TrainError::model("schedule", e))?;
    let loss_config = VqDiffusionLossConfig::new().with_auxiliary_loss_weight(config.auxiliary_loss_weight);

    crate::train::export::write_json(
        &config.out_dir.join("model_config.json"),
        &serde_json::json!({ "model": &model_config, "scheduler": &scheduler_config }),
    )?;
    let parameters = burn::module::Module::num_params(&model);
    progress(&format!(
        "text encoder + transformer: {parameters} parameters; K = {num_classes}, {latent_size}×{latent_size} tokens, vocab {vocab_size}"
    ));
    let mut optimizer = AdamWConfig::new()
        .with_beta_1(config.beta_1)
        .with_beta_2(config.beta_2)
        .with_weight_decay(config.weight_decay)
        .with_grad_clipping(Some(GradientClippingConfig::Norm(config.grad_clip_norm)))
        .init::<B, TextToTokens<B>>();
    let mut ema = model.valid();
    let mut state = State {
        run: RunState::new(config.steps, config.seed),
        sampler: TimestepSampler::new(model_config.num_timesteps),
    };
    let state_path = checkpoint_dir.join("state.json");
    // The step from which the learning rate warms up again (AdamW's moments restarted).
    let mut rewarm_from = None;
    if config.resume {
        if let Some(saved) = load_state::<State>(&state_path)? {
            (model, optimizer, rewarm_from) =
                load_trainee(model, optimizer, &checkpoint_dir, saved.run.step, device, progress)?;
            ema = load_module(ema, &checkpoint_dir.join("ema"), device)?;
            progress(&saved.run.describe());
            state = State { run: saved.run.resumed(config.steps), ..saved };
        }
    }
    let mut rng = SplitMix64::new(state.run.rng);

    let dataset = Arc::new(Dataset::new(dataset_config, config.seed)?);
    let mut batches = BatchStream::spawn(
        Arc::clone(&dataset),
        Split::Train,
        config.batch_size,
        state.run.step as u64,
        config.workers,
        Some(Arc::new(tokenizer)),
        0.0,
    );
    let mut curve =
        LossCurve::open(&config.out_dir.join("loss.csv"), &["loss", "vb", "aux", "mean_t"], state.run.step)?;
    let mut timer = Progress::new(
        state.run.step,
        state.run.total_steps,
        state.run.elapsed_seconds,
        config.max_minutes,
        !config.keep_schedule,
    );
    let mut windows = LossWindows::default();
    let first_step = state.run.step;
    let mut step = first_step;
    let batch = config.batch_size;
    let pixels = latent_size * latent_size;
    while step < timer.total_steps() {
        let lr = step_learning_rate(step, timer.total_steps(), config.warmup_steps, config.learning_rate, rewarm_from);
        let host = batches.next_batch();
        let dropped: Vec<bool> = (0..batch).map(|_| rng.bernoulli(config.caption_dropout)).collect();
        let timesteps = state.sampler.sample(batch, &mut rng);
        let shards = split_step(&host, &dropped, &timesteps, replicas.len());
        let (grads, values) = step_gradients(&model, &replicas, shards, &tables, &loss_config, device)?;
        model = optimizer.step(lr, model, grads);
        ema = update_ema(ema, &model.valid(), ema_decay_at(step, config.ema_decay));

        let (vb, aux, loss) = (&values.vb[..], &values.aux[..], values.loss);
        state.sampler.update(&timesteps.t, vb);
        if !loss.is_finite() {
            return Err(TrainError::model("diffusion training", format!("the loss is {loss} at step {step}")));
        }
        let per_token = |values: &[f64]| values.iter().sum::<f64>() / (values.len() * pixels) as f64;
        let mean_t = timesteps.t.iter().sum::<usize>() as f64 / batch as f64;
        curve.record(step, &[loss, per_token(vb), per_token(aux), mean_t], lr, timer.total_elapsed())?;
        windows.push(loss);
        if timer.should_log(step, config.log_every) {
            let mean = windows.close();
            progress(&timer.line(
                step,
                &[("loss", mean), ("vb/token", per_token(vb)), ("aux/token", per_token(aux))],
                lr,
            ));
        }
        let end = timer.after_step(step, config.checkpoint_every, progress);
        step += 1;
        if end.checkpoint {
            state.run.advance(step, timer.total_steps(), timer.total_elapsed(), &mut rng);
            save_module_as(model.clone(), &checkpoint_dir.join("model"), config.checkpoint_dtype)?;
            save_record::<B, _>(optimizer.to_record(), &checkpoint_dir.join("optimizer"))?;
            save_module_as(ema.clone(), &checkpoint_dir.join("ema"), config.checkpoint_dtype)?;
            save_state(&state, &state_path)?;
            curve.flush_and_plot(&config.out_dir.join("loss.png"))?;
        }
        if end.stop {
            progress(&format!("time budget reached after step {step}; saved"));
            break;
        }
    }
    let (first_loss, final_loss) = windows.finish();
    curve.flush_and_plot(&config.out_dir.join("loss.png"))?;
    let shipped = if config.ema_decay > 0.0 { ema } else { model.valid() };
    let pipeline_dir = config.out_dir.join("pipeline");
    write_pipeline(
        &shipped,
        &model_config,
        &config.vqvae_dir,
        &tokenizer_dir,
        &scheduler_config,
        &pipeline_dir,
        StoreDtype::F16,
    )?;
    progress(&format!("exported {}", pipeline_dir.display()));
    Ok(DiffusionTrainSummary {
        steps_done: step,
        first_loss,
        final_loss,
        seconds_per_step: timer.elapsed() / (step - first_step).max(1) as f64,
        parameters,
        pipeline_dir,
    })
}
