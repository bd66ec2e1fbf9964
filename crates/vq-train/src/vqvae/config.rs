//! Stage 1's configuration: the architecture, the loss and the codebook, beside the shared
//! [`RunConfig`].

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use vq_model::VQModelConfig;

use crate::data::DatasetConfig;
use crate::train::RunConfig;
use crate::TrainError;

/// Everything stage 1 needs: the run, the architecture, the loss and the codebook.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VqVaeTrainConfig {
    /// Output folder, steps, batch, learning rate, budget, seed, dataset… With `init_from` (a
    /// `vqvae/` folder) its `config.json` fixes the architecture: the fields
    /// `block_out_channels` … `vq_embed_dim` are not used. Without `decoder_only` or
    /// `keep_codes` the first step then re-seeds every code from that batch's latents, as for a
    /// fresh codebook: the codes are all new (a pipeline's transformer then needs
    /// [`crate::diffusion::retarget_pipeline`]) while the encoder and decoder start trained.
    #[serde(flatten)]
    pub run: RunConfig,
    /// Channels of each resolution level; `n` levels downsample by 2^(n−1).
    pub block_out_channels: Vec<usize>,
    /// Resnets per encoder block.
    pub layers_per_block: usize,
    /// Groups of every GroupNorm. Keep several channels per group at the first level: with one
    /// (32 groups of 32 channels, diffusers' usual 32) GroupNorm normalises each channel over the
    /// image, and a flat background's colour — constant over the image — is normalised away at
    /// every norm, down to `conv_norm_out`; the VQ-VAE then hardly learns colours
    /// (BENCHMARKS.md: L1 0.65 against 0.35 after 120 steps with 8 groups).
    pub norm_num_groups: usize,
    /// Codebook size K.
    pub num_vq_embeddings: usize,
    /// Codebook vector width (also the encoder's latent channels).
    pub vq_embed_dim: usize,
    /// β of the commitment loss ‖z_e − sg(e)‖².
    pub commitment_weight: f64,
    /// Weight of foreground pixels in the reconstruction loss (background 1). Objects cover 2–8 %
    /// of an image: unweighted, the loss is nearly all background and shapes stay blobs.
    pub foreground_weight: f64,
    /// Weight of the pixels on objects' outlines (a two-pixel band where object and background
    /// meet), replacing their foreground or background weight; `None`: no outline term. The
    /// outline is what a blurring decoder gets wrong while the interior is already right.
    pub outline_weight: Option<f64>,
    /// γ of the EMA codebook.
    pub codebook_decay: f64,
    /// Restart unused codes every this many steps (and at step 0).
    pub restart_every: usize,
    /// A code is unused when its EMA count is below this fraction of the mean.
    pub restart_threshold: f64,
    /// With `run.init_from`: train everything but start from its codebook instead of re-seeding
    /// it, so the codes move with the encoder instead of being drawn anew (only the dead-code
    /// restarts replace codes) and a transformer trained on them stays close to valid
    /// (`retarget_pipeline` then matches most codes with themselves).
    pub keep_codes: bool,
    /// Train only `post_quant_conv` and the decoder; the encoder, `quant_conv` and the codebook
    /// keep `run.init_from`'s weights, so every image keeps its codes and a stage-2 transformer
    /// trained on them stays valid (a sharper decoder without retraining stage 2). The loss is
    /// the reconstruction alone: the commitment term only trains the encoder. Needs
    /// `run.init_from`.
    pub decoder_only: bool,
    /// Fraction of training images repainted in free colours ([`crate::data::Dataset::repaint`]:
    /// background and objects drawn from the whole RGB cube, held-out (colour, shape) pairs kept
    /// out) so that the codes carry shape apart from colour; 0 trains on the named colours only.
    #[serde(default)]
    pub free_colors: f64,
}

impl Default for VqVaeTrainConfig {
    /// The shapes model's stage 1 (crate README): 3 levels [32, 64, 128] (64 px → 16 × 16
    /// latents), 8 GroupNorm groups, K = 256 codes of width 64, batch 64, AdamW 3e−4 with cosine
    /// decay (1e−3 diverged after 30 steps at batch 32, BENCHMARKS.md), 3 k steps.
    fn default() -> Self {
        Self {
            run: RunConfig {
                out_dir: PathBuf::from("runs/vqvae"),
                batch_size: 64,
                steps: 3000,
                learning_rate: 3e-4,
                warmup_steps: 100,
                weight_decay: 1e-4,
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
            block_out_channels: vec![32, 64, 128],
            layers_per_block: 1,
            norm_num_groups: 8,
            num_vq_embeddings: 256,
            vq_embed_dim: 64,
            commitment_weight: 0.25,
            foreground_weight: 10.0,
            outline_weight: None,
            codebook_decay: 0.99,
            restart_every: 200,
            restart_threshold: 0.01,
            keep_codes: false,
            decoder_only: false,
            free_colors: 0.0,
        }
    }
}

impl VqVaeTrainConfig {
    /// The diffusers `VQModel` config of the architecture (no attention in the down/up
    /// blocks; the mid blocks keep theirs).
    pub fn model_config(&self) -> VQModelConfig {
        let levels = self.block_out_channels.len();
        VQModelConfig {
            down_block_types: vec!["DownEncoderBlock2D".into(); levels],
            up_block_types: vec!["UpDecoderBlock2D".into(); levels],
            block_out_channels: self.block_out_channels.clone(),
            layers_per_block: self.layers_per_block,
            latent_channels: self.vq_embed_dim,
            num_vq_embeddings: self.num_vq_embeddings,
            norm_num_groups: self.norm_num_groups,
            vq_embed_dim: Some(self.vq_embed_dim),
            sample_size: self.run.dataset.image_size as usize,
            ..VQModelConfig::default()
        }
    }

    /// Refuses contradictory or out-of-range settings, naming the field (and its flag) and the
    /// value: `keep_codes` with `decoder_only`, either without `run.init_from`, loss weights of 0
    /// or less, a `free_colors` fraction outside [0, 1], and what [`RunConfig::validate`] refuses.
    pub fn validate(&self) -> Result<(), TrainError> {
        let refuse = |message: String| Err(TrainError::model("VQ-VAE config", message));
        if self.keep_codes && self.decoder_only {
            return refuse(
                "keep_codes (--keep-codes) and decoder_only (--decoder-only): decoder_only already freezes the codes; give one"
                    .into(),
            );
        }
        if self.run.init_from.is_none() && (self.decoder_only || self.keep_codes) {
            let flag =
                if self.decoder_only { "decoder_only trains the decoder of" } else { "keep_codes keeps the codes of" };
            return refuse(format!("{flag} an existing VQ-VAE: give init_from (--init-from) its vqvae/ folder"));
        }
        // A weight of 0 would drop the objects from the loss, a negative one reward errors on them.
        if self.foreground_weight.is_nan() || self.foreground_weight <= 0.0 {
            return refuse(format!(
                "foreground_weight {}: must be greater than 0 (1 weighs objects like the background)",
                self.foreground_weight
            ));
        }
        if !(0.0..=1.0).contains(&self.free_colors) {
            return refuse(format!("free_colors {}: must be a fraction in [0, 1]", self.free_colors));
        }
        if let Some(weight) = self.outline_weight.filter(|w| w.is_nan() || *w <= 0.0) {
            return refuse(format!(
                "outline_weight {weight}: must be greater than 0 (leave it unset for no outline term)"
            ));
        }
        self.run.validate()
    }
}
