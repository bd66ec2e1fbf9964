//! `vqvae` and `transformer`: the two training stages, with progress lines on stderr.

use vq_train::diffusion::{train_diffusion, DiffusionTrainConfig};
use vq_train::vqvae::{train_vqvae, VqVaeTrainConfig};
use vq_train::TrainBackend;

use crate::args::{TransformerArgs, VqVaeArgs};
use crate::backend::{dispatch_training, TrainJob};
use crate::error::CliError;
use crate::{print_path, report};

/// Trains stage 1 on `--backend`; prints the `vqvae/` folder's path.
pub fn vqvae(args: &VqVaeArgs) -> Result<(), CliError> {
    let config = args.config();
    config.validate().map_err(|e| CliError::Usage(e.to_string()))?;
    dispatch_training(args.run.backend.backend, VqVae(config))
}

/// Trains stage 2 on `--backend`; prints the pipeline folder's path.
pub fn transformer(args: &TransformerArgs) -> Result<(), CliError> {
    let config = args.config();
    config.run.validate().map_err(|e| CliError::Usage(e.to_string()))?;
    dispatch_training(args.run.backend.backend, Transformer(config))
}

struct VqVae(VqVaeTrainConfig);

impl TrainJob for VqVae {
    fn run<B: TrainBackend>(self, device: B::Device) -> Result<(), CliError> {
        let summary = train_vqvae::<B>(&self.0, &device, &mut report)?;
        report(&format!(
            "VQ-VAE: {} steps, loss {:.4} → {:.4}, codebook use {:.1} %, {:.3} s/step",
            summary.steps_done,
            summary.first_loss,
            summary.final_loss,
            100.0 * summary.codebook_usage,
            summary.seconds_per_step,
        ));
        print_path(&summary.vqvae_dir);
        Ok(())
    }
}

struct Transformer(DiffusionTrainConfig);

impl TrainJob for Transformer {
    fn run<B: TrainBackend>(self, device: B::Device) -> Result<(), CliError> {
        let summary = train_diffusion::<B>(&self.0, &device, &mut report)?;
        report(&format!(
            "transformer: {} parameters, {} steps, loss {:.4} → {:.4}, {:.3} s/step",
            summary.parameters, summary.steps_done, summary.first_loss, summary.final_loss, summary.seconds_per_step,
        ));
        print_path(&summary.pipeline_dir);
        Ok(())
    }
}
