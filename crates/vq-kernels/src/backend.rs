//! The backend extension: the operations the models call where more than one implementation
//! exists, each with a default written in plain burn tensor ops.

use std::ops::Range;

use burn::nn::conv::Conv2d;
use burn::tensor::backend::Backend;
use burn::tensor::{Bool, Tensor};

use crate::engine::{EngineError, TransformerDescription, TransformerEngine};
use crate::portable;

/// A burn backend the vq-diffusion-rs models run on.
///
/// Every method has a default in plain tensor ops ([`portable`]), correct on every backend,
/// `Autodiff<…>` included; a backend overrides the ones it computes faster. The models call
/// these methods and never ask which backend they run on. This crate implements the trait for
/// burn's backends behind cargo features (`ndarray`, `flex`, `cubecl`, `fusion`, `autodiff`);
/// another backend opts in with `impl KernelBackend for MyBackend {}` and gets the defaults.
pub trait KernelBackend: Backend {
    /// Whether convolutions run as one matrix product each ([`portable::conv2d_gemm`]) when this
    /// backend trains under `Autodiff`: where its own convolution gradients are slow (burn's CPU
    /// backends: a VQ-VAE training step 10.7× faster), not where its kernels are fast (CubeCL:
    /// the GEMM form made an untuned CUDA step 3.8× slower).
    const GEMM_CONVOLUTIONS_UNDER_AUTODIFF: bool = false;

    /// Multi-head attention `softmax(q kᵀ / √head_dim) v`, heads side by side in the last axis.
    ///
    /// # Shapes
    ///
    /// - `q`: `[batch, n, heads·head_dim]`; `k`, `v`: `[batch, l, heads·head_dim]`
    /// - output: `[batch, n, heads·head_dim]`
    fn multi_head_attention(
        q: Tensor<Self, 3>,
        k: Tensor<Self, 3>,
        v: Tensor<Self, 3>,
        options: AttentionOptions<Self>,
    ) -> Tensor<Self, 3> {
        portable::attention(q, k, v, options)
    }

    /// Quick GELU, `x · σ(1.702 x)`: CLIP's `quick_gelu` and diffusers' `ApproximateGELU`.
    fn quick_gelu<const D: usize>(x: Tensor<Self, D>) -> Tensor<Self, D> {
        portable::quick_gelu(x)
    }

    /// AdaLayerNorm's modulation: `LayerNorm(x) · (1 + scale) + shift`, the LayerNorm over the
    /// last axis without affine parameters.
    ///
    /// # Shapes
    ///
    /// - `x`: `[batch, n, D]`; `scale`, `shift`: `[batch or 1, 1, D]`
    /// - output: `[batch, n, D]`
    fn ada_layer_norm(
        x: Tensor<Self, 3>,
        scale: Tensor<Self, 3>,
        shift: Tensor<Self, 3>,
        epsilon: f64,
    ) -> Tensor<Self, 3> {
        portable::ada_layer_norm(x, scale, shift, epsilon)
    }

    /// The log-softmax over the classes axis `dim`, in f64 where the backend has it, returned
    /// as f32 (diffusers' `log_softmax(logits.double(), dim=1).float()`).
    ///
    /// # Shapes
    ///
    /// - `logits`: `[batch, classes, n]` (any rank-3 layout; `dim` picks the class axis)
    /// - output: the same shape, f32
    fn class_log_softmax(logits: Tensor<Self, 3>, dim: usize) -> Tensor<Self, 3> {
        portable::class_log_softmax(logits, dim)
    }

    /// `conv.forward(x)`, by whichever algorithm the backend convolves fastest.
    ///
    /// # Shapes
    ///
    /// - `x`: `[batch, C_in, height, width]`
    /// - output: `[batch, C_out, height_out, width_out]`
    fn convolution(conv: &Conv2d<Self>, x: Tensor<Self, 4>) -> Tensor<Self, 4> {
        conv.forward(x)
    }

    /// `run` over the batch `0..batch`, whole or in parts side by side, results in batch order.
    /// A model calls it where the samples of a batch are computed independently; backends that
    /// keep cores idle while one stream of ops runs (burn's CPU backends) run parts on threads.
    fn split_batch<T: Send>(batch: usize, run: impl Fn(Range<usize>) -> T + Sync) -> Vec<T> {
        vec![run(0..batch)]
    }

    /// A whole-forward engine for the discrete transformer `description` describes (one
    /// generation: its text and batch), or `None` where the backend has none — the default: the
    /// model then runs its own tensor ops. An error means the backend has an engine that could
    /// not be built here (a missing device library, say).
    fn transformer_engine(
        description: &TransformerDescription<Self>,
    ) -> Result<Option<Box<dyn TransformerEngine<Self>>>, EngineError> {
        let _ = description;
        Ok(None)
    }
}

/// What [`KernelBackend::multi_head_attention`] computes besides `softmax(q kᵀ / √head_dim) v`.
#[derive(Debug, Clone)]
pub struct AttentionOptions<B: Backend> {
    /// Number of heads, side by side along the last axis of q, k and v.
    pub heads: usize,
    /// Hide from each query the keys after its position (CLIP's text encoder).
    pub causal: bool,
    /// `[batch, l]`: `true` where a key is hidden from every query (padding).
    pub key_padding_mask: Option<Tensor<B, 2, Bool>>,
    /// Compute half-precision inputs in f32 and round the output back (diffusers' `upcast_softmax`).
    pub upcast: bool,
}

impl<B: Backend> AttentionOptions<B> {
    /// Plain attention over `heads` heads: no mask, inputs' precision.
    pub fn heads(heads: usize) -> Self {
        Self { heads, causal: false, key_padding_mask: None, upcast: false }
    }

    /// The same options with the causal mask.
    pub fn with_causal(mut self) -> Self {
        self.causal = true;
        self
    }

    /// The same options hiding the keys where `mask` is `true` (`[batch, l]`).
    pub fn with_key_padding_mask(mut self, mask: Option<Tensor<B, 2, Bool>>) -> Self {
        self.key_padding_mask = mask;
        self
    }

    /// The same options computing half-precision inputs in f32.
    pub fn with_upcast(mut self) -> Self {
        self.upcast = true;
        self
    }

    /// Whether only plain `softmax(q kᵀ / √head_dim) v` is asked for: no mask of either kind.
    pub fn is_unmasked(&self) -> bool {
        !self.causal && self.key_padding_mask.is_none()
    }
}
