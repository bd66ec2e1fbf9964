//! `grad-check`: one stage-1 training step's gradients on a backend against the CPU reference
//! (`Autodiff<NdArray>`), parameter by parameter, on the same weights and batch. A training
//! build whose forward pass is right can still train wrongly (the autotuned CUDA build's
//! convolution gradients, BENCHMARKS.md session 9); the names of the parameters it gets wrong
//! say which convolution shapes to look at.

use std::path::PathBuf;

use burn::tensor::backend::AutodiffBackend;
use vq_train::vqvae::{max_magnitude, named_step_gradients, relative_max_error, StepGradients};

/// Arguments of `xtask grad-check`.
#[derive(clap::Args)]
pub struct Args {
    /// The VQ-VAE folder (e.g. `models/shapes/vqvae`).
    #[arg(long)]
    vqvae: PathBuf,
    /// The backend to check (`cuda`, `cuda-unfused`, `wgpu`, `flex`).
    #[arg(long)]
    backend: String,
    /// Images in the batch.
    #[arg(long, default_value_t = 8)]
    batch_size: usize,
    /// Freeze the encoder, as `train-vqvae --decoder-only` does.
    #[arg(long)]
    decoder_only: bool,
    /// Seed of the dataset drawing the batch.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Largest accepted error of a parameter's gradient, relative to the reference's largest
    /// entry or to 1e-4 of the step's largest, whichever is larger (TF32 matrix products alone
    /// stay near 1e-3).
    #[arg(long, default_value_t = 0.02)]
    tolerance: f64,
}

/// The error floor, as a fraction of the step's largest gradient entry.
const FLOOR: f64 = 1e-4;

pub fn run(args: Args) -> Result<(), String> {
    let reference = reference(&args)?;
    let checked = crate::with_backend!(args.backend.as_str(), gradients, &args, autodiff)?;
    println!(
        "loss: {} {:.6e}, ndarray {:.6e} ({} images, seed {})",
        args.backend, checked.loss, reference.loss, args.batch_size, args.seed
    );
    if checked.gradients.len() != reference.gradients.len() {
        return Err(format!(
            "{} has {} gradients, ndarray {}",
            args.backend,
            checked.gradients.len(),
            reference.gradients.len()
        ));
    }
    println!("{:<52} {:>18} {:>12}", "parameter", "shape", "error");
    // Gradients that are zero in exact arithmetic (attention keys' biases) are measured against
    // this floor instead of their own rounding noise.
    let floor = FLOOR * reference.gradients.iter().fold(0.0_f64, |m, g| m.max(max_magnitude(&g.values)));
    let mut failed = Vec::new();
    for (got, want) in checked.gradients.iter().zip(&reference.gradients) {
        if got.name != want.name {
            return Err(format!("parameter order differs: {} against {}", got.name, want.name));
        }
        let error = relative_max_error(&got.values, &want.values, floor);
        let flag = if error > args.tolerance { "  <-" } else { "" };
        println!("{:<52} {:>18} {:>12.3e}{flag}", got.name, format!("{:?}", got.shape), error);
        if error > args.tolerance {
            failed.push(got.name.clone());
        }
    }
    match failed.len() {
        0 => Ok(()),
        n => Err(format!("{n} gradients off by more than {}: {}", args.tolerance, failed.join(", "))),
    }
}

/// The CPU's gradients.
fn reference(args: &Args) -> Result<StepGradients, String> {
    #[cfg(feature = "ndarray")]
    return gradients::<burn::backend::Autodiff<burn::backend::NdArray<f32>>>(args);
    #[cfg(not(feature = "ndarray"))]
    Err(format!("grad-check {}: the CPU reference needs xtask's ndarray feature", args.backend))
}

fn gradients<B: AutodiffBackend>(args: &Args) -> Result<StepGradients, String> {
    named_step_gradients::<B>(&args.vqvae, args.batch_size, args.decoder_only, args.seed, &Default::default())
        .map_err(|e| e.to_string())
}
