//! Data parallelism for stage 2: each batch is split into shards, one per replica; every shard's
//! forward and backward pass runs on its replica's device in its own thread, and the gradients
//! are summed on the main device before a single optimizer step. Several replicas on one device
//! run on separate CubeCL streams; that doubles the rate on a 2-core CPU but made a step ≈ 3×
//! slower on one H100 (BENCHMARKS.md), so GPUs take one replica each.
//!
//! The shards' losses are weighted by their share of the batch, so the summed gradient is the
//! gradient of the whole batch's per-token loss, as on one device.

use crate::TrainBackend;
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::tensor::{Bool, Distribution, Int, Tensor, TensorData};
use vq_model::VQModel;
use vq_scheduler::ScheduleTables;

use super::model::TextToTokens;
use crate::loss::{q_sample, StepRates, TimestepBatch, VqDiffusionLossConfig};
use crate::train::batches::HostBatch;
use crate::train::parallel::{gradients_via_host, on_replicas};
use crate::TrainError;

/// One device's share of the work: its device and its copy of the frozen VQ-VAE.
pub(crate) struct Replica<B: TrainBackend> {
    pub device: B::Device,
    pub vqvae: VQModel<B::InnerBackend>,
}

/// A shard of a step's batch, on the host.
pub(crate) struct Shard {
    /// The images, captions' token ids and sizes.
    pub batch: HostBatch,
    /// Which captions are replaced by the null embedding.
    pub dropped: Vec<bool>,
    /// The shard's timesteps.
    pub timesteps: TimestepBatch,
}

/// Splits a step's batch, caption-dropout draws and timesteps into `parts` equal shards.
///
/// # Panics
/// If the batch does not split evenly (the training config checks this first).
pub(crate) fn split_step(batch: &HostBatch, dropped: &[bool], timesteps: &TimestepBatch, parts: usize) -> Vec<Shard> {
    batch
        .shards(parts)
        .into_iter()
        .zip(batch.shard_ranges(parts))
        .map(|(batch, samples)| Shard {
            batch,
            dropped: dropped[samples.clone()].to_vec(),
            timesteps: TimestepBatch {
                t: timesteps.t[samples.clone()].to_vec(),
                p_t: timesteps.p_t[samples].to_vec(),
                num_timesteps: timesteps.num_timesteps,
            },
        })
        .collect()
}

/// What one step reports: per-sample vb and aux terms in batch order, and the batch's loss.
pub(crate) struct StepValues {
    /// Per sample: the posterior KL (or decoder NLL at t = 0), summed over positions.
    pub vb: Vec<f64>,
    /// Per sample: the auxiliary x₀ term, summed over positions.
    pub aux: Vec<f64>,
    /// The batch's loss (the per-token mean that was minimised).
    pub loss: f64,
}

/// The gradients of one step, summed on `main`, for `shards` on `replicas` (one each).
pub(crate) fn step_gradients<B: TrainBackend>(
    model: &TextToTokens<B>,
    replicas: &[Replica<B>],
    shards: Vec<Shard>,
    tables: &ScheduleTables,
    loss_config: &VqDiffusionLossConfig,
    main: &B::Device,
) -> Result<(GradientsParams, StepValues), TrainError> {
    assert_eq!(replicas.len(), shards.len(), "one shard per replica");
    let batch: usize = shards.iter().map(|shard| shard.batch.size).sum();
    let devices: Vec<B::Device> = replicas.iter().map(|replica| replica.device.clone()).collect();
    let results = on_replicas(model, &devices, |i, replica_model| {
        shard_gradients(replica_model, &replicas[i], &shards[i], batch, tables, loss_config, main)
    });
    let mut accumulator = GradientsAccumulator::new();
    let mut values = StepValues { vb: Vec::with_capacity(batch), aux: Vec::with_capacity(batch), loss: 0.0 };
    for result in results {
        let result = result?;
        accumulator.accumulate(model, result.grads);
        values.vb.extend(result.vb);
        values.aux.extend(result.aux);
        values.loss += result.loss;
    }
    Ok((accumulator.grads(), values))
}

/// One shard's gradients (moved to `main`) and values.
struct ShardResult {
    grads: GradientsParams,
    /// As in [`StepValues`], for the shard's samples.
    vb: Vec<f64>,
    aux: Vec<f64>,
    /// The shard's loss weighted by its share of the batch.
    loss: f64,
}

fn shard_gradients<B: TrainBackend>(
    model: TextToTokens<B>,
    replica: &Replica<B>,
    shard: &Shard,
    batch: usize,
    tables: &ScheduleTables,
    loss_config: &VqDiffusionLossConfig,
    main: &B::Device,
) -> Result<ShardResult, TrainError> {
    let device = &replica.device;
    let size = shard.batch.size;
    // Tokens of the frozen VQ-VAE, on the inner backend.
    let images = shard.batch.images_tensor::<B::InnerBackend>(device);
    let latents = replica.vqvae.encode(images).map_err(|e| TrainError::model("VQ-VAE encode", e))?;
    let x_0 = Tensor::<B, 2, Int>::from_inner(
        replica.vqvae.quantize(latents).map_err(|e| TrainError::model("VQ-VAE quantize", e))?.indices,
    );
    let pixels = x_0.dims()[1];
    let num_classes = replica.vqvae.quantize.num_embeddings();
    let ids = shard.batch.ids_tensor::<B>(device);
    let dropped = Tensor::<B, 1, Bool>::from_data(TensorData::new(shard.dropped.clone(), [size]), device);

    let rates = StepRates::<B>::gather(tables, &shard.timesteps.t, device);
    let uniform = || Tensor::<B, 2>::random([size, pixels], Distribution::Default, device);
    let x_t = q_sample(
        x_0.clone(),
        num_classes,
        rates.log_cumprod_bt.clone(),
        rates.log_cumprod_ct.clone(),
        uniform(),
        uniform(),
    );
    let log_p_x_0 = model.forward(x_t.clone(), ids, dropped, shard.timesteps.t.clone());
    let terms = loss_config.loss(log_p_x_0, x_0, x_t, &shard.timesteps, &rates);
    // The shard's share of the batch's per-token mean.
    let loss = terms.loss.mul_scalar(size as f64 / batch as f64);
    let grads = gradients_via_host(GradientsParams::from_grads(loss.backward(), &model), &model, main);

    // One read-back per shard (a GPU backend synchronises on each): [vb | aux | loss].
    let values = Tensor::cat(vec![terms.vb.inner(), terms.aux.inner(), loss.inner()], 0).into_data();
    let values = values.convert::<f64>().into_vec::<f64>().expect("f64 values");
    Ok(ShardResult { grads, vb: values[..size].to_vec(), aux: values[size..2 * size].to_vec(), loss: values[2 * size] })
}
