//! AdaLayerNorm (diffusers `models/normalization.py`, `AdaLayerNorm` with an embedding table
//! and `chunk_dim = 0`): a LayerNorm without affine parameters whose scale and shift come from
//! the diffusion timestep.

use burn::module::Module;
use burn::nn::{Embedding, EmbeddingConfig, Linear, LinearConfig};
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor};
use vq_kernels::KernelBackend;

/// Epsilon of the AdaLayerNorm's inner LayerNorm. diffusers builds `AdaLayerNorm(dim,
/// num_embeds_ada_norm)` without passing the config's `norm_eps`, so the default 1e-5 applies.
pub(crate) const ADA_NORM_EPS: f64 = 1e-5;

/// Configuration of an [`AdaLayerNorm`].
#[derive(Debug, Clone)]
pub(crate) struct AdaLayerNormConfig {
    /// Width D of the normalised features.
    pub(crate) d_model: usize,
    /// Number of timestep embeddings (`num_embeds_ada_norm`).
    pub(crate) num_embeddings: usize,
}

impl AdaLayerNormConfig {
    pub(crate) fn init<B: Backend>(&self, device: &B::Device) -> AdaLayerNorm<B> {
        AdaLayerNorm {
            emb: EmbeddingConfig::new(self.num_embeddings, self.d_model).init(device),
            linear: LinearConfig::new(self.d_model, 2 * self.d_model).init(device),
        }
    }
}

/// `out = LayerNorm(x) · (1 + scale) + shift` with `[scale, shift] = linear(silu(emb[t]))`.
#[derive(Module, Debug)]
pub struct AdaLayerNorm<B: Backend> {
    /// Timestep embedding table `[num_embeds_ada_norm, D]` (`normN.emb.weight`).
    pub emb: Embedding<B>,
    /// Projection D → 2D producing scale then shift (`normN.linear.{weight,bias}`).
    pub linear: Linear<B>,
}

impl<B: KernelBackend> AdaLayerNorm<B> {
    /// # Shapes
    ///
    /// - `x`: `[batch, tokens, D]`
    /// - `timesteps`: `[batch or 1, 1]` timestep ids (one row per sample, or one for all)
    /// - output: `[batch, tokens, D]`
    pub fn forward(&self, x: Tensor<B, 3>, timesteps: Tensor<B, 2, Int>) -> Tensor<B, 3> {
        // [b, 1] ids -> [b, 1, D] -> [b, 1, 2D]; b broadcasts over the batch when it is 1.
        let temb = self.linear.forward(fusable_silu(self.emb.forward(timesteps)));
        let [scale, shift] = split_scale_shift(temb);
        B::ada_layer_norm(x, scale, shift, ADA_NORM_EPS)
    }
}

/// `x · σ(x)` as `x / (1 + e^(−x))`. burn's `silu` computes σ through an f32 round trip
/// (cast, five element-wise ops, cast back) that its kernel fusion cannot merge: on CUDA that
/// was eleven launches per AdaLayerNorm, 792 per ITHQ forward, for a `[b, 1, D]` tensor. The
/// same function, rounded differently by a few ulps; −∞ and +∞ limits hold (e^(−x) overflowing
/// to ∞ gives 0).
fn fusable_silu<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    x.clone() / (x.neg().exp() + 1.0)
}

/// Splits `[b, 1, 2D]` into `[scale, shift]`, each `[b, 1, D]`.
///
/// diffusers chunks a 1-D `temb` along dim 0: **scale is the first half**, shift the second.
/// Splitting along the feature axis instead gives the same halves for a shared timestep and
/// also works per sample, where diffusers' `chunk(dim=0)` splits the batch
/// (huggingface/diffusers#7460).
fn split_scale_shift<B: Backend>(temb: Tensor<B, 3>) -> [Tensor<B, 3>; 2] {
    let [b, one, two_d] = temb.dims();
    let d = two_d / 2;
    [temb.clone().slice([0..b, 0..one, 0..d]), temb.slice([0..b, 0..one, d..two_d])]
}
