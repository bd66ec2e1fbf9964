//! Stage 2's entry point (the loop shell around [`DiffusionStage`]) and the export of a
//! checkpoint.

use burn::module::AutodiffModule;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use vq_kernels::KernelBackend;
use vq_scheduler::VQDiffusionSchedulerConfig;

use super::export::write_pipeline;
use super::model::TextToTokensConfig;
use super::stage::DiffusionStage;
use super::DiffusionTrainConfig;
use crate::train::checkpoint::load_module;
use crate::train::export::{read_json, StoreDtype};
use crate::train::run_loop;
use crate::{TrainBackend, TrainError};

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

/// Trains text encoder + transformer on tokens of the frozen VQ-VAE in the loop shell
/// ([`run_loop`]) and exports the pipeline to `out_dir/pipeline` (also when the time budget stops
/// the run early).
pub fn train_diffusion<B: TrainBackend>(
    config: &DiffusionTrainConfig,
    device: &B::Device,
    progress: &mut dyn FnMut(&str),
) -> Result<DiffusionTrainSummary, TrainError> {
    let finished =
        run_loop(&config.run, device, progress, |progress| DiffusionStage::<B>::new(config, device, progress))?;
    let stage = finished.stage;
    let shipped = if config.ema_decay > 0.0 { stage.ema } else { stage.model.valid() };
    let pipeline_dir = config.run.out_dir.join("pipeline");
    write_pipeline(
        &shipped,
        &stage.model_config,
        &config.vqvae_dir,
        &stage.tokenizer_dir,
        &stage.scheduler_config,
        &pipeline_dir,
        StoreDtype::F16,
    )?;
    progress(&format!("exported {}", pipeline_dir.display()));
    Ok(DiffusionTrainSummary {
        steps_done: finished.steps_done,
        first_loss: finished.first_loss,
        final_loss: finished.final_loss,
        seconds_per_step: finished.seconds_per_step,
        parameters: stage.parameters,
        pipeline_dir,
    })
}
