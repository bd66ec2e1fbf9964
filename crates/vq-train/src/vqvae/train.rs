//! Stage 1's entry point (the loop shell around [`VqVaeStage`]), its export and the
//! reconstruction ceiling.

use std::path::{Path, PathBuf};

use burn::module::AutodiffModule;
use serde::{Deserialize, Serialize};
use serde_json::json;
use vq_kernels::KernelBackend;
use vq_model::{VQModel, VQModelConfig};

use super::stage::VqVaeStage;
use super::VqVaeTrainConfig;
use crate::data::{tensor_to_images, Dataset, Split};
use crate::eval::{evaluate_ground_truth, EvalReport};
use crate::train::export::{create_dir, pytorch_tensors, write_json, write_safetensors, StoreDtype, VQ_MODEL_RENAMES};
use crate::train::run_loop;
use crate::{TrainBackend, TrainError};

/// What a finished (or budget-stopped) run reports.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VqVaeTrainSummary {
    /// Steps done in total (resumed parts included).
    pub steps_done: usize,
    /// Mean loss over the last logging window.
    pub final_loss: f64,
    /// Mean loss over the first logging window of this process.
    pub first_loss: f64,
    /// Fraction of codes in use (EMA count ≥ the restart threshold × mean).
    pub codebook_usage: f64,
    /// Seconds per step in this process.
    pub seconds_per_step: f64,
    /// The exported `vqvae/` folder.
    pub vqvae_dir: PathBuf,
}

/// Trains the VQ-VAE per `config` on `device` in the loop shell ([`run_loop`]), writing
/// `out_dir/vqvae/` at the end (also when the time budget stops the run early). `progress`
/// receives one line per log interval.
///
/// # Example
///
/// ```no_run
/// use burn::backend::{Autodiff, NdArray};
/// use vq_train::vqvae::{train_vqvae, VqVaeTrainConfig};
///
/// let mut config = VqVaeTrainConfig::default();
/// config.run.out_dir = "runs/vqvae".into();
/// config.run.steps = 200;
/// let summary = train_vqvae::<Autodiff<NdArray>>(&config, &Default::default(), &mut |line| eprintln!("{line}"))?;
/// println!("{} steps, loss {:.4} → {:.4}", summary.steps_done, summary.first_loss, summary.final_loss);
/// # Ok::<(), vq_train::TrainError>(())
/// ```
pub fn train_vqvae<B: TrainBackend>(
    config: &VqVaeTrainConfig,
    device: &B::Device,
    progress: &mut dyn FnMut(&str),
) -> Result<VqVaeTrainSummary, TrainError> {
    config.validate()?;
    let finished = run_loop(&config.run, device, progress, |_| {
        let (architecture, model) = initial_model::<B>(config, device)?;
        VqVaeStage::<B>::new(config, architecture, model, device)
    })?;
    let stage = &finished.stage;
    let vqvae_dir = config.run.out_dir.join("vqvae");
    write_vqvae_dir(&stage.model.valid(), &stage.architecture, &vqvae_dir, StoreDtype::F32)?;
    Ok(VqVaeTrainSummary {
        steps_done: finished.steps_done,
        final_loss: finished.final_loss,
        first_loss: finished.first_loss,
        codebook_usage: stage.codebook.usage(config.restart_threshold),
        seconds_per_step: finished.seconds_per_step,
        vqvae_dir,
    })
}

/// The architecture and the starting weights: `run.init_from`'s folder, or `config`'s
/// architecture initialised at random. Refuses a folder whose images are not the dataset's size.
fn initial_model<B: TrainBackend>(
    config: &VqVaeTrainConfig,
    device: &B::Device,
) -> Result<(VQModelConfig, VQModel<B>), TrainError> {
    let Some(dir) = &config.run.init_from else {
        let model_config = config.model_config();
        model_config.validate().map_err(|e| TrainError::model("VQ-VAE config", e))?;
        let model = model_config.init(device).map_err(|e| TrainError::model("VQ-VAE init", e))?;
        return Ok((model_config, model));
    };
    let config_path = dir.join("config.json");
    let model_config = VQModelConfig::from_file(&config_path).map_err(|e| TrainError::model("VQ-VAE init_from", e))?;
    let image_size = config.run.dataset.image_size as usize;
    if model_config.sample_size != image_size {
        return Err(TrainError::model(
            "VQ-VAE config",
            format!(
                "{}: sample_size {} differs from the dataset's image_size {image_size}",
                config_path.display(),
                model_config.sample_size
            ),
        ));
    }
    let model =
        VQModel::from_config(&model_config, dir, None, device).map_err(|e| TrainError::model("VQ-VAE init_from", e))?;
    Ok((model_config, model))
}

/// Writes a diffusers `vqvae/` folder: `config.json` and `diffusion_pytorch_model.safetensors`
/// (save_pretrained's key names).
pub fn write_vqvae_dir<B: KernelBackend>(
    model: &VQModel<B>,
    config: &VQModelConfig,
    dir: &Path,
    dtype: StoreDtype,
) -> Result<(), TrainError> {
    create_dir(dir)?;
    let mut json = serde_json::to_value(config).expect("the config serializes");
    let object = json.as_object_mut().expect("a JSON object");
    object.insert("_class_name".into(), json!("VQModel"));
    object.insert("_diffusers_version".into(), json!("0.42.1"));
    write_json(&dir.join("config.json"), &json)?;
    let tensors = pytorch_tensors(model, "", VQ_MODEL_RENAMES)?;
    write_safetensors(&dir.join("diffusion_pytorch_model.safetensors"), &tensors, dtype)
}

/// The reconstruction ceiling: encode, quantize and decode `count` images of `split` and score
/// each against its full ground truth. Returns the report and (original, reconstruction) pairs.
pub fn reconstruction_report<B: KernelBackend>(
    vqvae: &VQModel<B>,
    dataset: &Dataset,
    split: Split,
    count: usize,
    batch_size: usize,
    device: &B::Device,
) -> Result<(EvalReport, Vec<(image::RgbImage, image::RgbImage)>), TrainError> {
    let mut report = EvalReport::default();
    let mut pairs = Vec::with_capacity(count);
    let mut start = 0;
    while start < count {
        let size = batch_size.min(count - start);
        let samples: Vec<_> = (start..start + size).map(|i| dataset.sample(split, i as u64)).collect();
        let images: Vec<&image::RgbImage> = samples.iter().map(|s| &s.image).collect();
        let x = crate::data::images_to_tensor::<B>(&images, device);
        let output = vqvae.forward(x).map_err(|e| TrainError::model("VQ-VAE reconstruction", e))?;
        for (sample, image) in samples.iter().zip(tensor_to_images(output.sample)) {
            let mut reconstructed = sample.clone();
            reconstructed.image = image;
            report.add(&evaluate_ground_truth(&reconstructed));
            pairs.push((sample.image.clone(), reconstructed.image));
        }
        start += size;
    }
    Ok((report, pairs))
}
