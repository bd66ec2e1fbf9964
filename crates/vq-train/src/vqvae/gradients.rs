//! One stage-1 training step's gradients by parameter name, so that two backends can be compared
//! on the same weights and batch (`xtask grad-check`): a build can compute the VQ-VAE's forward
//! pass like the CPU and still train wrongly (BENCHMARKS.md: the autotuned CUDA build's nearest
//! `interpolate` backward did), and the names of the parameters whose gradients differ lead to
//! the op at fault.

use crate::TrainBackend;
use std::path::Path;

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::Tensor;
use vq_model::{VQModel, VQModelConfig};

use super::parallel::{step_gradients, LossWeights};
use super::VqVaeTrainConfig;
use crate::data::{Dataset, DatasetConfig, Split};
use crate::train::batches::render_batch;
use crate::TrainError;

/// A parameter's gradient.
#[derive(Debug, Clone)]
pub struct NamedGradient {
    /// The parameter's path in the module tree, e.g. `decoder.conv_out.weight`.
    pub name: String,
    /// The parameter's shape.
    pub shape: Vec<usize>,
    /// The gradient, row-major.
    pub values: Vec<f32>,
}

/// One training step's loss and gradients.
#[derive(Debug, Clone)]
pub struct StepGradients {
    /// The batch's loss.
    pub loss: f64,
    /// The gradients of the parameters that have one (the frozen ones and the codebook have
    /// none), in module order.
    pub gradients: Vec<NamedGradient>,
}

/// The loss and gradients of one training step of the VQ-VAE in `vqvae_dir` on batch 0 of the training
/// split (`batch_size` images of the dataset with seed `seed`), with stage 1's default loss
/// weights; `decoder_only` freezes the encoder as `vq-train vqvae --decoder-only` does.
pub fn named_step_gradients<B: TrainBackend>(
    vqvae_dir: &Path,
    batch_size: usize,
    decoder_only: bool,
    seed: u64,
    device: &B::Device,
) -> Result<StepGradients, TrainError> {
    let context = || vqvae_dir.display().to_string();
    let config =
        VQModelConfig::from_file(&vqvae_dir.join("config.json")).map_err(|e| TrainError::model(context(), e))?;
    let model =
        VQModel::<B>::from_config(&config, vqvae_dir, None, device).map_err(|e| TrainError::model(context(), e))?;
    let dataset =
        Dataset::new(DatasetConfig { image_size: config.sample_size as u32, ..DatasetConfig::default() }, seed)?;
    let batch = render_batch(&dataset, Split::Train, batch_size, 0, None, 0.0);
    let weights = LossWeights::of(&VqVaeTrainConfig { decoder_only, ..VqVaeTrainConfig::default() });
    let codebook = model.quantize.embedding.weight.val().inner();
    let out = step_gradients(&model, std::slice::from_ref(device), &batch, codebook, &weights, device)?;
    let mut collector = Collector { grads: out.grads, path: Vec::new(), found: Vec::new() };
    model.visit(&mut collector);
    Ok(StepGradients { loss: out.values[0], gradients: collector.found })
}

/// Reads each float parameter's gradient, named by its path.
struct Collector {
    grads: GradientsParams,
    path: Vec<String>,
    found: Vec<NamedGradient>,
}

impl<B: TrainBackend> ModuleVisitor<B> for Collector {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let Some(grad) = self.grads.get::<B::InnerBackend, D>(param.id) else {
            return;
        };
        self.found.push(NamedGradient {
            name: self.path.join("."),
            shape: grad.dims().to_vec(),
            values: grad.into_data().convert::<f32>().into_vec::<f32>().expect("f32 gradient"),
        });
    }
}

/// How far `gradient` is from `reference`: the largest absolute difference relative to the
/// reference's largest magnitude, or to `floor` if that is larger (a scale-free measure: gradients
/// of different layers differ by orders of magnitude, and single near-zero entries make elementwise
/// relative errors useless). The floor is for gradients that are zero in exact arithmetic — an
/// attention key's bias shifts every score of a query alike, which softmax ignores — and so only
/// rounding noise on both sides; give it a small fraction of the step's largest gradient.
///
/// # Panics
/// If the lengths differ.
pub fn relative_max_error(gradient: &[f32], reference: &[f32], floor: f64) -> f64 {
    assert_eq!(gradient.len(), reference.len(), "gradients of different sizes");
    let diff = gradient.iter().zip(reference).fold(0.0_f64, |m, (&g, &r)| m.max((f64::from(g) - f64::from(r)).abs()));
    let scale = max_magnitude(reference).max(floor);
    if scale == 0.0 {
        diff
    } else {
        diff / scale
    }
}

/// The largest |entry| of `values`.
pub fn max_magnitude(values: &[f32]) -> f64 {
    values.iter().fold(0.0_f64, |m, &v| m.max(f64::from(v).abs()))
}
