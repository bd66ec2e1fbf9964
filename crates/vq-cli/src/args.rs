//! The command line: flags, their defaults and help, and the range checks clap cannot express.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use vq_pipeline::{EngineChoice, Precision, RevealOrder, Sampler, TruncationMode};
use vq_serve::{ServeConfig, API_KEY_ENV};

use crate::error::CliError;
use crate::format::ImageFormat;

/// The environment variable naming the model used when `--model` is not given.
pub const MODEL_ENV: &str = "VQ_DIFFUSION_MODEL";

/// The file written when `--output` is not given.
pub const DEFAULT_OUTPUT: &str = "vq-diffusion.png";

/// The most images one run makes (prompts × `--num-images-per-prompt`): the batch is one tensor,
/// and every image one file.
pub const MAX_IMAGES: usize = 1024;

const ABOUT: &str = "VQ-Diffusion text-to-image on burn, seed for seed identical to diffusers' VQDiffusionPipeline";

/// The exit-status paragraph of both help texts (a macro so that `concat!` can use it).
macro_rules! exit_codes {
    () => {
        "Exit status: 0 success; 2 usage error (unknown or malformed flag, missing --prompt, a value \
         out of range, more than 1024 images, an --output extension that is no image format, two \
         outputs that are the same file, a backend not compiled in, --steps above the model's \
         num_train_timesteps); 1 any other error (model not found or unreadable, corrupt weights, \
         invalid configs, unsupported --dtype, an output that cannot be written or is a FIFO, device or \
         folder, a picture, mask or token file that is missing, unreadable or of the wrong size). \
         Errors are one line on stderr starting with `error:`."
    };
}

/// `vq-diffusion`: generate images from text with a VQ-Diffusion pipeline.
#[derive(Debug, Parser)]
#[command(
    name = "vq-diffusion",
    version,
    about = ABOUT,
    after_help = concat!(
        "Example:\n  vq-diffusion generate --model microsoft/vq-diffusion-ithq \\\n",
        "    --prompt \"teddy bear playing in the pool\" --seed 0 --output teddy.png\n\n",
        "Run `vq-diffusion generate --help` for every option, `vq-diffusion serve --help` for the HTTP server.\n\n",
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
    /// Generate images from one or more prompts, or edit a picture (inpainting, variations).
    Generate(GenerateArgs),
    /// Serve a model over HTTP: an images API, metrics and a web page.
    Serve(ServeArgs),
    /// Encode a picture into the model's token ids (JSON).
    Encode(crate::codec::EncodeArgs),
    /// Decode token ids (JSON, as --tokens writes them) into pictures.
    Decode(crate::codec::DecodeArgs),
    /// Describe a model: sizes, vocabulary, sampling defaults, where it is loaded from.
    #[command(long_about = crate::info::LONG_ABOUT)]
    Info(crate::info::InfoArgs),
}

/// `vq-diffusion generate`.
#[derive(Debug, Clone, clap::Args)]
#[command(
    long_about = "Generate images from one or more prompts.\n\n\
        Loads a VQ-Diffusion pipeline (a local folder in the hub or save_pretrained layout, or a \
        Hugging Face repository id read through the shared HF cache: HF_HOME, HF_HUB_CACHE, \
        HF_HUB_OFFLINE, HF_ENDPOINT, HF_TOKEN, HF_HUB_DOWNLOAD_TIMEOUT), runs the denoising chain \
        with a progress bar on stderr, and writes one image per file — PNG, JPEG or WebP by the \
        extension of --output — with the generation settings (prompt, seed, steps, guidance_scale, \
        truncation_rate, truncation_mode, sampler, purity_weight with --sampler purity, model, rng, \
        backend, dtype, software, and the image's place in its batch: batch_index, seed_per_image, \
        num_images_per_prompt, prompts) in PNG iTXt chunks or, for JPEG and WebP, as a JSON object \
        in the EXIF UserComment. The files appear whole or not at all: each is written under a \
        temporary name in its folder and renamed once every file of the run is written, so a \
        failure leaves nothing new behind. The paths of the written files are printed to stdout, \
        one per line; everything else goes to stderr. With --init-image it edits a picture instead: \
        inpainting with --mask, variations with --strength; the images then also record init_image, \
        mask and kept_region, and strength, and skip and skip_posterior with --skip.",
    after_help = concat!(
        "Examples:\n",
        "  vq-diffusion generate --model microsoft/vq-diffusion-ithq \\\n",
        "      --prompt \"teddy bear playing in the pool\" --seed 0 --truncation-rate 0.86\n",
        "  vq-diffusion generate --model ./vq-diffusion-ithq --prompt \"a red car\" --prompt \"a cat\" \\\n",
        "      --num-images-per-prompt 2 --steps 50 --output out.png --tokens out.json\n",
        "      (writes out-0.png … out-3.png: both images of \"a red car\", then those of \"a cat\")\n",
        "  vq-diffusion generate --prompt \"a small green square in the center on a yellow background\" \\\n",
        "      --init-image in.png --mask mask.png --output out.png --tokens out.json\n",
        "      (inpainting: white in mask.png is drawn anew, the rest keeps its tokens exactly)\n",
        "  vq-diffusion generate --prompt \"a red circle\" --steps 50 --skip 4   (11 network calls instead of 50)\n\n",
        exit_codes!(),
    )
)]
pub struct GenerateArgs {
    /// Pipeline folder, or Hugging Face repository id such as microsoft/vq-diffusion-ithq.
    /// Default: $VQ_DIFFUSION_MODEL, else the shapes model built into this binary (the project's
    /// own small model of coloured shapes, models/shapes; `vq-diffusion info` describes it).
    #[arg(long, value_name = "DIR|REPO_ID")]
    pub model: Option<String>,

    /// Text prompt; repeat the flag for several prompts (one batch, prompt-major order).
    #[arg(long, value_name = "TEXT", required_unless_present = "positional", conflicts_with = "positional")]
    pub prompt: Vec<String>,

    /// The prompts as plain arguments instead of --prompt, e.g. `generate "a red circle"`
    /// (either form, not both).
    #[arg(value_name = "PROMPT")]
    pub positional: Vec<String>,

    /// Number of denoising steps, 1 to the model's num_train_timesteps (100 for ITHQ).
    /// Default: 100, or the model's num_train_timesteps when that is smaller.
    #[arg(long, value_name = "N")]
    pub steps: Option<usize>,

    /// Classifier-free guidance scale (≥ 0); guidance runs when it is above 1.
    /// Default: the model's sampling_defaults.json (models/shapes: 3), else 5.0 (diffusers').
    #[arg(long, value_name = "G", allow_negative_numbers = true)]
    pub guidance_scale: Option<f32>,

    /// Keep, per latent pixel, the likeliest classes whose probability mass reaches R, in (0, 1].
    /// Default: the model's sampling_defaults.json (models/shapes: 0.7), else 1.0 (diffusers').
    #[arg(long, value_name = "R", allow_negative_numbers = true)]
    pub truncation_rate: Option<f32>,

    /// Images per prompt (≥ 1; prompts × K at most 1024).
    #[arg(long, value_name = "K", default_value_t = 1)]
    pub num_images_per_prompt: usize,

    /// Seed of the sampling noise. Without it a random seed in 0..2^32 is drawn, printed to
    /// stderr and recorded in the PNGs: pass it back with --seed to reproduce the images.
    #[arg(long, value_name = "S")]
    pub seed: Option<u64>,

    /// Generate image i alone with seed S + i, as web UIs do, instead of the whole batch from one
    /// generator seeded S: each image is then drawn again by `--seed S+i` with its prompt alone
    /// (with --rng torch: diffusers' image for manual_seed(S + i)). The images run one after the
    /// other, without the batch's speed-up. Without it, the batch is diffusers' batch.
    #[arg(long)]
    pub seed_per_image: bool,

    /// Random number generator of the sampling noise.
    #[arg(long, value_enum, value_name = "RNG", default_value_t = Rng::Torch)]
    pub rng: Rng,

    /// Where truncation runs. Default: device with --rng device on a GPU backend (whose tokens
    /// differ from diffusers' anyway, and where it saves a read-back per step), else exact (on a
    /// CPU the exact host search is also the faster one).
    #[arg(long, value_enum, value_name = "MODE")]
    pub truncation_mode: Option<TruncationModeArg>,

    /// How each step but the last draws the next tokens: posterior (diffusers': every pixel drawn
    /// anew at every step) or Improved VQ-Diffusion's high-quality inference, where an even share
    /// of the masked pixels becomes tokens at each step and stays: reveal (in random order) or
    /// purity (the pixels the model is surest of first). Only posterior draws diffusers' images.
    #[arg(long, value_enum, value_name = "SAMPLER", default_value_t = SamplerArg::Posterior)]
    pub sampler: SamplerArg,

    /// With --sampler purity: weight r (≥ 0) sharpening each pixel's distribution by its purity,
    /// softmax((1 + r·purity)·log p). Default 1 (the original's README); 0 draws from p itself.
    #[arg(long, value_name = "R", allow_negative_numbers = true)]
    pub purity_weight: Option<f32>,

    /// Image file; its extension picks the format: .png, .jpg/.jpeg (quality 95) or .webp
    /// (lossless); no extension writes PNG, any other is refused. With several images `-0`, `-1`,
    /// … is inserted before the extension (FILE-0.png, FILE-1.png, … in batch order: a prompt's
    /// images together). An existing file is replaced once the run has succeeded (stderr says
    /// "overwriting FILE"); a FIFO, device or folder is refused.
    #[arg(long, value_name = "FILE.png", default_value = DEFAULT_OUTPUT)]
    pub output: PathBuf,

    /// Also write the final token ids as JSON: an array, in batch order, of arrays of
    /// row-major latent-pixel codebook ids. It must be another file than the images.
    #[arg(long, value_name = "FILE.json")]
    pub tokens: Option<PathBuf>,

    /// Compute backend; only the backends compiled in (cargo features of vq-cli) can run.
    #[arg(long, value_enum, value_name = "BACKEND", default_value_t = BackendKind::preferred(),
          help = backend_help(), long_help = backend_help())]
    pub backend: BackendKind,

    /// Float precision of weights and activations (f16/bf16 need a backend that supports them;
    /// ndarray has f32 only).
    #[arg(long, value_enum, value_name = "DTYPE", default_value_t = Dtype::F32)]
    pub dtype: Dtype,

    /// The transformer's whole-forward engine: auto uses it where the backend has one (cuda:
    /// cuBLASLt products, run-time compiled kernels, one CUDA graph per step; an engine that fails
    /// to start falls back to the tensor ops with a warning), off always runs burn's tensor ops,
    /// on fails where there is no engine.
    #[arg(long, value_enum, value_name = "MODE", default_value_t = EngineArg::Auto)]
    pub engine: EngineArg,

    /// Inpainting, image variations and fast sampling.
    #[command(flatten)]
    pub edit: crate::edit::EditArgs,
}

/// `--engine`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EngineArg {
    /// The engine where the backend has one.
    Auto,
    /// burn's tensor ops.
    Off,
    /// The engine, or an error.
    On,
}

impl EngineArg {
    /// The pipeline's choice.
    pub fn choice(self) -> EngineChoice {
        match self {
            Self::Auto => EngineChoice::Auto,
            Self::Off => EngineChoice::Off,
            Self::On => EngineChoice::On,
        }
    }
}

/// `vq-diffusion serve`.
#[derive(Debug, Clone, clap::Args)]
#[command(
    long_about = "Serve a model over HTTP until Ctrl-C or SIGTERM (then it stops accepting, answers the \
        requests in flight and exits 0).\n\n\
        Endpoints: POST /v1/images/generations (the OpenAI images API where it applies: prompt, n, size, \
        response_format b64_json; plus seed, steps, guidance_scale, truncation_rate, sampler, purity_weight, \
        and stream for server-sent progress events), GET /v1/models, GET /healthz, GET /metrics \
        (Prometheus text), and GET /, a web page. Requests with the same settings that wait together run as \
        one batch; each draws its own noise, so a seed gives the images of `vq-diffusion generate --rng \
        torch`. The URL is printed to stdout once the server listens; everything else goes to stderr.",
    after_help = concat!(
        "Examples:\n",
        "  vq-diffusion serve\n",
        "      (the shipped model on http://127.0.0.1:8080/)\n",
        "  VQ_DIFFUSION_API_KEY=s3cret vq-diffusion serve --addr 0.0.0.0:8080 --max-batch 16\n",
        "  curl http://127.0.0.1:8080/v1/images/generations -H 'Content-Type: application/json' \\\n",
        "      -d '{\"prompt\": \"a red circle\", \"seed\": 0}'\n\n",
        "Exit status: 0 after Ctrl-C or SIGTERM; 2 usage error (a value out of range, a backend not\n\
         compiled in); 1 any other error (model not found or unreadable, address in use).",
    )
)]
pub struct ServeArgs {
    /// Pipeline folder, or Hugging Face repository id such as microsoft/vq-diffusion-ithq.
    /// Default: $VQ_DIFFUSION_MODEL, else models/shapes of this repository (where a checkout has it).
    #[arg(long, value_name = "DIR|REPO_ID")]
    pub model: Option<String>,

    /// Address to listen on; port 0 picks a free port. The default accepts connections from this
    /// machine only: use 0.0.0.0:PORT (with --api-key) to serve others.
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:8080")]
    pub addr: String,

    /// Compute backend; only the backends compiled in (cargo features of vq-cli) can run.
    #[arg(long, value_enum, value_name = "BACKEND", default_value_t = BackendKind::preferred(),
          help = backend_help(), long_help = backend_help())]
    pub backend: BackendKind,

    /// Most images in one transformer batch (≥ 1); a request for more images runs alone.
    #[arg(long, value_name = "N", default_value_t = ServeConfig::default().max_batch)]
    pub max_batch: usize,

    /// Most requests waiting for the model (≥ 1); one more is answered 503 with Retry-After.
    #[arg(long, value_name = "N", default_value_t = ServeConfig::default().queue)]
    pub queue: usize,

    /// Require `Authorization: Bearer KEY` on every endpoint but /healthz. Default:
    /// $VQ_DIFFUSION_API_KEY when set (which, unlike the flag, other users cannot read in `ps`).
    #[arg(long, value_name = "KEY")]
    pub api_key: Option<String>,

    /// The transformer's whole-forward engine, as `generate --engine` (auto: where the backend has
    /// one; off: burn's tensor ops; on: the engine or an error). Each batch prepares it once.
    #[arg(long, value_enum, value_name = "MODE", default_value_t = EngineArg::Auto)]
    pub engine: EngineArg,
}

/// The help of `--backend`, naming the backends of this build.
fn backend_help() -> String {
    format!(
        "Compute backend; only the backends compiled in (cargo features of vq-cli) can run: in this build {}",
        crate::backend::compiled_in().join(", ")
    )
}

/// `--sampler`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SamplerArg {
    /// diffusers' posterior sampling.
    Posterior,
    /// Reveal masked pixels in random order (the original's prior_rule 1).
    Reveal,
    /// Reveal the purest pixels first (prior_rule 2, the purity prior).
    Purity,
}

impl SamplerArg {
    /// The name the PNG metadata records.
    pub fn name(self) -> &'static str {
        match self {
            Self::Posterior => "posterior",
            Self::Reveal => "reveal",
            Self::Purity => "purity",
        }
    }
}

/// `--rng`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Rng {
    /// torch.Generator("cpu").manual_seed(S): the same images as diffusers for the same seed.
    Torch,
    /// The backend's own generator, seeded with S: faster on GPUs, a different stream.
    Device,
}

/// `--truncation-mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TruncationModeArg {
    /// On the host with torch's f64 running sums: exactly diffusers' kept classes.
    Exact,
    /// On the device by bisection of a threshold: no read-back per step (faster on GPUs); a
    /// class within float rounding of the cut can go the other way.
    Device,
}

/// `--backend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendKind {
    /// CPU on burn-ndarray (pure Rust); cargo feature `ndarray` (default).
    Ndarray,
    /// CPU on burn-flex (gemm-based, multi-threaded, f16/bf16; the faster CPU backend: 1.35×
    /// ndarray's speed for the shapes model on a 2-core CPU); cargo feature `flex` (default).
    Flex,
    /// GPU through wgpu (Vulkan, Metal, DX12); cargo feature `wgpu`.
    Wgpu,
    /// wgpu on OpenGL / OpenGL ES, for machines without Vulkan (even Mesa's software rasteriser);
    /// cargo feature `wgpu`.
    WgpuGl,
    /// NVIDIA GPU through CUDA; cargo feature `cuda`.
    Cuda,
}

/// `--dtype`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Dtype {
    /// 32-bit floats.
    F32,
    /// IEEE half precision.
    F16,
    /// bfloat16.
    Bf16,
}

impl Rng {
    /// The name used on the command line and in the PNG metadata.
    pub fn name(self) -> &'static str {
        match self {
            Self::Torch => "torch",
            Self::Device => "device",
        }
    }
}

/// The name of a truncation mode on the command line and in the PNG metadata.
pub fn truncation_mode_name(mode: TruncationMode) -> &'static str {
    match mode {
        TruncationMode::Exact => "exact",
        TruncationMode::Device => "device",
    }
}

impl BackendKind {
    /// The backend used without `--backend`: the faster CPU backend compiled in (flex, else
    /// ndarray), else the GPU one.
    pub fn preferred() -> Self {
        if cfg!(feature = "flex") {
            Self::Flex
        } else if cfg!(feature = "ndarray") {
            Self::Ndarray
        } else if cfg!(feature = "cuda") {
            Self::Cuda
        } else {
            Self::Wgpu
        }
    }

    /// The name used on the command line and in the PNG metadata.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ndarray => "ndarray",
            Self::Flex => "flex",
            Self::Wgpu => "wgpu",
            Self::WgpuGl => "wgpu-gl",
            Self::Cuda => "cuda",
        }
    }
}

impl Dtype {
    /// The pipeline's precision.
    pub fn precision(self) -> Precision {
        match self {
            Self::F32 => Precision::F32,
            Self::F16 => Precision::F16,
            Self::Bf16 => Precision::BF16,
        }
    }
}

impl GenerateArgs {
    /// `--truncation-mode`, or the default that goes with `--rng` and `--backend`.
    pub fn truncation_mode(&self) -> TruncationMode {
        let gpu = matches!(self.backend, BackendKind::Wgpu | BackendKind::WgpuGl | BackendKind::Cuda);
        match (self.truncation_mode, self.rng) {
            (Some(TruncationModeArg::Device), _) => TruncationMode::Device,
            (None, Rng::Device) if gpu => TruncationMode::Device,
            _ => TruncationMode::Exact,
        }
    }

    /// The sampler of --sampler and --purity-weight.
    pub fn sampler(&self) -> Sampler {
        match self.sampler {
            SamplerArg::Posterior => Sampler::Posterior,
            SamplerArg::Reveal => Sampler::Reveal(RevealOrder::Uniform),
            SamplerArg::Purity => Sampler::Reveal(RevealOrder::Purity { weight: self.purity_weight.unwrap_or(1.0) }),
        }
    }

    /// The model to load: `--model`, else `$VQ_DIFFUSION_MODEL`, else the embedded shapes model
    /// (see [`crate::model`]).
    pub fn model(&self) -> Result<String, CliError> {
        resolve_model(&self.model)
    }

    /// The prompts, from `--prompt` or the positional arguments (clap lets only one form through).
    pub fn prompts(&self) -> &[String] {
        if self.prompt.is_empty() {
            &self.positional
        } else {
            &self.prompt
        }
    }

    /// Number of images: prompts × images per prompt, at most [`MAX_IMAGES`] (a usage error
    /// beyond, overflow included).
    pub fn batch_size(&self) -> Result<usize, CliError> {
        let prompts = self.prompts().len();
        match prompts.checked_mul(self.num_images_per_prompt) {
            Some(n) if n <= MAX_IMAGES => Ok(n),
            _ => Err(CliError::Usage(format!(
                "--num-images-per-prompt {} × {prompts} prompt(s) is more than {MAX_IMAGES} images, the most one \
                 run makes",
                self.num_images_per_prompt
            ))),
        }
    }

    /// The range checks that need no model; `--steps` against the model's
    /// num_train_timesteps is checked once it is loaded.
    pub fn check(&self) -> Result<(), CliError> {
        if self.steps == Some(0) {
            return Err(CliError::Usage("--steps must be at least 1, got 0".into()));
        }
        // The pipeline's own range checks, before the model is loaded.
        let usage = |flag: &str, message: String| CliError::Usage(format!("{flag}: {message}"));
        if let Some(scale) = self.guidance_scale {
            vq_pipeline::check_guidance_scale(scale).map_err(|e| usage("--guidance-scale", e))?;
        }
        if let Some(rate) = self.truncation_rate {
            vq_pipeline::check_truncation_rate(rate).map_err(|e| usage("--truncation-rate", e))?;
        }
        if let Some(weight) = self.purity_weight {
            if self.sampler != SamplerArg::Purity {
                return Err(usage("--purity-weight", format!("{weight} needs --sampler purity")));
            }
            vq_pipeline::check_purity_weight(weight).map_err(|e| usage("--purity-weight", e))?;
        }
        if self.num_images_per_prompt == 0 {
            return Err(CliError::Usage("--num-images-per-prompt must be at least 1, got 0".into()));
        }
        self.edit.check()?;
        let batch = self.batch_size()?;
        if let (true, Some(seed)) = (self.seed_per_image, self.seed) {
            if seed.checked_add(batch as u64 - 1).is_none() {
                return Err(CliError::Usage(format!(
                    "--seed {seed} with --seed-per-image: image {} would need seed {seed} + {}, beyond 2^64 − 1",
                    batch - 1,
                    batch - 1
                )));
            }
        }
        ImageFormat::of(&self.output)?;
        Ok(())
    }
}

impl ServeArgs {
    /// The model to load: `--model`, else `$VQ_DIFFUSION_MODEL`, else the shipped shapes model.
    pub fn model(&self) -> Result<String, CliError> {
        resolve_model(&self.model)
    }

    /// The server's settings: the flags, and the API key from [`API_KEY_ENV`] without `--api-key`.
    pub fn config(&self) -> Result<ServeConfig, CliError> {
        let api_key = self.api_key.clone().or_else(|| std::env::var(API_KEY_ENV).ok());
        let config = ServeConfig { max_batch: self.max_batch, queue: self.queue, api_key, ..ServeConfig::default() };
        config.validate().map_err(|e| CliError::Usage(e.to_string()))?;
        Ok(config)
    }
}

/// The model to load: `model` (a `--model` flag), else `$VQ_DIFFUSION_MODEL`, else the embedded
/// shapes model (see [`crate::model`]).
pub fn resolve_model(model: &Option<String>) -> Result<String, CliError> {
    crate::model::choose_from_env(model.as_deref()).map(|choice| choice.model)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn truncation_mode(flags: &[&str]) -> TruncationMode {
        let args = ["vq-diffusion", "generate", "--prompt", "a cat"].iter().chain(flags);
        let Command::Generate(generate) = Cli::try_parse_from(args).expect("valid flags").command else {
            panic!("parsed as another subcommand")
        };
        generate.truncation_mode()
    }

    fn parse(args: &[&str]) -> Result<GenerateArgs, clap::Error> {
        match Cli::try_parse_from(["vq-diffusion", "generate"].iter().chain(args))?.command {
            Command::Generate(generate) => Ok(generate),
            other => panic!("parsed as another subcommand: {other:?}"),
        }
    }

    fn parse_serve(args: &[&str]) -> Result<ServeArgs, clap::Error> {
        let Command::Serve(serve) = Cli::try_parse_from(["vq-diffusion", "serve"].iter().chain(args))?.command else {
            panic!("serve");
        };
        Ok(serve)
    }

    #[test]
    fn serve_flags_and_their_defaults() {
        let defaults = parse_serve(&[]).expect("no flags needed");
        assert_eq!(defaults.addr, "127.0.0.1:8080", "this machine only");
        assert_eq!((defaults.max_batch, defaults.queue, defaults.api_key), (8, 32, None));
        assert_eq!(defaults.backend, BackendKind::preferred());
        let flags = ["--model", "m", "--addr", "0.0.0.0:9", "--max-batch", "16", "--queue", "4", "--api-key", "k"];
        let serve = parse_serve(&flags).expect("flags");
        let config = serve.config().expect("in range");
        assert_eq!((serve.model().expect("model"), serve.addr.as_str()), ("m".to_string(), "0.0.0.0:9"));
        assert_eq!((config.max_batch, config.queue, config.api_key.as_deref()), (16, 4, Some("k")));
        for (flags, message) in [
            (["--max-batch", "0"], "--max-batch must be at least 1, got 0"),
            (["--queue", "0"], "--queue must be at least 1, got 0"),
            (["--api-key", " "], "--api-key (or VQ_DIFFUSION_API_KEY) must not be empty"),
        ] {
            let error = parse_serve(&flags).expect("parses").config().expect_err("out of range");
            assert_eq!((error.exit_code(), error.one_line()), (2, message.to_string()));
        }
    }

    #[test]
    fn prompts_come_from_the_flag_or_from_plain_arguments_but_not_both() {
        let flags = parse(&["--prompt", "a red circle", "--prompt", "a cat", "--seed", "0"]).expect("flags");
        let plain = parse(&["a red circle", "a cat", "--seed", "0"]).expect("plain arguments");
        assert_eq!(flags.prompts(), ["a red circle", "a cat"]);
        assert_eq!(plain.prompts(), flags.prompts());
        assert_eq!(plain.batch_size().unwrap(), 2);
        let both = parse(&["a red circle", "--prompt", "a cat"]).expect_err("both forms");
        assert_eq!(both.kind(), clap::error::ErrorKind::ArgumentConflict);
        let neither = parse(&["--seed", "0"]).expect_err("no prompt");
        assert_eq!(neither.kind(), clap::error::ErrorKind::MissingRequiredArgument);
        assert!(neither.to_string().contains("--prompt <TEXT>"), "{neither}");
    }

    #[test]
    fn the_batch_is_counted_without_overflow_and_capped() {
        let two = ["--prompt", "a", "--prompt", "b"];
        let batch = |k: &str| parse(&[&two[..], &["--num-images-per-prompt", k]].concat()).unwrap().batch_size();
        assert_eq!(batch("512").unwrap(), 1024);
        for k in ["513", "1000000000", "9223372036854775808", &usize::MAX.to_string()] {
            let error = batch(k).unwrap_err();
            assert_eq!(error.exit_code(), 2);
            assert!(error.to_string().contains(&format!("--num-images-per-prompt {k} × 2 prompt(s)")), "{error}");
            assert!(error.to_string().contains("1024"), "{error}");
        }
    }

    #[test]
    fn per_image_seeds_must_not_overflow() {
        let args = |seed: &str| {
            parse(&["--prompt", "a", "--num-images-per-prompt", "3", "--seed-per-image", "--seed", seed]).unwrap()
        };
        args(&(u64::MAX - 2).to_string()).check().unwrap();
        let error = args(&(u64::MAX - 1).to_string()).check().unwrap_err();
        assert_eq!(error.exit_code(), 2);
        assert!(error.to_string().contains("--seed-per-image"), "{error}");
    }

    #[test]
    fn device_truncation_is_the_default_only_for_device_noise_on_a_gpu_backend() {
        assert_eq!(truncation_mode(&[]), TruncationMode::Exact);
        assert_eq!(truncation_mode(&["--rng", "device"]), TruncationMode::Exact, "ndarray: a CPU");
        assert_eq!(truncation_mode(&["--rng", "device", "--backend", "flex"]), TruncationMode::Exact);
        assert_eq!(truncation_mode(&["--rng", "device", "--backend", "cuda"]), TruncationMode::Device);
        assert_eq!(truncation_mode(&["--rng", "device", "--backend", "wgpu"]), TruncationMode::Device);
        assert_eq!(truncation_mode(&["--backend", "cuda"]), TruncationMode::Exact, "torch noise");
        // The flag wins either way.
        assert_eq!(truncation_mode(&["--truncation-mode", "device"]), TruncationMode::Device);
        let flags = ["--rng", "device", "--backend", "cuda", "--truncation-mode", "exact"];
        assert_eq!(truncation_mode(&flags), TruncationMode::Exact);
    }
}
