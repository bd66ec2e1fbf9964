//! `train-vqvae`, `train-transformer` and `export`: the two training stages of issue 8 and the
//! export of a stage-2 checkpoint (see `crates/vq-train/README.md` for the plan and the GPU
//! command lines).

use std::path::PathBuf;

use vq_train::diffusion::{train_diffusion, DiffusionTrainConfig};
use vq_train::train::export::StoreDtype;
use vq_train::vqvae::{train_vqvae, VqVaeTrainConfig};

/// Options shared by both stages.
#[derive(clap::Args, Clone)]
pub struct RunArgs {
    /// Backend: ndarray (CPU, slow), wgpu, cuda or cuda-unfused (xtask features).
    #[arg(long, default_value = "ndarray")]
    backend: String,
    /// Output folder of the run.
    #[arg(long)]
    out: PathBuf,
    /// Training steps (the cosine schedule's length).
    #[arg(long)]
    steps: Option<usize>,
    /// Images per step.
    #[arg(long)]
    batch_size: Option<usize>,
    /// Peak learning rate.
    #[arg(long)]
    lr: Option<f64>,
    /// Warm-up steps.
    #[arg(long)]
    warmup: Option<usize>,
    /// Wall-clock budget in minutes: training stops cleanly, saves and exports.
    #[arg(long)]
    max_minutes: Option<f64>,
    /// With --max-minutes: stop at the budget but keep the learning-rate schedule of --steps
    /// (by default it is shortened to end inside the budget); for a run continued over several calls.
    #[arg(long)]
    keep_schedule: bool,
    /// Progress line every N steps.
    #[arg(long, default_value_t = 50)]
    log_every: usize,
    /// Checkpoint every N steps.
    #[arg(long, default_value_t = 500)]
    checkpoint_every: usize,
    /// CPU threads rendering batches.
    #[arg(long, default_value_t = 4)]
    workers: usize,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Device indices sharing each batch (data parallelism), e.g. 0,1,2,3 on four GPUs, or 0,0 for
    /// two replicas on one CPU (on one GPU that is ≈ 3× slower); the batch size must split evenly.
    #[arg(long, value_delimiter = ',')]
    devices: Vec<u16>,
    /// Start from scratch even if the output folder has a checkpoint.
    #[arg(long)]
    fresh: bool,
}

#[derive(clap::Args, Clone)]
pub struct VqVaeArgs {
    #[command(flatten)]
    run: RunArgs,
    /// Channels per level, comma-separated (3 levels: 64 px → 16 × 16 tokens).
    #[arg(long, value_delimiter = ',')]
    channels: Option<Vec<usize>>,
    /// Codebook size K.
    #[arg(long)]
    codes: Option<usize>,
    /// GroupNorm groups (default 8: with one channel per group, flat colours are normalised away).
    #[arg(long)]
    groups: Option<usize>,
    /// Weight of object pixels in the reconstruction loss (default 10; background 1).
    #[arg(long)]
    foreground_weight: Option<f64>,
    /// Weight of the pixels on objects' outlines (replacing their foreground or background
    /// weight; default: no outline term).
    #[arg(long)]
    outline_weight: Option<f64>,
    /// Image side in pixels (stage 2 takes it from the VQ-VAE).
    #[arg(long, default_value_t = 64)]
    image_size: u32,
    /// Start from an exported `vqvae/` folder (its config.json fixes the architecture:
    /// --channels, --codes and --groups are then refused). Without --decoder-only or --keep-codes
    /// the first step re-seeds every code from the batch's latents: the codes are all new, and a
    /// pipeline's transformer needs `export --retarget`.
    #[arg(long, conflicts_with_all = ["channels", "codes", "groups"])]
    init_from: Option<PathBuf>,
    /// Train only the decoder (and post_quant_conv) of --init-from's VQ-VAE: encoder and codebook
    /// stay frozen, so each image keeps its codes and a transformer trained on them stays valid.
    #[arg(long, requires = "init_from")]
    decoder_only: bool,
    /// Train the whole VQ-VAE of --init-from but start from its codebook (no re-seeding): codes
    /// move with the encoder, so `export --retarget` matches most of them with themselves.
    #[arg(long, requires = "init_from", conflicts_with = "decoder_only")]
    keep_codes: bool,
    /// Fraction of training images repainted in free colours (background and objects drawn from
    /// the whole RGB cube, held-out colour–shape pairs kept out), so the codes carry shape apart
    /// from colour (default 0: the named colours only).
    #[arg(long, default_value_t = 0.0)]
    free_colors: f64,
}

#[derive(clap::Args, Clone)]
pub struct TransformerArgs {
    #[command(flatten)]
    run: RunArgs,
    /// The stage-1 `vqvae/` folder.
    #[arg(long)]
    vqvae: PathBuf,
    /// A full CLIP tokenizer folder to trim.
    #[arg(long, default_value = "fixtures/tiny/hub/tokenizer")]
    clip_tokenizer: PathBuf,
    /// Transformer blocks.
    #[arg(long)]
    layers: Option<usize>,
    /// Transformer heads (width = heads × 32 unless --head-dim).
    #[arg(long)]
    heads: Option<usize>,
    /// Transformer head width.
    #[arg(long)]
    head_dim: Option<usize>,
    /// Text encoder width.
    #[arg(long)]
    text_width: Option<usize>,
    /// Text encoder layers.
    #[arg(long)]
    text_layers: Option<usize>,
    /// λ of the auxiliary loss.
    #[arg(long)]
    aux_weight: Option<f64>,
    /// Weight EMA decay (0: export the raw weights).
    #[arg(long)]
    ema: Option<f64>,
    /// Store the checkpoint's weights and weight EMA in f16 (half the size; the run resumes
    /// from weights rounded to f16).
    #[arg(long)]
    half_checkpoints: bool,
    /// Start from an exported pipeline's text encoder, transformer and null embedding (its
    /// configs fix the sizes: --layers, --heads, --head-dim, --text-width and --text-layers
    /// are then refused). Its VQ-VAE codes must be --vqvae's: `export --retarget` moves a
    /// pipeline onto a new VQ-VAE. A checkpoint in --out takes precedence.
    #[arg(long, conflicts_with_all = ["layers", "heads", "head_dim", "text_width", "text_layers"])]
    init_from: Option<PathBuf>,
}

#[derive(clap::Args, Clone)]
pub struct ExportArgs {
    /// Backend (xtask features): only --retarget computes much (both VQ-VAEs encode
    /// --retarget-images images), so a GPU or flex shortens it; the other exports copy weights.
    #[arg(long, default_value = "ndarray")]
    backend: String,
    /// A `train-transformer` output folder (its checkpoint's weight EMA is exported).
    #[arg(long, required_unless_present = "pipeline")]
    run: Option<PathBuf>,
    /// Instead of --run: an exported pipeline whose `vqvae/` is replaced by --vqvae, a
    /// `train-vqvae --decoder-only` result (refused unless its encoder and codebook are the
    /// pipeline's, so the transformer keeps its codes; see --retarget). --out may be this folder.
    #[arg(long, conflicts_with = "run")]
    pipeline: Option<PathBuf>,
    /// With --pipeline: --vqvae has other codes (a stage-1 run that trained its encoder or
    /// codebook). Each new code takes the transformer's embedding and output row of the old code
    /// it most often replaces on the same latent pixels of training images — the start for
    /// `train-transformer --init-from`.
    #[arg(long, requires = "pipeline")]
    retarget: bool,
    /// Training images encoded by both VQ-VAEs to match their codes (--retarget).
    #[arg(long, default_value_t = 2048, requires = "retarget")]
    retarget_images: usize,
    /// The stage-1 `vqvae/` folder.
    #[arg(long)]
    vqvae: PathBuf,
    /// The pipeline folder to write.
    #[arg(long)]
    out: PathBuf,
    /// Store f32 instead of f16.
    #[arg(long)]
    f32: bool,
}

/// Ends the process at the first panic of any thread, after the usual message. A training run
/// has threads that wait on each other (replicas, batch workers, CubeCL's device servers): a
/// device server that panicked kept panicking on every later command while the replicas waited
/// for it, and the run hung until it was killed, its checkpoint unsaved either way.
fn abort_on_panic() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        report(info);
        std::process::abort();
    }));
}

fn print_line(line: &str) {
    println!("{line}");
}

pub fn run_vqvae(args: VqVaeArgs) -> Result<(), String> {
    abort_on_panic();
    let r = &args.run;
    let defaults = VqVaeTrainConfig::default();
    let config = VqVaeTrainConfig {
        out_dir: r.out.clone(),
        block_out_channels: args.channels.clone().unwrap_or(defaults.block_out_channels),
        num_vq_embeddings: args.codes.unwrap_or(defaults.num_vq_embeddings),
        norm_num_groups: args.groups.unwrap_or(defaults.norm_num_groups),
        foreground_weight: args.foreground_weight.unwrap_or(defaults.foreground_weight),
        outline_weight: args.outline_weight,
        batch_size: r.batch_size.unwrap_or(defaults.batch_size),
        steps: r.steps.unwrap_or(defaults.steps),
        learning_rate: r.lr.unwrap_or(defaults.learning_rate),
        warmup_steps: r.warmup.unwrap_or(defaults.warmup_steps),
        device_indices: r.devices.clone(),
        max_minutes: r.max_minutes,
        keep_schedule: r.keep_schedule,
        log_every: r.log_every,
        checkpoint_every: r.checkpoint_every,
        workers: r.workers,
        seed: r.seed,
        resume: !r.fresh,
        init_from: args.init_from.clone(),
        decoder_only: args.decoder_only,
        keep_codes: args.keep_codes,
        free_colors: args.free_colors,
        dataset: vq_train::data::DatasetConfig { image_size: args.image_size, ..defaults.dataset.clone() },
        ..defaults
    };
    crate::with_backend!(r.backend.as_str(), vqvae_on, &config, autodiff)
}

fn vqvae_on<B: vq_train::TrainBackend>(config: &VqVaeTrainConfig) -> Result<(), String> {
    let summary = train_vqvae::<B>(config, &Default::default(), &mut print_line).map_err(|e| e.to_string())?;
    println!(
        "VQ-VAE: {} steps, loss {:.4} → {:.4}, codebook use {:.1} %, {:.3} s/step; wrote {}",
        summary.steps_done,
        summary.first_loss,
        summary.final_loss,
        100.0 * summary.codebook_usage,
        summary.seconds_per_step,
        summary.vqvae_dir.display()
    );
    Ok(())
}

pub fn run_transformer(args: TransformerArgs) -> Result<(), String> {
    abort_on_panic();
    let r = &args.run;
    let defaults = DiffusionTrainConfig::default();
    let config = DiffusionTrainConfig {
        out_dir: r.out.clone(),
        vqvae_dir: args.vqvae.clone(),
        clip_tokenizer_dir: args.clip_tokenizer.clone(),
        layers: args.layers.unwrap_or(defaults.layers),
        heads: args.heads.unwrap_or(defaults.heads),
        head_dim: args.head_dim.unwrap_or(defaults.head_dim),
        text_width: args.text_width.unwrap_or(defaults.text_width),
        text_layers: args.text_layers.unwrap_or(defaults.text_layers),
        auxiliary_loss_weight: args.aux_weight.unwrap_or(defaults.auxiliary_loss_weight),
        ema_decay: args.ema.unwrap_or(defaults.ema_decay),
        checkpoint_dtype: if args.half_checkpoints { StoreDtype::F16 } else { StoreDtype::F32 },
        batch_size: r.batch_size.unwrap_or(defaults.batch_size),
        steps: r.steps.unwrap_or(defaults.steps),
        learning_rate: r.lr.unwrap_or(defaults.learning_rate),
        warmup_steps: r.warmup.unwrap_or(defaults.warmup_steps),
        device_indices: r.devices.clone(),
        max_minutes: r.max_minutes,
        keep_schedule: r.keep_schedule,
        log_every: r.log_every,
        checkpoint_every: r.checkpoint_every,
        workers: r.workers,
        seed: r.seed,
        resume: !r.fresh,
        init_from: args.init_from.clone(),
        ..defaults
    };
    crate::with_backend!(r.backend.as_str(), transformer_on, &config, autodiff)
}

fn transformer_on<B: vq_train::TrainBackend>(config: &DiffusionTrainConfig) -> Result<(), String> {
    let summary = train_diffusion::<B>(config, &Default::default(), &mut print_line).map_err(|e| e.to_string())?;
    println!(
        "transformer: {} parameters, {} steps, loss {:.4} → {:.4}, {:.3} s/step; exported {}",
        summary.parameters,
        summary.steps_done,
        summary.first_loss,
        summary.final_loss,
        summary.seconds_per_step,
        summary.pipeline_dir.display()
    );
    Ok(())
}

/// Exports on --backend (ndarray unless given: reading and writing weights needs no speed).
pub fn run_export(args: ExportArgs) -> Result<(), String> {
    crate::with_backend!(args.backend.clone().as_str(), export, args)
}

fn export<B: vq_kernels::KernelBackend>(args: ExportArgs, device: B::Device) -> Result<(), String> {
    use vq_train::diffusion::{export_checkpoint, retarget_pipeline, swap_vqvae};
    let dtype = if args.f32 { StoreDtype::F32 } else { StoreDtype::F16 };
    match (&args.run, &args.pipeline) {
        (Some(run), _) => export_checkpoint::<B>(run, &args.vqvae, &args.out, dtype, &device),
        (None, Some(pipeline)) if args.retarget => {
            let progress = &mut print_line;
            retarget_pipeline::<B>(pipeline, &args.vqvae, &args.out, args.retarget_images, dtype, &device, progress)
                .map(|m| {
                    println!(
                        "codes matched on {} images: {:.1} % of latent pixels agree, {} of {} new codes unused",
                        args.retarget_images,
                        100.0 * m.agreement,
                        m.unused,
                        m.old_of_new.len()
                    )
                })
        }
        (None, Some(pipeline)) => swap_vqvae::<B>(pipeline, &args.vqvae, &args.out, dtype, &device),
        (None, None) => unreachable!("clap requires --run or --pipeline"),
    }
    .map_err(|e| e.to_string())?;
    println!("wrote {}", args.out.display());
    Ok(())
}
