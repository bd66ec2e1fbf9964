//! Project automation: `cargo xtask <command>` (an alias of `cargo run -p xtask -- <command>`).
//!
//! * `fixtures` — rebuild the committed reference fixtures with the Python reference
//!   (diffusers 0.42.1; see the README's development section for the venv).
//! * `convert` — turn a pipeline's PyTorch `.bin` checkpoints into safetensors (optionally f16).
//! * `parity` — a table of errors of every component against the reference fixtures.
//! * `bench` — time the full-size model on a backend (see `BENCHMARKS.md`).
//! * `train-vqvae`, `train-transformer`, `export`, `eval` — the `vq-train` binary's `vqvae`,
//!   `transformer`, `export` and `eval` (the same code, `crates/vq-train-cli`), kept under these
//!   names for the device scripts (`xtask/device/`), which carry one release xtask build.
//! * `grad-check` — one training step's gradients on a backend against the CPU's.
//! * `edit-eval` — score inpainting, image variations and fast sampling on a trained shapes model.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use vq_kernels::setup::{exit_on_panic, PanicExit};

/// Calls `$f::<B>(args, device)` for the burn backend named `$name` (one compiled in through
/// xtask's cargo features), or returns an error naming it.
macro_rules! with_backend {
    ($name:expr, $f:ident, $args:expr) => {
        match $name {
            #[cfg(feature = "ndarray")]
            "ndarray" => $f::<burn::backend::NdArray<f32>>($args, Default::default()),
            #[cfg(feature = "flex")]
            "flex" => $f::<burn::backend::Flex>($args, Default::default()),
            #[cfg(feature = "wgpu")]
            "wgpu" => vq_kernels::setup::wgpu_device().and_then(|device| $f::<burn::backend::Wgpu>($args, device)),
            #[cfg(feature = "wgpu")]
            "wgpu-gl" => vq_kernels::setup::wgpu_opengl_device().and_then(|device| $f::<burn::backend::Wgpu>($args, device)),
            #[cfg(any(feature = "cuda", feature = "cuda-untuned"))]
            "cuda" => $f::<burn::backend::Cuda>($args, Default::default()),
            #[cfg(any(feature = "cuda", feature = "cuda-untuned"))]
            "cuda-unfused" => $f::<$crate::CudaUnfused>($args, Default::default()),
            other => Err(format!("backend `{other}` is not compiled in (cargo features of xtask: ndarray, flex, wgpu / wgpu-gl, cuda / cuda-unfused)")),
        }
    };
    // Training: `$f::<Autodiff<B>>(args)`.
    ($name:expr, $f:ident, $args:expr, autodiff) => {
        match $name {
            #[cfg(feature = "ndarray")]
            "ndarray" => $f::<burn::backend::Autodiff<burn::backend::NdArray<f32>>>($args),
            #[cfg(feature = "flex")]
            "flex" => $f::<burn::backend::Autodiff<burn::backend::Flex>>($args),
            #[cfg(feature = "wgpu")]
            "wgpu" => vq_kernels::setup::wgpu_device().and_then(|_| $f::<burn::backend::Autodiff<burn::backend::Wgpu>>($args)),
            #[cfg(feature = "wgpu")]
            "wgpu-gl" => vq_kernels::setup::wgpu_opengl_device().and_then(|_| $f::<burn::backend::Autodiff<burn::backend::Wgpu>>($args)),
            #[cfg(any(feature = "cuda", feature = "cuda-untuned"))]
            "cuda" => $f::<burn::backend::Autodiff<burn::backend::Cuda>>($args),
            #[cfg(any(feature = "cuda", feature = "cuda-untuned"))]
            "cuda-unfused" => $f::<burn::backend::Autodiff<$crate::CudaUnfused>>($args),
            other => Err(format!("backend `{other}` is not compiled in (cargo features of xtask: ndarray, flex, wgpu / wgpu-gl, cuda / cuda-unfused)")),
        }
    };
}
pub(crate) use with_backend;

/// burn's CUDA backend without its fusion layer: far fewer kernels to JIT-compile on first use
/// (fusion compiles a kernel per fused graph, and training graphs are many).
#[cfg(any(feature = "cuda", feature = "cuda-untuned"))]
pub(crate) type CudaUnfused = burn_cubecl::CubeBackend<cubecl::cuda::CudaRuntime, f32, i32, u8>;

/// `--dtype` values.
pub(crate) fn precision(name: &str) -> Result<vq_pipeline::Precision, String> {
    match name {
        "f32" => Ok(vq_pipeline::Precision::F32),
        "f16" => Ok(vq_pipeline::Precision::F16),
        "bf16" => Ok(vq_pipeline::Precision::BF16),
        other => Err(format!("--dtype {other}: expected f32, f16 or bf16")),
    }
}

mod bench;
mod convert;
mod edit_eval;
mod fixtures;
mod grad_check;
mod parity;
mod products;

#[derive(Parser)]
#[command(about = "vq-diffusion-rs project automation")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Regenerate `fixtures/` with the Python reference (torch + diffusers 0.42.1).
    Fixtures(fixtures::Args),
    /// Convert every `.bin` weights file of a pipeline folder to safetensors.
    Convert(convert::Args),
    /// Compare every component and the pipeline with the reference fixtures (a table of errors).
    Parity(parity::Args),
    /// Time the ITHQ-size model on a backend (random weights).
    Bench(bench::Args),
    /// `vq-train vqvae`: train the VQ-VAE of the shapes model (stage 1).
    TrainVqvae(vq_train_cli::VqVaeArgs),
    /// `vq-train transformer`: train text encoder + transformer on the frozen VQ-VAE and export
    /// the pipeline (stage 2).
    TrainTransformer(vq_train_cli::TransformerArgs),
    /// `vq-train export`: a stage-2 checkpoint as a pipeline folder, or another VQ-VAE in a pipeline.
    Export(vq_train_cli::ExportArgs),
    /// `vq-train eval`: score a trained pipeline on held-out prompts.
    Eval(vq_train_cli::EvalArgs),
    /// Score inpainting, image variations and fast sampling on a trained pipeline.
    EditEval(edit_eval::Args),
    /// Compare one VQ-VAE training step's gradients on a backend with the CPU's, per parameter.
    GradCheck(grad_check::Args),
}

/// A `vq-train` command, ended at the first panic of any thread as `vq-train` ends it.
fn vq_train(command: impl FnOnce() -> Result<(), vq_train_cli::CliError>) -> Result<(), String> {
    exit_on_panic(PanicExit::AnyThread);
    command().map_err(|e| e.one_line())
}

fn main() -> ExitCode {
    vq_kernels::setup::keep_freed_memory();
    exit_on_panic(PanicExit::LibraryThreads);
    let result = match Cli::parse().command {
        Command::Fixtures(args) => fixtures::run(args),
        Command::Convert(args) => convert::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Parity(args) => parity::run(args),
        Command::TrainVqvae(args) => vq_train(|| vq_train_cli::vqvae(&args)),
        Command::TrainTransformer(args) => vq_train(|| vq_train_cli::transformer(&args)),
        Command::Export(args) => vq_train(|| vq_train_cli::export(&args)),
        Command::Eval(args) => vq_train(|| vq_train_cli::eval(&args)),
        Command::EditEval(args) => edit_eval::run(args),
        Command::GradCheck(args) => grad_check::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}
