//! diffusers' `VectorQuantizer` (`diffusers/models/autoencoders/vae.py`) as `VQModel` builds
//! it: `beta = 0.25`, `legacy = True`, no index remapping, flat indices.

use burn::config::Config;
use burn::module::{Initializer, Module};
use burn::nn::{Embedding, EmbeddingConfig};
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor};

/// torch's `cdist` switches to its matrix-product formula when either operand has more rows.
const CDIST_DIRECT_MAX_ROWS: usize = 25;

/// Configuration of a [`VectorQuantizer`].
#[derive(Config, Debug)]
pub struct VectorQuantizerConfig {
    /// Codebook size (`num_vq_embeddings`).
    pub num_embeddings: usize,
    /// Codebook vector width (`vq_embed_dim`).
    pub embed_dim: usize,
    /// Weight of the codebook term of the commitment loss (diffusers' legacy order).
    #[config(default = 0.25)]
    pub beta: f64,
}

/// A codebook of `num_embeddings` vectors and nearest-neighbour quantization.
#[derive(Module, Debug)]
pub struct VectorQuantizer<B: Backend> {
    /// `quantize.embedding.weight` `[num_embeddings, embed_dim]`: the codebook.
    pub embedding: Embedding<B>,
    /// Weight of the codebook term of the commitment loss.
    pub beta: f64,
}

/// The result of [`VectorQuantizer::forward`].
#[derive(Debug, Clone)]
pub struct Quantized<B: Backend> {
    /// `[batch, embed_dim, h, w]`: the nearest codebook vectors, written as diffusers'
    /// straight-through estimate `z + sg(e − z)` (equal to the codes up to one rounding; the
    /// gradient flows to `z`).
    pub quantized: Tensor<B, 4>,
    /// `[batch, h·w]`: code indices, row-major over `(h, w)`.
    pub indices: Tensor<B, 2, Int>,
    /// `[1]`: the commitment loss `mean((sg(e) − z)²) + β·mean((e − sg(z))²)` (diffusers'
    /// `legacy=True` order: β weighs the codebook term).
    pub commit_loss: Tensor<B, 1>,
}

impl VectorQuantizerConfig {
    /// Initializes the codebook as diffusers does, uniform in `±1/num_embeddings`.
    pub fn init<B: Backend>(&self, device: &B::Device) -> VectorQuantizer<B> {
        let bound = 1.0 / self.num_embeddings as f64;
        let embedding = EmbeddingConfig::new(self.num_embeddings, self.embed_dim)
            .with_initializer(Initializer::Uniform { min: -bound, max: bound })
            .init(device);
        VectorQuantizer { embedding, beta: self.beta }
    }
}

impl<B: Backend> VectorQuantizer<B> {
    /// Codebook size.
    pub fn num_embeddings(&self) -> usize {
        self.embedding.weight.dims()[0]
    }

    /// Codebook vector width.
    pub fn embed_dim(&self) -> usize {
        self.embedding.weight.dims()[1]
    }

    /// Replaces every vector of `z` by its nearest code (Euclidean distance).
    ///
    /// # Shapes
    ///
    /// - z: `[batch, embed_dim, h, w]`
    /// - output: see [`Quantized`]
    pub fn forward(&self, z: Tensor<B, 4>) -> Quantized<B> {
        let [batch, channels, height, width] = z.dims();
        assert_eq!(
            channels,
            self.embed_dim(),
            "VectorQuantizer: input has {channels} channels, the codebook {}",
            self.embed_dim()
        );
        // [B, C, H, W] -> [B, H, W, C] -> [B·H·W, C]
        let flat = z.clone().permute([0, 2, 3, 1]).reshape([batch * height * width, channels]);
        let distances = euclidean_distances(flat, self.embedding.weight.val());
        let indices = argmin_first(distances).reshape([batch, height * width]);
        let codes = self.get_codebook_entry(indices.clone(), [batch, height, width, channels]);

        let commitment = (codes.clone().detach() - z.clone()).square().mean();
        let codebook = (codes.clone() - z.clone().detach()).square().mean();
        let commit_loss = commitment + codebook.mul_scalar(self.beta);

        let quantized = z.clone() + (codes - z).detach();
        Quantized { quantized, indices, commit_loss }
    }

    /// Looks indices up in the codebook: diffusers' `get_codebook_entry(indices, shape)`.
    ///
    /// # Shapes
    ///
    /// - indices: `[batch, h·w]`, row-major over `(h, w)`
    /// - shape: `[batch, h, w, embed_dim]` (diffusers' `(B, h, w, C)` argument)
    /// - output: `[batch, embed_dim, h, w]`
    pub fn get_codebook_entry(&self, indices: Tensor<B, 2, Int>, shape: [usize; 4]) -> Tensor<B, 4> {
        let [batch, height, width, channels] = shape;
        assert_eq!(indices.dims(), [batch, height * width], "get_codebook_entry: indices do not match shape {shape:?}");
        assert_eq!(channels, self.embed_dim(), "get_codebook_entry: shape {shape:?} does not match the codebook width");
        // [B, h·w] -> [B, h·w, C] -> [B, h, w, C] -> [B, C, h, w]
        self.embedding.forward(indices).reshape(shape).permute([0, 3, 1, 2])
    }
}

/// `torch.cdist(x, e)` (p = 2).
///
/// torch evaluates it in one of two ways, and near-ties between codes resolve differently in
/// each, so both are reproduced: with more than 25 rows on either side (every real case) as one
/// product of augmented rows `[−2x, ‖x‖², 1]·[e, 1, ‖e‖²]ᵀ`, clamped at 0, then `sqrt` (which can
/// merge nearly equal distances into exact ties); otherwise directly as `sqrt(Σ (x − e)²)`.
///
/// # Shapes
///
/// - x: `[m, d]`, e: `[k, d]`
/// - output: `[m, k]`
pub fn euclidean_distances<B: Backend>(x: Tensor<B, 2>, e: Tensor<B, 2>) -> Tensor<B, 2> {
    let [m, d] = x.dims();
    let k = e.dims()[0];
    if m <= CDIST_DIRECT_MAX_ROWS && k <= CDIST_DIRECT_MAX_ROWS {
        // [m, 1, d] - [1, k, d] -> [m, k, d] -> [m, k]
        let diff = x.reshape([m, 1, d]) - e.reshape([1, k, d]);
        return diff.square().sum_dim(2).reshape([m, k]).sqrt();
    }
    let device = x.device();
    let x_norm = x.clone().square().sum_dim(1);
    let e_norm = e.clone().square().sum_dim(1);
    let x_aug = Tensor::cat(vec![x.mul_scalar(-2.0), x_norm, Tensor::ones([m, 1], &device)], 1);
    let e_aug = Tensor::cat(vec![e, Tensor::ones([k, 1], &device), e_norm], 1);
    x_aug.matmul(e_aug.transpose()).clamp_min(0.0).sqrt()
}

/// `torch.argmin(d, dim=1)`: the index of each row's minimum, the first one on ties (spelled
/// out, because the tie order of a backend's `argmin` is not specified).
///
/// # Shapes
///
/// - d: `[m, k]`
/// - output: `[m]`
pub fn argmin_first<B: Backend>(d: Tensor<B, 2>) -> Tensor<B, 1, Int> {
    let [m, k] = d.dims();
    let is_min = d.clone().equal(d.min_dim(1).expand([m, k]));
    let positions = Tensor::<B, 1, Int>::arange(0..k as i64, &is_min.device()).reshape([1, k]).expand([m, k]);
    positions.mask_fill(is_min.bool_not(), k as i64).min_dim(1).reshape([m])
}
