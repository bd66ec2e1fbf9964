//! Multi-head attention as diffusers' `Attention` with `AttnProcessor2_0` computes it for
//! this model (`models/attention_processor.py`): no masks, no norms on q/k, no residual
//! inside, output rescale 1.

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig};
use burn::tensor::activation::softmax;
use burn::tensor::backend::Backend;
use burn::tensor::module::attention;
use burn::tensor::ops::{AttentionModuleOptions, PadMode};
use burn::tensor::Tensor;
use std::ops::Range;

use crate::host_attention::host_attention;
use crate::threads::{cores_here, cpu_threads, host_code_applies, map_on_threads, split_range};

/// How [`Attention`] computes `softmax(q kᵀ / √head_dim) v`. All give the same values up to
/// rounding; which is fastest depends on the backend (`xtask bench --attention`, BENCHMARKS.md).
/// A new layer takes [`AttentionKernel::preferred`] for its device;
/// [`Transformer2DModel::with_attention_kernel`](crate::Transformer2DModel::with_attention_kernel)
/// picks another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttentionKernel {
    /// burn's attention op: a flash kernel on burn-flex; on CubeCL flash kernels where the head
    /// width suits them, else an unfused fallback (nine kernels over the `[batch, heads, n, l]`
    /// scores, on CUDA ≈ 0.55 ms per ITHQ self-attention).
    Op,
    /// Matrix product, softmax and matrix product as ordinary tensor ops, which burn's kernel
    /// fusion merges into fewer passes over the scores.
    Composed,
    /// The op with each head zero-padded to a multiple of 32 wide (ITHQ's 88 → 96) and q scaled by
    /// √(padded / head_dim) so the op's default scale 1/√padded stays 1/√head_dim: a width
    /// CubeCL's flash kernels take.
    PaddedOp,
    /// The op on groups of heads, one group per CPU thread, with heads split and merged by
    /// concatenating per-head slices: burn-flex's op runs on the calling thread only, and its
    /// permuted copies go element by element (≈ 4× slower than the row copies of a
    /// concatenation, BENCHMARKS.md session 10).
    ThreadedOp,
    /// The scores computed on the host (CPU backends, f32, no autodiff): both matrix products
    /// by the `gemm` crate on the projections' layout, the softmax by a vectorised `exp`,
    /// (batch, head) pairs on the CPU's threads. Elsewhere it runs as
    /// [`ThreadedOp`](Self::ThreadedOp).
    Host,
}

impl AttentionKernel {
    /// The kernel for `device`'s backend: [`Composed`](Self::Composed) on CubeCL (measured on CUDA:
    /// on an H100 in f16 70.6 ms per ITHQ forward against 77.5 ms for the op and 93 ms for the
    /// padded op; WGPU shares the fusion that makes it fast), [`Op`](Self::Op) under autodiff
    /// (one thread records the graph), [`Host`](Self::Host) on the CPU backends.
    pub fn preferred<B: Backend>(device: &B::Device) -> Self {
        if B::name(device).contains("cubecl") {
            Self::Composed
        } else if cpu_threads::<B>(device) > 1 {
            Self::Host
        } else {
            Self::Op
        }
    }

    /// Every kernel, in the order the command lines list them.
    pub const ALL: [Self; 5] = [Self::Op, Self::Composed, Self::PaddedOp, Self::ThreadedOp, Self::Host];

    /// The name [`FromStr`](std::str::FromStr) reads and [`Display`](std::fmt::Display) writes.
    pub fn name(self) -> &'static str {
        match self {
            Self::Op => "op",
            Self::Composed => "composed",
            Self::PaddedOp => "padded-op",
            Self::ThreadedOp => "threaded-op",
            Self::Host => "host",
        }
    }
}

impl std::fmt::Display for AttentionKernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for AttentionKernel {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|kernel| kernel.name() == s).ok_or_else(|| {
            let names: Vec<&str> = Self::ALL.iter().map(|kernel| kernel.name()).collect();
            format!("unknown attention kernel {s:?}: expected one of {}", names.join(", "))
        })
    }
}

/// Configuration of an [`Attention`] layer.
#[derive(Debug, Clone)]
pub(crate) struct AttentionConfig {
    /// Width D of the queries and of the output (`query_dim`).
    pub(crate) query_dim: usize,
    /// Width of the keys/values source: D for self-attention, the text width for
    /// cross-attention (`cross_attention_dim`).
    pub(crate) context_dim: usize,
    /// Number of heads.
    pub(crate) heads: usize,
    /// Width of one head; heads × head width = D.
    pub(crate) head_dim: usize,
    /// Whether q/k/v have a bias (`attention_bias`).
    pub(crate) bias: bool,
    /// Dropout after the output projection (`to_out[1]`).
    pub(crate) dropout: f64,
}

impl AttentionConfig {
    pub(crate) fn init<B: Backend>(&self, device: &B::Device) -> Attention<B> {
        let inner = self.heads * self.head_dim;
        let proj = |d_in| LinearConfig::new(d_in, inner).with_bias(self.bias).init(device);
        Attention {
            to_q: proj(self.query_dim),
            to_k: proj(self.context_dim),
            to_v: proj(self.context_dim),
            to_out: LinearConfig::new(inner, self.query_dim).init(device),
            dropout: DropoutConfig::new(self.dropout).init(),
            heads: self.heads,
            kernel: AttentionKernel::preferred::<B>(device),
        }
    }
}

/// `to_out(softmax(q kᵀ / √head_dim) v)` over `heads` heads.
#[derive(Module, Debug)]
pub struct Attention<B: Backend> {
    /// Query projection D → D (`attnN.to_q`).
    pub to_q: Linear<B>,
    /// Key projection context → D (`attnN.to_k`).
    pub to_k: Linear<B>,
    /// Value projection context → D (`attnN.to_v`).
    pub to_v: Linear<B>,
    /// Output projection D → D, always with bias (`attnN.to_out.0`).
    pub to_out: Linear<B>,
    /// `to_out[1]`.
    pub dropout: Dropout,
    /// Number of heads.
    pub heads: usize,
    /// How the scores are computed (not stored in checkpoints; [`AttentionKernel::preferred`] for
    /// the device the layer was built on).
    #[module(skip)]
    pub kernel: AttentionKernel,
}

impl<B: Backend> Attention<B> {
    /// # Shapes
    ///
    /// - `x`: `[batch, n, D]` queries (and keys/values when `context` is `None`)
    /// - `context`: `[batch, l, context_dim]` keys/values source for cross-attention
    /// - output: `[batch, n, D]`
    pub fn forward(&self, x: Tensor<B, 3>, context: Option<Tensor<B, 3>>) -> Tensor<B, 3> {
        let context = context.unwrap_or_else(|| x.clone());
        let q = self.to_q.forward(x);
        let k = self.to_k.forward(context.clone());
        let v = self.to_v.forward(context);
        let out = match self.kernel {
            AttentionKernel::Host if host_code_applies(&q) => host_attention(q, k, v, self.heads),
            AttentionKernel::ThreadedOp | AttentionKernel::Host => threaded_attention_op(q, k, v, self.heads),
            AttentionKernel::Op => self.on_split_heads(attention_op, q, k, v),
            AttentionKernel::Composed => self.on_split_heads(composed_attention, q, k, v),
            AttentionKernel::PaddedOp => self.on_split_heads(padded_attention_op, q, k, v),
        };
        self.dropout.forward(self.to_out.forward(out))
    }

    /// `per_head` on `[batch, heads, len, head_dim]` views of the projections, its output merged
    /// back to `[batch, n, heads·head_dim]`.
    fn on_split_heads(
        &self,
        per_head: fn(Tensor<B, 4>, Tensor<B, 4>, Tensor<B, 4>) -> Tensor<B, 4>,
        q: Tensor<B, 3>,
        k: Tensor<B, 3>,
        v: Tensor<B, 3>,
    ) -> Tensor<B, 3> {
        let [batch, n, inner] = q.dims();
        let out = per_head(self.split_heads(q), self.split_heads(k), self.split_heads(v));
        // [batch, heads, n, head_dim] -> [batch, n, heads, head_dim] -> [batch, n, D]
        out.swap_dims(1, 2).reshape([batch, n, inner])
    }

    /// `[batch, len, heads·head_dim]` -> `[batch, heads, len, head_dim]`.
    fn split_heads(&self, x: Tensor<B, 3>) -> Tensor<B, 4> {
        let [batch, len, inner] = x.dims();
        x.reshape([batch, len, self.heads, inner / self.heads]).swap_dims(1, 2)
    }
}

/// [`attention_op`] on groups of heads, one group per thread, from and to the projections' layout.
///
/// # Shapes
///
/// - `q`: `[batch, n, heads·head_dim]`; `k`, `v`: `[batch, l, heads·head_dim]`
/// - output: `[batch, n, heads·head_dim]`
fn threaded_attention_op<B: Backend>(q: Tensor<B, 3>, k: Tensor<B, 3>, v: Tensor<B, 3>, heads: usize) -> Tensor<B, 3> {
    let head_dim = q.dims()[2] / heads;
    let threads = cores_here();
    // [batch, len, heads·head_dim] -> [batch, group, len, head_dim], contiguous: the heads' column
    // slices stacked by one concatenation (row copies) instead of a permuted copy.
    let gather = |x: &Tensor<B, 3>, group: &Range<usize>| {
        let slices = group.clone().map(|h| x.clone().narrow(2, h * head_dim, head_dim).unsqueeze_dim(1));
        Tensor::cat(slices.collect(), 1)
    };
    let outputs = map_on_threads(split_range(heads, threads), |group| {
        let out = attention_op(gather(&q, &group), gather(&k, &group), gather(&v, &group));
        // [batch, group, n, head_dim] -> one [batch, n, head_dim] per head
        out.chunk(group.len(), 1).into_iter().map(|head| head.squeeze_dim(1)).collect::<Vec<Tensor<B, 3>>>()
    });
    // The heads side by side: [batch, n, heads·head_dim].
    Tensor::cat(outputs.into_iter().flatten().collect(), 2)
}

/// burn's fused op: default scale 1/√head_dim, no mask, no bias, not causal. Backends with a
/// flash kernel never materialise the `[batch, heads, n, l]` scores; the fallback keeps them only
/// inside the call.
fn attention_op<B: Backend>(q: Tensor<B, 4>, k: Tensor<B, 4>, v: Tensor<B, 4>) -> Tensor<B, 4> {
    attention(q, k, v, None, None, AttentionModuleOptions::default())
}

/// `softmax(q kᵀ / √head_dim) v` in tensor ops; `[batch, heads, n, head_dim]` in and out.
fn composed_attention<B: Backend>(q: Tensor<B, 4>, k: Tensor<B, 4>, v: Tensor<B, 4>) -> Tensor<B, 4> {
    let scale = 1.0 / (q.dims()[3] as f64).sqrt();
    // [batch, heads, n, l]
    let scores = q.matmul(k.swap_dims(2, 3)) * scale;
    softmax(scores, 3).matmul(v)
}

/// The op on heads zero-padded to a multiple of 32: zero columns add nothing to q kᵀ, and the
/// output's padded columns (zero weights on zero values) are cut off again.
fn padded_attention_op<B: Backend>(q: Tensor<B, 4>, k: Tensor<B, 4>, v: Tensor<B, 4>) -> Tensor<B, 4> {
    let [batch, heads, n, head_dim] = q.dims();
    let padded = head_dim.next_multiple_of(32);
    if padded == head_dim {
        return attention_op(q, k, v);
    }
    let pad = |x: Tensor<B, 4>| x.pad([(0, padded - head_dim)], PadMode::Constant(0.0));
    // The op scales by 1/√padded; q carries the rest of 1/√head_dim.
    let q = q * (padded as f64 / head_dim as f64).sqrt();
    attention_op(pad(q), pad(k), pad(v)).slice([0..batch, 0..heads, 0..n, 0..head_dim])
}
