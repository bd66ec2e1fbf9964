//! One VQ-VAE training step's gradients, on one device or split across replicas: each replica
//! encodes its shard, quantizes it against the shared codebook (straight-through estimator),
//! decodes, and backpropagates its share of the loss; the main device sums the gradients and
//! gathers every shard's latents and codes for the EMA codebook update.

use crate::TrainBackend;
use burn::module::AutodiffModule;
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::tensor::{Int, Tensor};
use vq_model::VQModel;

use super::codebook::nearest_codes;
use crate::train::batches::HostBatch;
use crate::train::parallel::{gradients_via_host, on_replicas, via_host};
use crate::TrainError;

/// The loss's weights (see [`super::VqVaeTrainConfig`]).
pub(crate) struct LossWeights {
    /// Weight of object pixels in the reconstruction terms (background 1).
    pub foreground: f64,
    /// β of the commitment term.
    pub commitment: f64,
    /// Weight of the pixels on objects' outlines (replacing their foreground or background
    /// weight); `None`: no outline term.
    pub outline: Option<f64>,
    /// Encode outside autodiff: only `post_quant_conv` and the decoder get gradients.
    pub decoder_only: bool,
}

impl LossWeights {
    /// The weights `config` trains with.
    pub fn of(config: &super::VqVaeTrainConfig) -> Self {
        Self {
            foreground: config.foreground_weight,
            commitment: config.commitment_weight,
            outline: config.outline_weight,
            decoder_only: config.decoder_only,
        }
    }
}

/// A step's result on the main device.
pub(crate) struct StepOutput<B: TrainBackend> {
    /// The batch's gradients.
    pub grads: GradientsParams,
    /// `[B·h·w, D]`: the encoder's latents of the whole batch, in batch order.
    pub latents: Tensor<B::InnerBackend, 2>,
    /// `[B·h·w]`: their nearest codes.
    pub indices: Tensor<B::InnerBackend, 1, Int>,
    /// The batch's loss, L1, L2 and commitment (means over the batch).
    pub values: [f64; 4],
}

/// The gradients of one step on `batch`, split across `devices` (one replica each; the model,
/// codebook and results on `main`).
pub(crate) fn step_gradients<B: TrainBackend>(
    model: &VQModel<B>,
    devices: &[B::Device],
    batch: &HostBatch,
    codebook: Tensor<B::InnerBackend, 2>,
    weights: &LossWeights,
    main: &B::Device,
) -> Result<StepOutput<B>, TrainError> {
    let shards = batch.shards(devices.len());
    let results = on_replicas(model, devices, |i, replica| {
        let share = shards[i].size as f64 / batch.size as f64;
        shard_gradients(replica, &shards[i], via_host(codebook.clone(), &devices[i]), share, weights, &devices[i], main)
    });
    let mut accumulator = GradientsAccumulator::new();
    let (mut latents, mut indices, mut values) = (Vec::new(), Vec::new(), [0.0; 4]);
    for result in results {
        let shard = result?;
        accumulator.accumulate(model, shard.grads);
        latents.push(shard.latents);
        indices.push(shard.indices);
        values.iter_mut().zip(shard.values).for_each(|(total, value)| *total += value);
    }
    Ok(StepOutput {
        grads: accumulator.grads(),
        latents: Tensor::cat(latents, 0),
        indices: Tensor::cat(indices, 0),
        values,
    })
}

fn shard_gradients<B: TrainBackend>(
    model: VQModel<B>,
    shard: &HostBatch,
    codebook: Tensor<B::InnerBackend, 2>,
    share: f64,
    weights: &LossWeights,
    device: &B::Device,
    main: &B::Device,
) -> Result<StepOutput<B>, TrainError> {
    let x = shard.images_tensor::<B>(device);
    // 1 on the background, `foreground` on objects, `outline` on their outlines;
    // [B, 1, H, W] -> [B, 3, H, W].
    let weight = shard.pixel_weights_tensor::<B>(weights.foreground, weights.outline, device).expand(x.dims());
    let latents = if weights.decoder_only {
        let frozen = model.valid().encode(x.clone().inner()).map_err(|e| TrainError::model("VQ-VAE encode", e))?;
        Tensor::from_inner(frozen)
    } else {
        model.encode(x.clone()).map_err(|e| TrainError::model("VQ-VAE encode", e))?
    };
    let [b, d, h, w] = latents.dims();
    // [B, D, h, w] -> [B, h, w, D] -> [B·h·w, D], on the inner backend (no gradient).
    let flat = latents.clone().inner().permute([0, 2, 3, 1]).reshape([b * h * w, d]);
    let indices = nearest_codes(flat.clone(), codebook.clone());
    let codes =
        Tensor::<B, 4>::from_inner(codebook.select(0, indices.clone()).reshape([b, h, w, d]).permute([0, 3, 1, 2]));
    // Straight-through estimator: the decoder sees e, the gradient reaches z_e (none with frozen
    // codes: then z_e has no gradient, and neither has the commitment term).
    let quantized = latents.clone() + (codes.clone() - latents.clone()).detach();
    let reconstruction = model.decoder.forward(B::convolution(&model.post_quant_conv, quantized));
    let error = reconstruction - x;
    let (absolute, squared) = (error.clone().abs(), error.square());
    let (l1, l2) = (absolute.clone().mean(), squared.clone().mean());
    let commitment = (latents - codes).square().mean();
    // The shard's share of the batch means.
    let loss = ((absolute * weight.clone()).mean()
        + (squared * weight).mean()
        + commitment.clone().mul_scalar(weights.commitment))
    .mul_scalar(share);
    let grads = gradients_via_host(GradientsParams::from_grads(loss.backward(), &model), &model, main);

    // One read-back per shard (a GPU backend synchronises on each).
    let values = Tensor::cat(
        vec![
            loss.inner(),
            l1.inner().mul_scalar(share),
            l2.inner().mul_scalar(share),
            commitment.inner().mul_scalar(share),
        ],
        0,
    )
    .into_data()
    .convert::<f64>()
    .into_vec::<f64>()
    .expect("f64 values");
    Ok(StepOutput {
        grads,
        latents: via_host(flat, main),
        indices: via_host(indices, main),
        values: [values[0], values[1], values[2], values[3]],
    })
}
