//! `grad-check`: one stage-1 training step's gradients on a backend against the CPU reference
//! (`Autodiff<NdArray>`), parameter by parameter, on the same weights and batch. A training
//! build whose forward pass is right can still train wrongly (burn 0.21's nearest-`interpolate`
//! backward on the autotuned CUDA build); the first parameter it gets wrong, in
//! backward order, says where to look. `--convolutions` checks single convolutions the same way.

use std::path::PathBuf;

use burn::tensor::backend::AutodiffBackend;
use vq_train::vqvae::{max_magnitude, named_step_gradients, relative_max_error, StepGradients};

/// Arguments of `xtask grad-check`.
#[derive(clap::Args)]
pub struct Args {
    /// The VQ-VAE folder (e.g. `models/shapes/vqvae`).
    #[arg(long)]
    vqvae: PathBuf,
    /// The backend to check (`cuda`, `cuda-unfused`, `wgpu`, `wgpu-gl`, `flex`).
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
    /// Check single convolutions instead of a training step: each `C_IN:C_OUT:K:SIZE` (a k × k
    /// kernel, padding k / 2, on SIZE × SIZE inputs of the batch) on random inputs, its input and
    /// weight gradients against the CPU's. `decoder` names the shapes model's decoder convolutions.
    #[arg(long, value_delimiter = ',')]
    convolutions: Vec<String>,
}

/// The shapes model's decoder convolutions (`models/shapes/vqvae`, 64 × 64 images), input side
/// first: `conv_in`, the 16 × 16 blocks, the upsamplers' and up blocks' convolutions, `conv_out`.
const DECODER_CONVOLUTIONS: &str =
    "64:128:3:16,128:128:3:16,128:128:3:32,128:64:3:32,64:64:3:32,128:64:1:32,64:64:3:64,64:32:3:64,32:32:3:64,64:32:1:64,32:3:3:64";

/// The backend the gradients are checked against (`Autodiff<NdArray>`).
const REFERENCE: &str = "ndarray";

/// The error floor, as a fraction of the step's largest gradient entry.
const FLOOR: f64 = 1e-4;

pub fn run(args: Args) -> Result<(), String> {
    if !args.convolutions.is_empty() {
        return check_convolutions(&args);
    }
    let reference = crate::with_backend!(REFERENCE, gradients, &args, autodiff)?;
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

fn gradients<B: vq_train::TrainBackend>(args: &Args) -> Result<StepGradients, String> {
    named_step_gradients::<B>(&args.vqvae, args.batch_size, args.decoder_only, args.seed, &Default::default())
        .map_err(|e| e.to_string())
}

/// One convolution to check alone.
#[derive(Debug, Clone, Copy)]
struct ConvShape {
    c_in: usize,
    c_out: usize,
    kernel: usize,
    size: usize,
}

impl std::str::FromStr for ConvShape {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let parts: Vec<usize> =
            s.split(':').map(str::parse).collect::<Result<_, _>>().map_err(|e| format!("{s:?}: {e}"))?;
        match parts[..] {
            [c_in, c_out, kernel, size] if parts.iter().all(|&p| p > 0) => Ok(Self { c_in, c_out, kernel, size }),
            _ => Err(format!("convolution {s:?}: expected C_IN:C_OUT:K:SIZE, all positive")),
        }
    }
}

/// `--convolutions`: each convolution's input and weight gradients on the backend against the CPU,
/// with the input and the output gradient contiguous and again as channels-last views (the layout
/// in which gradients can reach a convolution inside a graph).
fn check_convolutions(args: &Args) -> Result<(), String> {
    let list = args.convolutions.iter().flat_map(|c| if c == "decoder" { DECODER_CONVOLUTIONS } else { c }.split(','));
    let shapes: Vec<ConvShape> = list.map(str::parse).collect::<Result<_, _>>()?;
    println!(
        "{:<22} {:>12} {:>12} {:>16} {:>16}   ({} images, seed {})",
        "C_in:C_out:k:size", "input grad", "weight grad", "input (NHWC)", "weight (NHWC)", args.batch_size, args.seed
    );
    let mut failed = Vec::new();
    for shape in shapes {
        let mut errors = Vec::new();
        for channels_last in [false, true] {
            let want = crate::with_backend!(REFERENCE, conv_gradients, (shape, channels_last, args), autodiff)?;
            let got =
                crate::with_backend!(args.backend.as_str(), conv_gradients, (shape, channels_last, args), autodiff)?;
            // Relative to each gradient's own largest entry (no floor: nothing here is zero exactly).
            errors.extend([0, 1].map(|i| relative_max_error(&got[i], &want[i], 0.0)));
        }
        let flag = if errors.iter().any(|&e| e > args.tolerance) { "  <-" } else { "" };
        let name = format!("{}:{}:{}:{}", shape.c_in, shape.c_out, shape.kernel, shape.size);
        println!(
            "{name:<22} {:>12.3e} {:>12.3e} {:>16.3e} {:>16.3e}{flag}",
            errors[0], errors[1], errors[2], errors[3]
        );
        if !flag.is_empty() {
            failed.push(name);
        }
    }
    match failed.len() {
        0 => Ok(()),
        n => Err(format!("{n} convolutions off by more than {}: {}", args.tolerance, failed.join(", "))),
    }
}

/// The gradients of Σ conv(x)·g with respect to x and the weight, for uniform random x, weight,
/// bias and g drawn from `args.seed` (x and g as `[batch, size, size, C]` tensors permuted to NCHW
/// when `channels_last`): `[input gradient, weight gradient]`.
fn conv_gradients<B: AutodiffBackend>(
    (shape, channels_last, args): (ConvShape, bool, &Args),
) -> Result<[Vec<f32>; 2], String> {
    use burn::tensor::{module::conv2d, ops::ConvOptions, Tensor, TensorData};
    let device = Default::default();
    let mut rng = vq_train::rng::SplitMix64::new(args.seed);
    let mut random = |dims: Vec<usize>| {
        let values: Vec<f32> = (0..dims.iter().product()).map(|_| rng.uniform(-1.0, 1.0) as f32).collect();
        TensorData::new(values, dims)
    };
    let ConvShape { c_in, c_out, kernel, size } = shape;
    let batch = args.batch_size;
    // An NCHW tensor, or an NHWC one seen as NCHW through a permutation (same values either way).
    let mut image = |channels: usize| {
        let data = random(vec![batch, size, size, channels]);
        let nhwc = Tensor::<B, 4>::from_data(data, &device);
        let nchw = nhwc.clone().permute([0, 3, 1, 2]);
        if channels_last {
            nchw
        } else {
            Tensor::from_data(nchw.into_data(), &device)
        }
    };
    let x = image(c_in).require_grad();
    let g = image(c_out);
    let weight = Tensor::<B, 4>::from_data(random(vec![c_out, c_in, kernel, kernel]), &device).require_grad();
    let bias = Tensor::<B, 1>::from_data(random(vec![c_out]), &device);
    let pad = kernel / 2;
    let y = conv2d(x.clone(), weight.clone(), Some(bias), ConvOptions::new([1, 1], [pad, pad], [1, 1], 1));
    let grads = (y * g).sum().backward();
    let read = |t: Option<Tensor<B::InnerBackend, 4>>| {
        t.ok_or("no gradient")?.into_data().into_vec::<f32>().map_err(|e| format!("{e:?}"))
    };
    Ok([read(x.grad(&grads))?, read(weight.grad(&grads))?])
}
