//! Stage 2's configuration: the model's sizes and the optimisation of text encoder and
//! transformer, beside the shared [`RunConfig`].

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::data::DatasetConfig;
use crate::train::export::StoreDtype;
use crate::train::RunConfig;

/// Everything stage 2 needs: the run, the VQ-VAE and tokenizer it starts from, the model's sizes
/// and the objective.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DiffusionTrainConfig {
    /// Output folder (`pipeline/`, `tokenizer/`, `model_config.json` beside the checkpoint and
    /// curve), steps, batch, learning rate, budget, seed, dataset… With `init_from` (an exported
    /// pipeline) training starts from its text encoder, transformer and null embedding, and its
    /// configs fix the sizes (`heads`, `head_dim`, `layers`, `text_*` and `num_timesteps` are
    /// ignored); its K, latent grid and tokenizer must be those of `vqvae_dir` and the trimmed
    /// tokenizer — [`super::retarget_pipeline`] moves a pipeline onto a new VQ-VAE.
    #[serde(flatten)]
    pub run: RunConfig,
    /// The trained VQ-VAE (`vqvae/` written by stage 1).
    pub vqvae_dir: PathBuf,
    /// A full CLIP tokenizer folder (`vocab.json` + `merges.txt`) to trim.
    pub clip_tokenizer_dir: PathBuf,
    /// T, the number of diffusion steps (the pipeline runs all of them).
    pub num_timesteps: usize,
    /// Transformer heads.
    pub heads: usize,
    /// Transformer head width.
    pub head_dim: usize,
    /// Transformer blocks.
    pub layers: usize,
    /// Text encoder width.
    pub text_width: usize,
    /// Text encoder layers.
    pub text_layers: usize,
    /// Text encoder heads.
    pub text_heads: usize,
    /// Token positions (tokenizer `model_max_length`).
    pub text_length: usize,
    /// AdamW β₁.
    pub beta_1: f32,
    /// AdamW β₂.
    pub beta_2: f32,
    /// Gradient clipping: each parameter's gradient is scaled to at most this L2 norm
    /// (burn clips per parameter, not globally).
    pub grad_clip_norm: f32,
    /// Decay of the weight EMA that is exported (0 exports the raw weights).
    pub ema_decay: f64,
    /// Probability that a caption is replaced by the null embedding.
    pub caption_dropout: f64,
    /// λ of the auxiliary x_0 loss. The default, 0.05, is 100 × the original's 5e−4: at λ = 5e−4
    /// the x_0 prediction of a masked image — where the caption alone must place each object — is
    /// trained only through the posterior KL, whose gradient there is ≈ 1/T as strong, and the
    /// shapes model learned no positions in 4,000 steps (BENCHMARKS.md).
    pub auxiliary_loss_weight: f64,
    /// Precision of the checkpoint's weights and weight EMA (the optimizer state stays f32):
    /// F16 halves what a run carries between machines.
    pub checkpoint_dtype: StoreDtype,
}

impl Default for DiffusionTrainConfig {
    /// The shapes model's stage 2 (crate README): transformer 6 × 32 wide, 6 layers, T = 50;
    /// CLIP text encoder 128 wide, 4 layers, 4 heads, 32 positions; batch 128, AdamW (0.9, 0.96),
    /// wd 4.5e−2, lr 5e−4, 500 warm-up steps, cosine, clip 0.5, EMA 0.999, 4 k steps.
    fn default() -> Self {
        Self {
            run: RunConfig {
                out_dir: PathBuf::from("runs/diffusion"),
                batch_size: 128,
                steps: 4000,
                learning_rate: 5e-4,
                warmup_steps: 500,
                weight_decay: 4.5e-2,
                device_indices: Vec::new(),
                max_minutes: None,
                keep_schedule: false,
                log_every: 50,
                checkpoint_every: 500,
                workers: 4,
                seed: 0,
                resume: true,
                init_from: None,
                dataset: DatasetConfig::default(),
            },
            vqvae_dir: PathBuf::from("runs/vqvae/vqvae"),
            clip_tokenizer_dir: PathBuf::from("fixtures/tiny/hub/tokenizer"),
            num_timesteps: 50,
            heads: 6,
            head_dim: 32,
            layers: 6,
            text_width: 128,
            text_layers: 4,
            text_heads: 4,
            text_length: 32,
            beta_1: 0.9,
            beta_2: 0.96,
            grad_clip_norm: 0.5,
            ema_decay: 0.999,
            caption_dropout: 0.1,
            auxiliary_loss_weight: 0.05,
            checkpoint_dtype: StoreDtype::F32,
        }
    }
}
