//! Stage 1 as a [`Stage`] of the loop shell: one step of the VQ-VAE (restarts of unused codes,
//! the straight-through step on one device or several, the EMA codebook update) and its
//! checkpoint parts (model, optimizer, codebook).

use std::path::Path;
use std::sync::Arc;

use burn::module::{AutodiffModule, Param};
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{AdamW, AdamWConfig, Optimizer};
use burn::tensor::Tensor;
use vq_model::{VQModel, VQModelConfig};

use super::codebook::EmaCodebook;
use super::parallel::{step_gradients, LossWeights};
use super::VqVaeTrainConfig;
use crate::data::Dataset;
use crate::rng::SplitMix64;
use crate::train::batches::HostBatch;
use crate::train::checkpoint::{load_module, load_trainee, save_module, save_trainee};
use crate::train::export::StoreDtype;
use crate::train::parallel::replica_devices;
use crate::train::{BatchSource, Stage};
use crate::{TrainBackend, TrainError};

/// The VQ-VAE in training: its weights, optimizer and EMA codebook, and what each step needs.
pub(super) struct VqVaeStage<B: TrainBackend> {
    /// The diffusers config of the model, written with the export.
    pub architecture: VQModelConfig,
    /// The encoder, decoder and (a copy of the EMA) codebook that gradients train.
    pub model: VQModel<B>,
    optimizer: OptimizerAdaptor<AdamW, VQModel<B>, B>,
    /// The codebook's running statistics; `model`'s codebook follows it after every step.
    pub codebook: EmaCodebook<B::InnerBackend>,
    /// With `decoder_only`: the model's own codebook, which quantizes every step (bit for bit the
    /// codes the pipeline and stage 2 see; the EMA statistics' m_k / Ñ_k can round differently
    /// and then only report the codebook's use).
    frozen_codebook: Option<Tensor<B::InnerBackend, 2>>,
    /// The replicas' devices (the main one alone without data parallelism).
    devices: Vec<B::Device>,
    weights: LossWeights,
    restart_every: usize,
    restart_threshold: f64,
    keep_codes: bool,
    dataset: Arc<Dataset>,
    free_colors: f64,
    device: B::Device,
}

impl<B: TrainBackend> VqVaeStage<B> {
    /// Stage 1 of `config` on `device`, starting from `model` of `architecture`.
    pub fn new(
        config: &VqVaeTrainConfig,
        architecture: VQModelConfig,
        model: VQModel<B>,
        device: &B::Device,
    ) -> Result<Self, TrainError> {
        let run = &config.run;
        let optimizer = AdamWConfig::new().with_weight_decay(run.weight_decay).init::<B, VQModel<B>>();
        let codebook =
            EmaCodebook::<B::InnerBackend>::new(model.quantize.embedding.weight.val().inner(), config.codebook_decay);
        let devices = replica_devices::<B>(device, &run.device_indices, run.batch_size)
            .map_err(|e| TrainError::model("data parallelism", e))?;
        // Parameters initialise lazily: read them all before replicas are forked from the model.
        let _ = model.valid();
        let frozen_codebook = config.decoder_only.then(|| model.quantize.embedding.weight.val().inner());
        Ok(Self {
            architecture,
            model,
            optimizer,
            codebook,
            frozen_codebook,
            devices,
            weights: LossWeights::of(config),
            restart_every: config.restart_every,
            restart_threshold: config.restart_threshold,
            keep_codes: config.keep_codes,
            dataset: Arc::new(Dataset::new(run.dataset.clone(), run.seed)?),
            free_colors: config.free_colors,
            device: device.clone(),
        })
    }
}

impl<B: TrainBackend> Stage<B> for VqVaeStage<B> {
    type State = ();

    const NAME: &'static str = "VQ-VAE training";
    const COLUMNS: &'static [&'static str] = &["loss", "l1", "l2", "commitment", "restarted"];

    fn batches(&self) -> BatchSource {
        BatchSource { dataset: Arc::clone(&self.dataset), tokenizer: None, free_colors: self.free_colors }
    }

    fn state(&self) {}

    fn resume(
        mut self,
        _saved: (),
        dir: &Path,
        step: usize,
        progress: &mut dyn FnMut(&str),
    ) -> Result<(Self, Option<usize>), TrainError> {
        let rewarm_from;
        (self.model, self.optimizer, rewarm_from) =
            load_trainee(self.model, self.optimizer, dir, step, &self.device, progress)?;
        self.codebook = load_module(self.codebook, &dir.join("codebook"), &self.device)?;
        if self.frozen_codebook.is_some() {
            self.frozen_codebook = Some(self.model.quantize.embedding.weight.val().inner());
        }
        Ok((self, rewarm_from))
    }

    fn save(&self, dir: &Path) -> Result<(), TrainError> {
        save_trainee(&self.model, &self.optimizer, dir, StoreDtype::F32)?;
        save_module(self.codebook.clone(), &dir.join("codebook"))
    }

    fn step(
        mut self,
        step: usize,
        lr: f64,
        batch: &HostBatch,
        rng: &mut SplitMix64,
    ) -> Result<(Self, Vec<f64>), TrainError> {
        let mut restarted = 0;
        if self.frozen_codebook.is_none() && step.is_multiple_of(self.restart_every) {
            // The whole batch's latents before this step's update (an extra encoder pass every
            // `restart_every` steps), so that the replicas quantize against the restarted codebook.
            let x = batch.images_tensor::<B::InnerBackend>(&self.device);
            let latents = self.model.valid().encode(x).map_err(|e| TrainError::model("VQ-VAE encode", e))?;
            let [b, d, h, w] = latents.dims();
            // [b, d, h, w] → [b·h·w, d]: one latent vector per row.
            let flat = latents.permute([0, 2, 3, 1]).reshape([b * h * w, d]);
            let reseed = step == 0 && !self.keep_codes;
            (self.codebook, restarted) = self.codebook.restart_dead_codes(flat, self.restart_threshold, reseed, rng);
        }
        let quantizer = self.frozen_codebook.clone().unwrap_or_else(|| self.codebook.codebook());
        let out = step_gradients(&self.model, &self.devices, batch, quantizer, &self.weights, &self.device)?;
        self.model = self.optimizer.step(lr, self.model, out.grads);
        self.codebook = self.codebook.update(out.latents, out.indices);
        if self.frozen_codebook.is_none() {
            let weight = &mut self.model.quantize.embedding.weight;
            *weight = Param::initialized(weight.id, Tensor::from_inner(self.codebook.codebook()));
        }
        let [loss, l1, l2, commitment] = out.values;
        Ok((self, vec![loss, l1, l2, commitment, restarted as f64]))
    }

    fn log_terms(&self, values: &[f64]) -> Vec<(&'static str, f64)> {
        vec![("l1", values[1]), ("commit", values[3]), ("usage", self.codebook.usage(self.restart_threshold))]
    }
}
