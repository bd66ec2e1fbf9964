//! Stage 1: training the VQ-VAE (van den Oord et al., arXiv 1711.00937) of a small diffusers
//! `VQModel` on the procedural dataset.
//!
//! Per step, on images x: latents z_e = `quant_conv(encoder(x))`; nearest codes e (on the
//! inner backend, outside autodiff); straight-through z_q = z_e + sg(e − z_e); reconstruction
//! x̂ = `decoder(post_quant_conv(z_q))`; loss ‖w ⊙ (x − x̂)‖₁ + ‖√w ⊙ (x − x̂)‖² + β‖z_e − sg(e)‖²
//! (means; w weights the objects' pixels, `foreground_weight`). With `run.device_indices` each batch
//! is split across replicas whose gradients, latents and codes are gathered on the main device
//! (`parallel.rs`). The codebook is not trained by gradients but as an exponential moving average of the
//! latents assigned to each code ([`EmaCodebook`], appendix A.1 of the paper), with restarts
//! of unused codes. AdamW with warm-up and cosine decay updates the encoder and decoder. The step
//! is a [`Stage`](crate::train::Stage) (`stage.rs`) of the loop shell both stages share
//! ([`crate::train::run_loop`]: resume, batches, schedule, loss curve, budget, checkpoints).
//!
//! `decoder_only` fine-tunes the decoder of a trained VQ-VAE (`run.init_from`) with its encoder and
//! codebook frozen: the codes of every image stay what stage 2 was trained on, so a sharper
//! decoder can replace the old one in a shipped pipeline without retraining the transformer.
//!
//! The result is written as a diffusers `vqvae/` folder (`config.json` +
//! `diffusion_pytorch_model.safetensors`), which stage 2 and the pipeline load.

mod codebook;
mod config;
mod gradients;
mod parallel;
mod stage;
#[cfg(test)]
mod tests;
mod train;

pub use codebook::EmaCodebook;
pub use config::VqVaeTrainConfig;
pub use gradients::{max_magnitude, named_step_gradients, relative_max_error, NamedGradient, StepGradients};
pub use train::{reconstruction_report, train_vqvae, write_vqvae_dir, VqVaeTrainSummary};
