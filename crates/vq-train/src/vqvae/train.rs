//! The VQ-VAE training loop, its checkpoints and its export.

use crate::TrainBackend;
use vq_kernels::KernelBackend;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::module::{AutodiffModule, Param};
use burn::optim::{AdamWConfig, Optimizer};
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};
use serde_json::json;
use vq_model::{VQModel, VQModelConfig};

use super::codebook::EmaCodebook;
use super::parallel::{step_gradients, LossWeights};
use crate::data::{tensor_to_images, Dataset, DatasetConfig, Split};
use crate::eval::{evaluate_ground_truth, EvalReport};
use crate::rng::SplitMix64;
use crate::train::batches::BatchStream;
use crate::train::checkpoint::{load_module, load_state, load_trainee, save_module, save_record, save_state, RunState};
use crate::train::export::{create_dir, pytorch_tensors, write_json, write_safetensors, StoreDtype, VQ_MODEL_RENAMES};
use crate::train::log::{LossCurve, LossWindows, Progress};
use crate::train::parallel::replica_devices;
use crate::train::schedule::step_learning_rate;
use crate::TrainError;

/// Everything stage 1 needs: architecture, optimisation and run control.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VqVaeTrainConfig {
    /// Output folder: `vqvae/` (the result), `checkpoint/`, `loss.csv`, `loss.png`.
    pub out_dir: PathBuf,
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
    /// Images per step.
    pub batch_size: usize,
    /// Training steps (the cosine schedule's length).
    pub steps: usize,
    /// Peak AdamW learning rate.
    pub learning_rate: f64,
    /// Linear warm-up steps.
    pub warmup_steps: usize,
    /// AdamW's decoupled weight decay.
    pub weight_decay: f32,
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
    /// Indices of the backend's devices that share each batch (data parallelism, as in stage 2's
    /// `device_indices`); empty: the `device` given to [`train_vqvae`] alone.
    pub device_indices: Vec<u16>,
    /// Stop cleanly (and save) after this many minutes of training in this process.
    pub max_minutes: Option<f64>,
    /// With `max_minutes`: keep the learning-rate schedule of `steps` instead of shortening it to
    /// end inside the budget (for a run continued over several processes).
    pub keep_schedule: bool,
    /// Print a progress line every this many steps.
    pub log_every: usize,
    /// Save a checkpoint every this many steps (and at the end).
    pub checkpoint_every: usize,
    /// CPU threads rendering batches.
    pub workers: usize,
    /// Seed of the dataset, the device RNG and the restarts.
    pub seed: u64,
    /// Continue from `out_dir/checkpoint` when it exists.
    pub resume: bool,
    /// Start from the weights of an exported `vqvae/` folder instead of a random initialisation.
    /// Its `config.json` then fixes the architecture: the architecture fields above
    /// (`block_out_channels` … `vq_embed_dim`) are not used. Without `decoder_only` or
    /// `keep_codes` the first step re-seeds every code from that batch's latents, as for a fresh
    /// codebook: the codes are all new (a pipeline's transformer then needs
    /// [`crate::diffusion::retarget_pipeline`]), and the encoder and decoder start trained
    /// (session 13: the shape ceiling rose 69 → 88 % in 971 steps).
    pub init_from: Option<PathBuf>,
    /// With `init_from`: train everything but start from its codebook instead of re-seeding it,
    /// so the codes move with the encoder instead of being drawn anew (only the dead-code
    /// restarts replace codes) and a transformer trained on them stays close to valid
    /// (`retarget_pipeline` then matches most codes with themselves).
    pub keep_codes: bool,
    /// Train only `post_quant_conv` and the decoder; the encoder, `quant_conv` and the codebook
    /// keep `init_from`'s weights, so every image keeps its codes and a stage-2 transformer
    /// trained on them stays valid (a sharper decoder without retraining stage 2). The loss is
    /// the reconstruction alone: the commitment term only trains the encoder. Needs `init_from`.
    pub decoder_only: bool,
    /// Fraction of training images repainted in free colours ([`crate::data::Dataset::repaint`]:
    /// background and objects drawn from the whole RGB cube, held-out (colour, shape) pairs kept
    /// out) so that the codes carry shape apart from colour; 0 trains on the named colours only.
    #[serde(default)]
    pub free_colors: f64,
    /// The dataset.
    pub dataset: DatasetConfig,
}

impl Default for VqVaeTrainConfig {
    /// The plan's stage 1 (crate README): 3 levels [32, 64, 128] (64 px → 16 × 16 latents),
    /// 8 GroupNorm groups, K = 256 codes of width 64, batch 64, AdamW 3e−4 with cosine decay
    /// (1e−3 diverged after 30 steps at batch 32, BENCHMARKS.md), 3 k steps.
    fn default() -> Self {
        Self {
            out_dir: PathBuf::from("runs/vqvae"),
            block_out_channels: vec![32, 64, 128],
            layers_per_block: 1,
            norm_num_groups: 8,
            num_vq_embeddings: 256,
            vq_embed_dim: 64,
            batch_size: 64,
            steps: 3000,
            learning_rate: 3e-4,
            warmup_steps: 100,
            weight_decay: 1e-4,
            commitment_weight: 0.25,
            foreground_weight: 10.0,
            outline_weight: None,
            codebook_decay: 0.99,
            restart_every: 200,
            restart_threshold: 0.01,
            device_indices: Vec::new(),
            max_minutes: None,
            keep_schedule: false,
            log_every: 50,
            checkpoint_every: 500,
            workers: 4,
            seed: 0,
            resume: true,
            init_from: None,
            keep_codes: false,
            decoder_only: false,
            free_colors: 0.0,
            dataset: DatasetConfig::default(),
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
            sample_size: self.dataset.image_size as usize,
            ..VQModelConfig::default()
        }
    }
}

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

/// Trains the VQ-VAE per `config` on `device`, writing `out_dir/vqvae/` at the end (also when
/// the time budget stops the run early). `progress` receives one line per log interval.
pub fn train_vqvae<B: TrainBackend>(
    config: &VqVaeTrainConfig,
    device: &B::Device,
    progress: &mut dyn FnMut(&str),
) -> Result<VqVaeTrainSummary, TrainError> {
    let (model_config, mut model) = initial_model::<B>(config, device)?;
    let checkpoint_dir = config.out_dir.join("checkpoint");
    create_dir(&checkpoint_dir)?;
    B::seed(device, config.seed);

    let mut optimizer = AdamWConfig::new().with_weight_decay(config.weight_decay).init::<B, VQModel<B>>();
    let mut codebook =
        EmaCodebook::<B::InnerBackend>::new(model.quantize.embedding.weight.val().inner(), config.codebook_decay);
    let mut state = RunState::new(config.steps, config.seed);
    let state_path = checkpoint_dir.join("state.json");
    // The step from which the learning rate warms up again (AdamW's moments restarted).
    let mut rewarm_from = None;
    if config.resume {
        if let Some(saved) = load_state::<RunState>(&state_path)? {
            (model, optimizer, rewarm_from) =
                load_trainee(model, optimizer, &checkpoint_dir, saved.step, device, progress)?;
            codebook = load_module(codebook, &checkpoint_dir.join("codebook"), device)?;
            progress(&saved.describe());
            state = saved.resumed(config.steps);
        }
    }
    let mut rng = SplitMix64::new(state.rng);

    // A weight of 0 would drop the objects from the loss, a negative one reward errors on them.
    if config.foreground_weight.is_nan() || config.foreground_weight <= 0.0 {
        return Err(TrainError::model(
            "VQ-VAE config",
            format!(
                "foreground_weight {}: must be greater than 0 (1 weighs objects like the background)",
                config.foreground_weight
            ),
        ));
    }
    if !(0.0..=1.0).contains(&config.free_colors) {
        return Err(TrainError::model(
            "VQ-VAE config",
            format!("free_colors {}: must be a fraction in [0, 1]", config.free_colors),
        ));
    }
    if let Some(weight) = config.outline_weight.filter(|w| w.is_nan() || *w <= 0.0) {
        return Err(TrainError::model(
            "VQ-VAE config",
            format!("outline_weight {weight}: must be greater than 0 (leave it unset for no outline term)"),
        ));
    }
    let devices = replica_devices::<B>(device, &config.device_indices, config.batch_size)
        .map_err(|e| TrainError::model("data parallelism", e))?;
    // Parameters initialise lazily: read them all before replicas are forked from the model.
    let _ = model.valid();
    let weights = LossWeights::of(config);
    // With frozen codes the model's own codebook quantizes (bit for bit the codes the pipeline
    // and stage 2 see; the EMA statistics' m_k / Ñ_k can round differently and then only report
    // the codebook's use).
    let frozen_codebook = config.decoder_only.then(|| model.quantize.embedding.weight.val().inner());

    let dataset = Arc::new(Dataset::new(config.dataset.clone(), config.seed)?);
    let mut batches = BatchStream::spawn(
        Arc::clone(&dataset),
        Split::Train,
        config.batch_size,
        state.step as u64,
        config.workers,
        None,
        config.free_colors,
    );
    let mut curve = LossCurve::open(
        &config.out_dir.join("loss.csv"),
        &["loss", "l1", "l2", "commitment", "restarted"],
        state.step,
    )?;
    let mut timer =
        Progress::new(state.step, state.total_steps, state.elapsed_seconds, config.max_minutes, !config.keep_schedule);
    let mut windows = LossWindows::default();

    let first_step = state.step;
    let mut step = first_step;
    while step < timer.total_steps() {
        let lr = step_learning_rate(step, timer.total_steps(), config.warmup_steps, config.learning_rate, rewarm_from);
        let batch = batches.next_batch();
        let mut restarted = 0;
        if frozen_codebook.is_none() && step.is_multiple_of(config.restart_every) {
            // The whole batch's latents before this step's update (an extra encoder pass every
            // `restart_every` steps), so that the replicas quantize against the restarted codebook.
            let x = batch.images_tensor::<B::InnerBackend>(device);
            let latents = model.valid().encode(x).map_err(|e| TrainError::model("VQ-VAE encode", e))?;
            let [b, d, h, w] = latents.dims();
            let flat = latents.permute([0, 2, 3, 1]).reshape([b * h * w, d]);
            let reseed = step == 0 && !config.keep_codes;
            (codebook, restarted) = codebook.restart_dead_codes(flat, config.restart_threshold, reseed, &mut rng);
        }
        let quantizer = frozen_codebook.clone().unwrap_or_else(|| codebook.codebook());
        let out = step_gradients(&model, &devices, &batch, quantizer, &weights, device)?;
        model = optimizer.step(lr, model, out.grads);
        codebook = codebook.update(out.latents, out.indices);
        if frozen_codebook.is_none() {
            model.quantize.embedding.weight =
                Param::initialized(model.quantize.embedding.weight.id, Tensor::from_inner(codebook.codebook()));
        }
        let [loss, l1, l2, commitment] = out.values;
        if !loss.is_finite() {
            return Err(TrainError::model("VQ-VAE training", format!("the loss is {loss} at step {step}")));
        }
        curve.record(step, &[loss, l1, l2, commitment, restarted as f64], lr, timer.total_elapsed())?;
        windows.push(loss);
        if timer.should_log(step, config.log_every) {
            let mean = windows.close();
            let usage = codebook.usage(config.restart_threshold);
            progress(&timer.line(step, &[("loss", mean), ("l1", l1), ("commit", commitment), ("usage", usage)], lr));
        }
        let end = timer.after_step(step, config.checkpoint_every, progress);
        step += 1;
        if end.checkpoint {
            state.advance(step, timer.total_steps(), timer.total_elapsed(), &mut rng);
            save_module(model.clone(), &checkpoint_dir.join("model"))?;
            save_record::<B, _>(optimizer.to_record(), &checkpoint_dir.join("optimizer"))?;
            save_module(codebook.clone(), &checkpoint_dir.join("codebook"))?;
            save_state(&state, &state_path)?;
            curve.flush_and_plot(&config.out_dir.join("loss.png"))?;
        }
        if end.stop {
            progress(&format!("time budget reached after step {step}; saved"));
            break;
        }
    }
    let (first_loss, final_loss) = windows.finish();
    let vqvae_dir = config.out_dir.join("vqvae");
    write_vqvae_dir(&model.valid(), &model_config, &vqvae_dir, StoreDtype::F32)?;
    curve.flush_and_plot(&config.out_dir.join("loss.png"))?;
    Ok(VqVaeTrainSummary {
        steps_done: step,
        final_loss,
        first_loss,
        codebook_usage: codebook.usage(config.restart_threshold),
        seconds_per_step: timer.elapsed() / (step - first_step).max(1) as f64,
        vqvae_dir,
    })
}

/// The architecture and the starting weights: `init_from`'s folder, or `config`'s architecture
/// initialised at random. Refuses a decoder-only run without a folder to start from, and a folder
/// whose images are not the dataset's size.
fn initial_model<B: TrainBackend>(
    config: &VqVaeTrainConfig,
    device: &B::Device,
) -> Result<(VQModelConfig, VQModel<B>), TrainError> {
    if config.keep_codes && config.decoder_only {
        return Err(TrainError::model(
            "VQ-VAE config",
            "keep_codes (--keep-codes) and decoder_only (--decoder-only): decoder_only already freezes the codes; give one",
        ));
    }
    let Some(dir) = &config.init_from else {
        if config.decoder_only || config.keep_codes {
            let flag = if config.decoder_only {
                "decoder_only trains the decoder of"
            } else {
                "keep_codes keeps the codes of"
            };
            return Err(TrainError::model(
                "VQ-VAE config",
                format!("{flag} an existing VQ-VAE: give init_from (--init-from) its vqvae/ folder"),
            ));
        }
        let model_config = config.model_config();
        model_config.validate().map_err(|e| TrainError::model("VQ-VAE config", e))?;
        let model = model_config.init(device).map_err(|e| TrainError::model("VQ-VAE init", e))?;
        return Ok((model_config, model));
    };
    let config_path = dir.join("config.json");
    let model_config = VQModelConfig::from_file(&config_path).map_err(|e| TrainError::model("VQ-VAE init_from", e))?;
    let image_size = config.dataset.image_size as usize;
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
    let model = VQModel::from_config(&model_config, dir, None, device)
        .map_err(|e| TrainError::model("VQ-VAE init_from", e))?;
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
