//! Stage 2 as a [`Stage`] of the loop shell: its set-up (trimmed tokenizer, frozen VQ-VAE on
//! every replica, model sizes, optimizer), one step (caption dropout, importance-sampled
//! timesteps, the VQ-Diffusion loss's gradients on the replicas, AdamW, the weight EMA) and its
//! checkpoint parts (model, optimizer, weight EMA, the timestep sampler's statistics).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::grad_clipping::GradientClippingConfig;
use burn::module::AutodiffModule;
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{AdamW, AdamWConfig, Optimizer};
use clip_text::Tokenizer;
use serde::{Deserialize, Serialize};
use vq_model::VQModel;
use vq_scheduler::{ScheduleTables, VQDiffusionSchedulerConfig};

use super::model::{TextToTokens, TextToTokensConfig};
use super::parallel::{split_step, step_gradients, Replica};
use super::DiffusionTrainConfig;
use crate::data::{Dataset, DatasetConfig};
use crate::loss::{TimestepSampler, VqDiffusionLossConfig};
use crate::rng::SplitMix64;
use crate::text::{caption_words, write_trimmed_tokenizer};
use crate::train::batches::HostBatch;
use crate::train::checkpoint::{load_module, load_trainee, save_module_as, save_trainee};
use crate::train::export::{write_json, StoreDtype};
use crate::train::parallel::replica_devices;
use crate::train::params::{ema_decay_at, update_ema};
use crate::train::{BatchSource, Stage};
use crate::{TrainBackend, TrainError};

/// Stage 2's part of `checkpoint/state.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct DiffusionState {
    /// The importance sampler of timesteps and its loss statistics.
    sampler: TimestepSampler,
}

/// Text encoder + transformer in training, their weight EMA, and what each step needs.
pub(super) struct DiffusionStage<B: TrainBackend> {
    /// The sizes of the trained model.
    pub model_config: TextToTokensConfig,
    /// The scheduler the model is trained for (exported with it).
    pub scheduler_config: VQDiffusionSchedulerConfig,
    /// The trimmed tokenizer (`out_dir/tokenizer`).
    pub tokenizer_dir: PathBuf,
    /// Parameters of text encoder + transformer + null embedding.
    pub parameters: usize,
    /// The weights gradients train.
    pub model: TextToTokens<B>,
    optimizer: OptimizerAdaptor<AdamW, TextToTokens<B>, B>,
    /// The weights' exponential moving average (what is exported unless `ema_decay` is 0).
    pub ema: TextToTokens<B::InnerBackend>,
    sampler: TimestepSampler,
    /// The frozen VQ-VAE on each replica's device.
    replicas: Vec<Replica<B>>,
    tables: ScheduleTables,
    loss_config: VqDiffusionLossConfig,
    caption_dropout: f64,
    ema_decay: f64,
    checkpoint_dtype: StoreDtype,
    batch_size: usize,
    /// Tokens per image.
    pixels: usize,
    dataset: Arc<Dataset>,
    tokenizer: Arc<Tokenizer>,
    device: B::Device,
}

impl<B: TrainBackend> DiffusionStage<B> {
    /// Stage 2 of `config` on `device`: trims the CLIP tokenizer into `out_dir/tokenizer`, loads
    /// the frozen VQ-VAE on every replica's device, sizes the model from the VQ-VAE (K, latent
    /// grid, image side) and the config or starts from `run.init_from`'s pipeline, and writes
    /// `out_dir/model_config.json`. `progress` hears the model's size.
    pub fn new(
        config: &DiffusionTrainConfig,
        device: &B::Device,
        progress: &mut dyn FnMut(&str),
    ) -> Result<Self, TrainError> {
        let run = &config.run;
        let tokenizer_dir = run.out_dir.join("tokenizer");
        let vocab_size =
            write_trimmed_tokenizer(&config.clip_tokenizer_dir, &tokenizer_dir, &caption_words(), config.text_length)?;
        let tokenizer = Tokenizer::from_dir(&tokenizer_dir).map_err(|e| TrainError::model("trimmed tokenizer", e))?;
        // The frozen VQ-VAE on every replica's device.
        let load_vqvae = |device: &B::Device| {
            VQModel::<B::InnerBackend>::from_pretrained(&config.vqvae_dir, None, device)
                .map_err(|e| TrainError::model(format!("loading {}", config.vqvae_dir.display()), e))
        };
        let replicas = replica_devices::<B>(device, &run.device_indices, run.batch_size)
            .map_err(|e| TrainError::model("data parallelism", e))?
            .into_iter()
            .map(|device| Ok(Replica { vqvae: load_vqvae(&device)?, device }))
            .collect::<Result<Vec<_>, TrainError>>()?;
        let vqvae = &replicas[0].vqvae;
        let num_classes = vqvae.quantize.num_embeddings();
        let levels = vqvae.encoder.down_blocks.len();
        // Stage 1 records its image side as the VQ-VAE config's `sample_size`.
        let vq_config = vq_model::VQModelConfig::from_file(&config.vqvae_dir.join("config.json"))
            .map_err(|e| TrainError::model("VQ-VAE config", e))?;
        let dataset_config = DatasetConfig { image_size: vq_config.sample_size as u32, ..run.dataset.clone() };
        let latent_size = vq_config.sample_size >> (levels - 1);

        let sized = TextToTokensConfig {
            num_classes,
            latent_size,
            num_timesteps: config.num_timesteps,
            heads: config.heads,
            head_dim: config.head_dim,
            layers: config.layers,
            vocab_size,
            text_width: config.text_width,
            text_layers: config.text_layers,
            text_heads: config.text_heads,
            text_length: config.text_length,
            eos_token_id: i64::from(tokenizer.eos_id()),
        };
        let (model_config, model) = match &run.init_from {
            Some(dir) => {
                let (from, model) = TextToTokens::<B>::from_pipeline(dir, device)?;
                check_init_from(dir, &from, &sized, &tokenizer_dir)?;
                progress(&format!("starting from the weights of {}", dir.display()));
                (from, model)
            }
            None => {
                let model = sized.init(device)?;
                (sized, model)
            }
        };
        let mut scheduler_config = VQDiffusionSchedulerConfig::new(num_classes + 1);
        scheduler_config.num_train_timesteps = model_config.num_timesteps;
        let tables = ScheduleTables::new(&scheduler_config).map_err(|e| TrainError::model("schedule", e))?;
        let loss_config = VqDiffusionLossConfig::new().with_auxiliary_loss_weight(config.auxiliary_loss_weight);

        write_json(
            &run.out_dir.join("model_config.json"),
            &serde_json::json!({ "model": &model_config, "scheduler": &scheduler_config }),
        )?;
        let parameters = burn::module::Module::num_params(&model);
        progress(&format!(
            "text encoder + transformer: {parameters} parameters; K = {num_classes}, {latent_size}×{latent_size} tokens, vocab {vocab_size}"
        ));
        let optimizer = AdamWConfig::new()
            .with_beta_1(config.beta_1)
            .with_beta_2(config.beta_2)
            .with_weight_decay(run.weight_decay)
            .with_grad_clipping(Some(GradientClippingConfig::Norm(config.grad_clip_norm)))
            .init::<B, TextToTokens<B>>();
        let ema = model.valid();
        let sampler = TimestepSampler::new(model_config.num_timesteps);
        Ok(Self {
            parameters,
            model,
            optimizer,
            ema,
            sampler,
            replicas,
            tables,
            loss_config,
            caption_dropout: config.caption_dropout,
            ema_decay: config.ema_decay,
            checkpoint_dtype: config.checkpoint_dtype,
            batch_size: run.batch_size,
            pixels: latent_size * latent_size,
            dataset: Arc::new(Dataset::new(dataset_config, run.seed)?),
            tokenizer: Arc::new(tokenizer),
            model_config,
            scheduler_config,
            tokenizer_dir,
            device: device.clone(),
        })
    }
}

impl<B: TrainBackend> Stage<B> for DiffusionStage<B> {
    type State = DiffusionState;

    const NAME: &'static str = "diffusion training";
    const COLUMNS: &'static [&'static str] = &["loss", "vb", "aux", "mean_t"];

    fn batches(&self) -> BatchSource {
        BatchSource {
            dataset: Arc::clone(&self.dataset),
            tokenizer: Some(Arc::clone(&self.tokenizer)),
            free_colors: 0.0,
        }
    }

    fn state(&self) -> DiffusionState {
        DiffusionState { sampler: self.sampler.clone() }
    }

    fn resume(
        mut self,
        saved: DiffusionState,
        dir: &Path,
        step: usize,
        progress: &mut dyn FnMut(&str),
    ) -> Result<(Self, Option<usize>), TrainError> {
        let rewarm_from;
        (self.model, self.optimizer, rewarm_from) =
            load_trainee(self.model, self.optimizer, dir, step, &self.device, progress)?;
        self.ema = load_module(self.ema, &dir.join("ema"), &self.device)?;
        self.sampler = saved.sampler;
        Ok((self, rewarm_from))
    }

    fn save(&self, dir: &Path) -> Result<(), TrainError> {
        save_trainee(&self.model, &self.optimizer, dir, self.checkpoint_dtype)?;
        save_module_as(self.ema.clone(), &dir.join("ema"), self.checkpoint_dtype)
    }

    fn step(
        mut self,
        step: usize,
        lr: f64,
        batch: &HostBatch,
        rng: &mut SplitMix64,
    ) -> Result<(Self, Vec<f64>), TrainError> {
        let size = self.batch_size;
        let dropped: Vec<bool> = (0..size).map(|_| rng.bernoulli(self.caption_dropout)).collect();
        let timesteps = self.sampler.sample(size, rng);
        let shards = split_step(batch, &dropped, &timesteps, self.replicas.len());
        let (grads, values) =
            step_gradients(&self.model, &self.replicas, shards, &self.tables, &self.loss_config, &self.device)?;
        self.model = self.optimizer.step(lr, self.model, grads);
        self.ema = update_ema(self.ema, &self.model.valid(), ema_decay_at(step, self.ema_decay));
        self.sampler.update(&timesteps.t, &values.vb);
        let per_token = |values: &[f64]| values.iter().sum::<f64>() / (values.len() * self.pixels) as f64;
        let mean_t = timesteps.t.iter().sum::<usize>() as f64 / size as f64;
        let row = vec![values.loss, per_token(&values.vb), per_token(&values.aux), mean_t];
        Ok((self, row))
    }

    fn log_terms(&self, values: &[f64]) -> Vec<(&'static str, f64)> {
        vec![("vb/token", values[1]), ("aux/token", values[2])]
    }
}

/// Checks the sizes `from` of the `init_from` pipeline `dir` against what the data fixes: K and
/// the latent grid of the VQ-VAE, the trimmed tokenizer (the same `vocab.json`) and `text_length`.
fn check_init_from(
    dir: &Path,
    from: &TextToTokensConfig,
    sized: &TextToTokensConfig,
    tokenizer_dir: &Path,
) -> Result<(), TrainError> {
    let context = format!("init_from {}", dir.display());
    let mismatch = [
        ("K (the VQ-VAE's codes)", from.num_classes, sized.num_classes),
        ("the latent grid's side", from.latent_size, sized.latent_size),
        ("text positions", from.text_length, sized.text_length),
    ]
    .into_iter()
    .find(|(_, pipeline, here)| pipeline != here);
    if let Some((what, pipeline, here)) = mismatch {
        return Err(TrainError::model(
            context,
            format!("{what} is {pipeline} there and {here} here (retarget the pipeline onto the VQ-VAE first)"),
        ));
    }
    let vocab =
        |dir: &Path| std::fs::read(dir.join("vocab.json")).map_err(|e| TrainError::io(&dir.join("vocab.json"), e));
    if vocab(&dir.join("tokenizer"))? != vocab(tokenizer_dir)? {
        return Err(TrainError::model(context, "its tokenizer's vocab.json is not the trimmed tokenizer's"));
    }
    Ok(())
}
