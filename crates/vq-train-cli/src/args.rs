//! The command line: subcommands, flags, their defaults and help, and the mapping of the flags
//! onto the library's configs — the shared run flags onto [`RunConfig`] once
//! ([`RunArgs::run_config`]), each stage's own flags onto its config.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use vq_train::data::MIN_IMAGE_SIZE;
use vq_train::diffusion::DiffusionTrainConfig;
use vq_train::train::export::StoreDtype;
use vq_train::train::RunConfig;
use vq_train::vqvae::VqVaeTrainConfig;

use crate::backend::{compiled_in, BackendKind};
use crate::eval::EvalArgs;

/// The exit-status paragraph of the help (a macro so that `concat!` can use it).
macro_rules! exit_codes {
    () => {
        "Exit status: 0 success; 2 usage error (unknown or malformed flag, a value out of range, flags that\n\
         contradict each other, a backend not compiled in); 1 any other error (a folder that cannot be\n\
         read or written, a model or checkpoint that does not load, a loss that is not finite). Errors\n\
         are one line on stderr starting with `error:`; progress goes to stderr, the written folder's\n\
         path (and eval's tables) to stdout."
    };
}

/// `vq-train`: train a VQ-Diffusion model of the procedural shapes dataset, export it, score it.
#[derive(Debug, Parser)]
#[command(
    name = "vq-train",
    version,
    about = "Train, export and score VQ-Diffusion models of the procedural shapes dataset on burn",
    long_about = "Train, export and score VQ-Diffusion models of the procedural shapes dataset on burn.\n\n\
        Stage 1 (`vqvae`) trains the VQ-VAE that turns 64 × 64 images into 16 × 16 tokens; stage 2 \
        (`transformer`) trains the text encoder and the discrete diffusion transformer on the tokens \
        of that frozen VQ-VAE and exports a diffusers-layout pipeline that `vq-diffusion generate \
        --model DIR` draws with. Runs resume from their checkpoint, stop cleanly at a time budget, \
        and write a loss curve (loss.csv, loss.png).",
    after_help = concat!(
        "Examples (a CPU smoke run of both stages, about a minute):\n",
        "  vq-train vqvae --out runs/smoke/vq --steps 60 --batch-size 8 --channels 8,16,32 --codes 32 \\\n",
        "      --image-size 32 --warmup 10 --log-every 20\n",
        "  vq-train transformer --out runs/smoke/tr --vqvae runs/smoke/vq/vqvae --steps 200 --batch-size 8 \\\n",
        "      --layers 2 --heads 2 --head-dim 16 --text-width 32 --text-layers 1 --warmup 10 --lr 1e-3\n",
        "  vq-train eval --model runs/smoke/tr/pipeline --count 8\n\n",
        "Run `vq-train <COMMAND> --help` for every option.\n\n",
        exit_codes!(),
    ),
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Stage 1: train the VQ-VAE and write its `vqvae/` folder.
    Vqvae(VqVaeArgs),
    /// Stage 2: train text encoder + transformer on a frozen VQ-VAE's tokens and export the pipeline.
    Transformer(TransformerArgs),
    /// Export a stage-2 checkpoint as a pipeline folder, or put another VQ-VAE into a pipeline.
    Export(ExportArgs),
    /// Score a pipeline (or a VQ-VAE's reconstructions) on prompts it never saw in training.
    Eval(EvalArgs),
}

/// `--backend`, shared by every command.
#[derive(Debug, Clone, clap::Args)]
pub struct BackendArgs {
    /// Compute backend; only the backends compiled in (cargo features of vq-train-cli) can run.
    #[arg(long, value_enum, value_name = "BACKEND", default_value_t = BackendKind::preferred(),
          help = backend_help(), long_help = backend_help())]
    pub backend: BackendKind,
}

/// The help of `--backend`, naming the backends of this build.
fn backend_help() -> String {
    format!(
        "Compute backend; only the backends compiled in (cargo features of vq-train-cli) can run: in this build {}",
        compiled_in().join(", ")
    )
}

/// The flags both training stages share; [`RunArgs::run_config`] maps them onto a [`RunConfig`].
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// The compute backend.
    #[command(flatten)]
    pub backend: BackendArgs,
    /// Output folder of the run: the result, `checkpoint/`, `loss.csv`, `loss.png` (created if
    /// missing). A run resumes from its checkpoint unless --fresh.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    #[arg(long, value_name = "N", value_parser = at_least_one,
          help = with_defaults("Training steps (the length of the cosine schedule)", |r| r.steps))]
    pub steps: Option<usize>,
    #[arg(long, value_name = "N", value_parser = at_least_one,
          help = with_defaults("Images per step", |r| r.batch_size))]
    pub batch_size: Option<usize>,
    #[arg(long, value_name = "LR", value_parser = non_negative,
          help = with_defaults("Peak AdamW learning rate", |r| r.learning_rate))]
    pub lr: Option<f64>,
    #[arg(long, value_name = "N", help = with_defaults("Linear warm-up steps", |r| r.warmup_steps))]
    pub warmup: Option<usize>,
    #[arg(long, value_name = "W", value_parser = non_negative,
          help = with_defaults("AdamW's decoupled weight decay", |r| r.weight_decay))]
    pub weight_decay: Option<f64>,
    /// Wall-clock budget in minutes: training stops cleanly, saves and exports. The schedule is
    /// shortened to end inside it (the step rate of steps 10–30 of the process sets the new length).
    #[arg(long, value_name = "MIN", value_parser = non_negative)]
    pub max_minutes: Option<f64>,
    /// With --max-minutes: stop at the budget but keep the learning-rate schedule of --steps, for a
    /// run continued over several calls.
    #[arg(long)]
    pub keep_schedule: bool,
    #[arg(long, value_name = "N", value_parser = at_least_one,
          help = with_defaults("A progress line every N steps (and at steps 1, 2, 3, 5, 10, 20)", |r| r.log_every))]
    pub log_every: Option<usize>,
    #[arg(long, value_name = "N", value_parser = at_least_one,
          help = with_defaults("A checkpoint every N steps (and at the end)", |r| r.checkpoint_every))]
    pub checkpoint_every: Option<usize>,
    #[arg(long, value_name = "N", value_parser = at_least_one,
          help = with_defaults("CPU threads rendering batches", |r| r.workers))]
    pub workers: Option<usize>,
    #[arg(long, value_name = "S", help = with_defaults("Seed of the dataset stream and the generators", |r| r.seed))]
    pub seed: Option<u64>,
    /// Device indices sharing each batch (data parallelism), e.g. 0,1,2,3 on four GPUs, or 0,0 for
    /// two replicas on one CPU (on one GPU that is slower); the batch size must split evenly.
    #[arg(long, value_name = "I,J,…", value_delimiter = ',')]
    pub devices: Vec<u16>,
    /// Start from scratch even if the output folder has a checkpoint.
    #[arg(long)]
    pub fresh: bool,
    /// Start from an exported model's weights instead of a random initialisation; its configs fix
    /// the architecture. vqvae: a `vqvae/` folder (without --decoder-only or --keep-codes the first
    /// step re-seeds every code, so a pipeline's transformer then needs `export --retarget`).
    /// transformer: a pipeline folder whose VQ-VAE codes are --vqvae's. A checkpoint in --out
    /// takes precedence.
    #[arg(long, value_name = "DIR")]
    pub init_from: Option<PathBuf>,
}

/// `text` and the default of the run field `field` in each stage ("[default: 3000 for vqvae,
/// 4000 for transformer]"), from the stages' configs.
fn with_defaults<T: PartialEq + std::fmt::Display>(text: &str, field: impl Fn(&RunConfig) -> T) -> String {
    let (vqvae, transformer) = (field(&VqVaeTrainConfig::default().run), field(&DiffusionTrainConfig::default().run));
    match vqvae == transformer {
        true => format!("{text} [default: {vqvae}]"),
        false => format!("{text} [default: {vqvae} for vqvae, {transformer} for transformer]"),
    }
}

/// `text` and its default `value`.
fn with_default(text: &str, value: impl std::fmt::Display) -> String {
    format!("{text} [default: {value}]")
}

/// A field of stage 1's default config.
fn vqvae_default<T>(field: impl Fn(&VqVaeTrainConfig) -> T) -> T {
    field(&VqVaeTrainConfig::default())
}

/// A field of stage 2's default config.
fn transformer_default<T>(field: impl Fn(&DiffusionTrainConfig) -> T) -> T {
    field(&DiffusionTrainConfig::default())
}

impl RunArgs {
    /// The run configuration: these flags over a stage's defaults `defaults`.
    pub fn run_config(&self, defaults: RunConfig) -> RunConfig {
        RunConfig {
            out_dir: self.out.clone(),
            batch_size: self.batch_size.unwrap_or(defaults.batch_size),
            steps: self.steps.unwrap_or(defaults.steps),
            learning_rate: self.lr.unwrap_or(defaults.learning_rate),
            warmup_steps: self.warmup.unwrap_or(defaults.warmup_steps),
            weight_decay: self.weight_decay.map_or(defaults.weight_decay, |w| w as f32),
            device_indices: self.devices.clone(),
            max_minutes: self.max_minutes,
            keep_schedule: self.keep_schedule,
            log_every: self.log_every.unwrap_or(defaults.log_every),
            checkpoint_every: self.checkpoint_every.unwrap_or(defaults.checkpoint_every),
            workers: self.workers.unwrap_or(defaults.workers),
            seed: self.seed.unwrap_or(defaults.seed),
            resume: !self.fresh,
            init_from: self.init_from.clone(),
            dataset: defaults.dataset,
        }
    }
}

/// `vq-train vqvae`: stage 1.
#[derive(Debug, Clone, clap::Args)]
#[command(
    long_about = "Stage 1: train the VQ-VAE (encoder, EMA codebook, decoder) that turns images into \
        tokens, with a straight-through estimator, a commitment loss and restarts of unused codes; \
        object pixels weigh more than the background in the reconstruction loss. Writes \
        OUT/vqvae/ (diffusers VQModel: config.json + diffusion_pytorch_model.safetensors), \
        OUT/checkpoint/, OUT/loss.csv (step, loss, l1, l2, commitment, restarted, lr, seconds) and \
        OUT/loss.png; prints the vqvae/ folder's path to stdout.",
    after_help = concat!(
        "Examples:\n",
        "  vq-train vqvae --out runs/vqvae                       (the shapes model's stage 1: 3,000 steps of 64)\n",
        "  vq-train vqvae --out runs/vqdec --init-from models/shapes/vqvae --decoder-only --lr 1e-4 \\\n",
        "      --warmup 50 --steps 500                           (a sharper decoder, the codes kept)\n\n",
        exit_codes!(),
    )
)]
pub struct VqVaeArgs {
    /// The flags both stages share.
    #[command(flatten)]
    pub run: RunArgs,
    #[arg(long, value_name = "C,…", value_delimiter = ',', value_parser = at_least_one, conflicts_with = "init_from",
          help = with_default("Channels per level, comma-separated (3 levels: 64 px → 16 × 16 tokens)",
              vqvae_default(|c| c.block_out_channels.iter().map(usize::to_string).collect::<Vec<_>>().join(","))))]
    pub channels: Option<Vec<usize>>,
    #[arg(long, value_name = "K", value_parser = at_least_one, conflicts_with = "init_from",
          help = with_default("Codebook size K", vqvae_default(|c| c.num_vq_embeddings)))]
    pub codes: Option<usize>,
    #[arg(long, value_name = "G", value_parser = at_least_one, conflicts_with = "init_from",
          help = with_default("GroupNorm groups (with one channel per group, flat colours are normalised away)",
              vqvae_default(|c| c.norm_num_groups)))]
    pub groups: Option<usize>,
    #[arg(long, value_name = "W", value_parser = positive,
          help = with_default("Weight of object pixels in the reconstruction loss (background 1)",
              vqvae_default(|c| c.foreground_weight)))]
    pub foreground_weight: Option<f64>,
    /// Weight of the pixels on objects' outlines (replacing their foreground or background
    /// weight). Default: no outline term.
    #[arg(long, value_name = "W", value_parser = positive)]
    pub outline_weight: Option<f64>,
    /// Image side in pixels (stage 2 takes it from the VQ-VAE).
    #[arg(long, value_name = "PX", default_value_t = 64, value_parser = image_side)]
    pub image_size: u32,
    /// Train only the decoder (and post_quant_conv) of --init-from's VQ-VAE: encoder and codebook
    /// stay frozen, so each image keeps its codes and a transformer trained on them stays valid.
    #[arg(long, requires = "init_from")]
    pub decoder_only: bool,
    /// Train the whole VQ-VAE of --init-from but start from its codebook (no re-seeding): codes
    /// move with the encoder, so `export --retarget` matches most of them with themselves.
    #[arg(long, requires = "init_from", conflicts_with = "decoder_only")]
    pub keep_codes: bool,
    /// Fraction of training images repainted in free colours (background and objects drawn from
    /// the whole RGB cube, held-out colour–shape pairs kept out), so that the codes carry shape
    /// apart from colour.
    #[arg(long, value_name = "F", default_value_t = 0.0, value_parser = fraction)]
    pub free_colors: f64,
}

impl VqVaeArgs {
    /// Stage 1's config: the shared flags ([`RunArgs::run_config`]) and these over the defaults.
    pub fn config(&self) -> VqVaeTrainConfig {
        let defaults = VqVaeTrainConfig::default();
        let mut run = self.run.run_config(defaults.run.clone());
        run.dataset.image_size = self.image_size;
        VqVaeTrainConfig {
            run,
            block_out_channels: self.channels.clone().unwrap_or(defaults.block_out_channels),
            num_vq_embeddings: self.codes.unwrap_or(defaults.num_vq_embeddings),
            norm_num_groups: self.groups.unwrap_or(defaults.norm_num_groups),
            foreground_weight: self.foreground_weight.unwrap_or(defaults.foreground_weight),
            outline_weight: self.outline_weight,
            decoder_only: self.decoder_only,
            keep_codes: self.keep_codes,
            free_colors: self.free_colors,
            ..defaults
        }
    }
}

/// `vq-train transformer`: stage 2.
#[derive(Debug, Clone, clap::Args)]
#[command(
    long_about = "Stage 2: train the CLIP-architecture text encoder and the discrete diffusion \
        transformer jointly on tokens of the frozen --vqvae (VQ-Diffusion's mask-and-replace \
        objective: the variational-bound KL plus the auxiliary x0 loss, importance-sampled \
        timesteps, captions dropped for classifier-free guidance, a weight EMA). The CLIP tokenizer \
        is trimmed to the captions' words. Writes OUT/pipeline/ (the weight EMA in the diffusers \
        hub layout, f16; `vq-diffusion generate --model OUT/pipeline` draws with it), \
        OUT/tokenizer/, OUT/model_config.json, OUT/checkpoint/, OUT/loss.csv (step, loss, vb, aux, \
        mean_t, lr, seconds) and OUT/loss.png; prints the pipeline folder's path to stdout.",
    after_help = concat!(
        "Examples:\n",
        "  vq-train transformer --out runs/diffusion --vqvae runs/vqvae/vqvae   (4,000 steps of 128)\n",
        "  vq-train transformer --out runs/moved --vqvae runs/retargeted/vqvae --init-from runs/retargeted \\\n",
        "      --lr 3e-4 --warmup 100                     (continue a pipeline moved onto new codes)\n\n",
        exit_codes!(),
    )
)]
pub struct TransformerArgs {
    /// The flags both stages share.
    #[command(flatten)]
    pub run: RunArgs,
    /// The stage-1 `vqvae/` folder.
    #[arg(long, value_name = "DIR")]
    pub vqvae: PathBuf,
    /// A full CLIP tokenizer folder (vocab.json, merges.txt) to trim to the captions' words; the
    /// default is the one a checkout of this repository has.
    #[arg(long, value_name = "DIR", default_value = "fixtures/tiny/hub/tokenizer")]
    pub clip_tokenizer: PathBuf,
    #[arg(long, value_name = "N", value_parser = at_least_one, conflicts_with = "init_from",
          help = with_default("Transformer blocks", transformer_default(|c| c.layers)))]
    pub layers: Option<usize>,
    #[arg(long, value_name = "N", value_parser = at_least_one, conflicts_with = "init_from",
          help = with_default("Transformer heads (width = heads × head width)", transformer_default(|c| c.heads)))]
    pub heads: Option<usize>,
    #[arg(long, value_name = "N", value_parser = at_least_one, conflicts_with = "init_from",
          help = with_default("Transformer head width", transformer_default(|c| c.head_dim)))]
    pub head_dim: Option<usize>,
    #[arg(long, value_name = "N", value_parser = at_least_one, conflicts_with = "init_from",
          help = with_default("Text encoder width", transformer_default(|c| c.text_width)))]
    pub text_width: Option<usize>,
    #[arg(long, value_name = "N", value_parser = at_least_one, conflicts_with = "init_from",
          help = with_default("Text encoder layers", transformer_default(|c| c.text_layers)))]
    pub text_layers: Option<usize>,
    #[arg(long, value_name = "λ", value_parser = non_negative,
          help = with_default("λ of the auxiliary x0 loss", transformer_default(|c| c.auxiliary_loss_weight)))]
    pub aux_weight: Option<f64>,
    #[arg(long, value_name = "D", value_parser = fraction,
          help = with_default("Decay of the weight EMA that is exported (0: export the raw weights)",
              transformer_default(|c| c.ema_decay)))]
    pub ema: Option<f64>,
    /// Store the checkpoint's weights and weight EMA in f16 (half the size; the run resumes
    /// from weights rounded to f16).
    #[arg(long)]
    pub half_checkpoints: bool,
    /// The share of training scenes that are two objects whose caption names no position ("a red
    /// circle and a blue square on a white background"); the other scenes keep their proportions.
    /// Without it the rates give 0.35 × (1 − 0.75) = 0.0875. E.g. 0.3 to fine-tune a model that
    /// draws extra copies of unpositioned pairs.
    #[arg(long, value_name = "SHARE", value_parser = fraction)]
    pub unpositioned_pairs: Option<f64>,
}

impl TransformerArgs {
    /// Stage 2's config: the shared flags ([`RunArgs::run_config`]) and these over the defaults.
    pub fn config(&self) -> DiffusionTrainConfig {
        let defaults = DiffusionTrainConfig::default();
        let mut config = DiffusionTrainConfig {
            run: self.run.run_config(defaults.run.clone()),
            vqvae_dir: self.vqvae.clone(),
            clip_tokenizer_dir: self.clip_tokenizer.clone(),
            layers: self.layers.unwrap_or(defaults.layers),
            heads: self.heads.unwrap_or(defaults.heads),
            head_dim: self.head_dim.unwrap_or(defaults.head_dim),
            text_width: self.text_width.unwrap_or(defaults.text_width),
            text_layers: self.text_layers.unwrap_or(defaults.text_layers),
            auxiliary_loss_weight: self.aux_weight.unwrap_or(defaults.auxiliary_loss_weight),
            ema_decay: self.ema.unwrap_or(defaults.ema_decay),
            checkpoint_dtype: if self.half_checkpoints { StoreDtype::F16 } else { StoreDtype::F32 },
            ..defaults
        };
        config.run.dataset.unpositioned_pairs = self.unpositioned_pairs;
        config
    }
}

/// `vq-train export`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = concat!(
    "Examples:\n",
    "  vq-train export --run runs/diffusion --vqvae runs/vqvae/vqvae --out models/mine\n",
    "  vq-train export --pipeline models/shapes --vqvae runs/vqdec/vqvae --out models/shapes\n",
    "  vq-train export --pipeline models/shapes --vqvae runs/vqj/vqvae --retarget --out runs/retargeted\n\n",
    exit_codes!(),
))]
pub struct ExportArgs {
    /// The compute backend: only --retarget computes much (both VQ-VAEs encode --retarget-images
    /// images); the other exports copy weights.
    #[command(flatten)]
    pub backend: BackendArgs,
    /// A `transformer` output folder (its checkpoint's weight EMA is exported).
    #[arg(long, value_name = "DIR", required_unless_present = "pipeline")]
    pub run: Option<PathBuf>,
    /// Instead of --run: an exported pipeline whose `vqvae/` is replaced by --vqvae, a
    /// `vqvae --decoder-only` result (refused unless its encoder and codebook are the pipeline's,
    /// so the transformer keeps its codes; see --retarget). --out may be this folder.
    #[arg(long, value_name = "DIR", conflicts_with = "run")]
    pub pipeline: Option<PathBuf>,
    /// With --pipeline: --vqvae has other codes (a stage-1 run that trained its encoder or
    /// codebook). Each new code takes the transformer's embedding and output row of the old code
    /// it most often replaces on the same latent pixels of training images — the start for
    /// `transformer --init-from`.
    #[arg(long, requires = "pipeline")]
    pub retarget: bool,
    /// Training images encoded by both VQ-VAEs to match their codes (--retarget).
    #[arg(long, value_name = "N", default_value_t = 2048, value_parser = at_least_one, requires = "retarget")]
    pub retarget_images: usize,
    /// The stage-1 `vqvae/` folder.
    #[arg(long, value_name = "DIR")]
    pub vqvae: PathBuf,
    /// The pipeline folder to write.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Store f32 instead of f16.
    #[arg(long)]
    pub f32: bool,
}

/// A count of at least one.
pub(crate) fn at_least_one(value: &str) -> Result<usize, String> {
    match value.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

/// A finite number ≥ 0.
fn non_negative(value: &str) -> Result<f64, String> {
    let x = value.parse::<f64>().map_err(|e| e.to_string())?;
    match x.is_finite() && x >= 0.0 {
        true => Ok(x),
        false => Err("must be a finite number ≥ 0".into()),
    }
}

/// A finite number > 0.
fn positive(value: &str) -> Result<f64, String> {
    let x = value.parse::<f64>().map_err(|e| e.to_string())?;
    match x.is_finite() && x > 0.0 {
        true => Ok(x),
        false => Err("must be a finite number > 0".into()),
    }
}

/// A number in [0, 1].
fn fraction(value: &str) -> Result<f64, String> {
    let x = value.parse::<f64>().map_err(|e| e.to_string())?;
    match (0.0..=1.0).contains(&x) {
        true => Ok(x),
        false => Err("must be a fraction in [0, 1]".into()),
    }
}

/// An image side the dataset can draw.
fn image_side(value: &str) -> Result<u32, String> {
    let side = value.parse::<u32>().map_err(|e| e.to_string())?;
    match side >= MIN_IMAGE_SIZE {
        true => Ok(side),
        false => Err(format!("must be at least {MIN_IMAGE_SIZE}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Command {
        Cli::try_parse_from(std::iter::once("vq-train").chain(args.iter().copied())).expect("valid flags").command
    }

    #[test]
    fn without_flags_each_stage_keeps_its_own_defaults() {
        let Command::Vqvae(vqvae) = parse(&["vqvae", "--out", "runs/a"]) else { panic!("vqvae") };
        let config = vqvae.config();
        let defaults = VqVaeTrainConfig::default();
        assert_eq!(config.run, RunConfig { out_dir: "runs/a".into(), ..defaults.run });
        assert_eq!((config.block_out_channels, config.num_vq_embeddings), (vec![32, 64, 128], 256));
        let Command::Transformer(transformer) = parse(&["transformer", "--out", "runs/b", "--vqvae", "v"]) else {
            panic!("transformer")
        };
        let config = transformer.config();
        let defaults = DiffusionTrainConfig::default();
        assert_eq!(config.run, RunConfig { out_dir: "runs/b".into(), ..defaults.run });
        assert_eq!((config.run.batch_size, config.run.learning_rate), (128, 5e-4));
        assert_eq!((config.layers, config.ema_decay, config.checkpoint_dtype), (6, 0.999, StoreDtype::F32));
        assert_eq!(config.run.dataset.unpositioned_pairs, None);
    }

    #[test]
    fn unpositioned_pairs_set_the_transformer_runs_dataset() {
        let Command::Transformer(transformer) =
            parse(&["transformer", "--out", "o", "--vqvae", "v", "--unpositioned-pairs", "0.3"])
        else {
            panic!("transformer")
        };
        let config = transformer.config();
        assert_eq!(config.run.dataset.unpositioned_pairs, Some(0.3));
        assert!((config.run.dataset.unpositioned_pair_share() - 0.3).abs() < 1e-12);
        // Everything else of the dataset stays the default.
        let dataset = vq_train::data::DatasetConfig { unpositioned_pairs: None, ..config.run.dataset };
        assert_eq!(dataset, vq_train::data::DatasetConfig::default());
    }

    #[test]
    fn the_shared_flags_set_the_same_run_fields_in_both_stages() {
        let shared = [
            "--out",
            "o",
            "--steps",
            "7",
            "--batch-size",
            "4",
            "--lr",
            "1e-3",
            "--warmup",
            "2",
            "--weight-decay",
            "0.5",
            "--max-minutes",
            "1.5",
            "--keep-schedule",
            "--log-every",
            "3",
            "--checkpoint-every",
            "5",
            "--workers",
            "2",
            "--seed",
            "9",
            "--devices",
            "0,0",
            "--fresh",
            "--init-from",
            "start",
        ];
        let expected = |dataset| RunConfig {
            out_dir: "o".into(),
            batch_size: 4,
            steps: 7,
            learning_rate: 1e-3,
            warmup_steps: 2,
            weight_decay: 0.5,
            device_indices: vec![0, 0],
            max_minutes: Some(1.5),
            keep_schedule: true,
            log_every: 3,
            checkpoint_every: 5,
            workers: 2,
            seed: 9,
            resume: false,
            init_from: Some("start".into()),
            dataset,
        };
        let args: Vec<&str> = ["vqvae", "--image-size", "32"].into_iter().chain(shared).collect();
        let Command::Vqvae(vqvae) = parse(&args) else { panic!("vqvae") };
        let dataset = vq_train::data::DatasetConfig { image_size: 32, ..Default::default() };
        assert_eq!(vqvae.config().run, expected(dataset));
        let args: Vec<&str> = ["transformer", "--vqvae", "v"].into_iter().chain(shared).collect();
        let Command::Transformer(transformer) = parse(&args) else { panic!("transformer") };
        assert_eq!(transformer.config().run, expected(Default::default()));
    }

    #[test]
    fn the_help_names_each_stages_defaults() {
        assert_eq!(
            with_defaults("Images per step", |r| r.batch_size),
            "Images per step [default: 64 for vqvae, 128 for transformer]"
        );
        assert_eq!(with_defaults("Seed", |r| r.seed), "Seed [default: 0]");
        let help = |command: &str| {
            let mut cli = <Cli as clap::CommandFactory>::command();
            // Folded: help wraps at the terminal's width.
            let text = cli.find_subcommand_mut(command).expect("a subcommand").render_long_help().to_string();
            text.split_whitespace().collect::<Vec<_>>().join(" ")
        };
        let vqvae = help("vqvae");
        for default in
            ["tokens) [default: 32,64,128]", "Codebook size K [default: 256]", "(background 1) [default: 10]"]
        {
            assert!(vqvae.contains(default), "{default:?} missing from:\n{vqvae}");
        }
        let transformer = help("transformer");
        for default in ["Transformer blocks [default: 6]", "x0 loss [default: 0.05]", "raw weights) [default: 0.999]"] {
            assert!(transformer.contains(default), "{default:?} missing from:\n{transformer}");
        }
    }

    #[test]
    fn out_of_range_values_are_usage_errors() {
        for args in [
            &["vqvae", "--out", "o", "--batch-size", "0"][..],
            &["vqvae", "--out", "o", "--free-colors", "1.5"],
            &["vqvae", "--out", "o", "--foreground-weight", "0"],
            &["vqvae", "--out", "o", "--image-size", "16"],
            &["vqvae", "--out", "o", "--lr", "NaN"],
            &["vqvae", "--out", "o", "--decoder-only"],
            &["vqvae", "--out", "o", "--init-from", "v", "--codes", "8"],
            &["transformer", "--out", "o", "--vqvae", "v", "--init-from", "p", "--layers", "2"],
            &["transformer", "--out", "o", "--vqvae", "v", "--unpositioned-pairs", "1.2"],
            &["export", "--vqvae", "v", "--out", "o"],
        ] {
            let error = Cli::try_parse_from(std::iter::once("vq-train").chain(args.iter().copied())).unwrap_err();
            assert_eq!(error.exit_code(), 2, "{args:?}: {error}");
        }
    }
}
