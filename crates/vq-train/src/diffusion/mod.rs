//! Stage 2: training the text encoder and the discrete diffusion transformer with
//! VQ-Diffusion's objective (Gu et al., arXiv 2111.14822) on tokens of the frozen VQ-VAE, and
//! exporting the pipeline in the diffusers hub layout.
//!
//! Per step: render a batch (CPU workers), encode it to tokens x_0 with the VQ-VAE (inner
//! backend, no gradient), draw t per sample ([`crate::loss::TimestepSampler`]: uniform, then
//! importance-sampled), noise x_t = [`crate::loss::q_sample`], condition on the L2-normalised
//! CLIP states of the caption — or, with probability `caption_dropout`, on the learned null
//! embedding (classifier-free guidance training) — predict log p_θ(x_0 | x_t, y), and minimise
//! [`crate::loss::VqDiffusionLossConfig::loss`] with AdamW (warm-up + cosine, per-parameter
//! gradient-norm clipping). An EMA of the weights is what gets exported. With
//! `run.device_indices`, each batch is split across replicas on several devices (or several streams
//! of one) and their gradients summed before the step (`parallel.rs`). The step is a
//! [`Stage`](crate::train::Stage) (`stage.rs`) of the loop shell both stages share
//! ([`crate::train::run_loop`]).

mod config;
mod export;
mod init;
mod model;
mod parallel;
mod retarget;
mod stage;
mod swap;
mod train;

pub use config::DiffusionTrainConfig;
pub use export::write_pipeline;
pub use model::{TextToTokens, TextToTokensConfig};
pub use retarget::{count_code_pairs, match_codes, retarget_pipeline, CodeMatch};
pub use swap::swap_vqvae;
pub use train::{export_checkpoint, train_diffusion, DiffusionTrainSummary};

#[cfg(test)]
mod retarget_tests;
#[cfg(test)]
mod tests;
