//! Feed-forward network (diffusers `models/attention.py` `FeedForward` with the activation
//! modules of `models/activations.py`): `net = [activation(proj), Dropout, Linear]`.

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig};
use burn::tensor::activation::{gelu, gelu_approximate, silu};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use vq_kernels::KernelBackend;

use crate::FeedForwardActivation;

/// Configuration of a [`FeedForward`] network.
#[derive(Debug, Clone)]
pub(crate) struct FeedForwardConfig {
    /// Input and output width D.
    pub(crate) dim: usize,
    /// Hidden width (diffusers: `dim · mult`, `mult = 4`).
    pub(crate) inner_dim: usize,
    /// Activation (`activation_fn`).
    pub(crate) activation: FeedForwardActivation,
    /// Dropout after the activation (`net.1`).
    pub(crate) dropout: f64,
}

impl FeedForwardConfig {
    pub(crate) fn init<B: Backend>(&self, device: &B::Device) -> FeedForward<B> {
        let proj_width = if is_gated(self.activation) { 2 * self.inner_dim } else { self.inner_dim };
        FeedForward {
            proj_in: LinearConfig::new(self.dim, proj_width).init(device),
            dropout: DropoutConfig::new(self.dropout).init(),
            proj_out: LinearConfig::new(self.inner_dim, self.dim).init(device),
            activation: self.activation,
        }
    }
}

/// `proj_out(dropout(act(proj_in(x))))`.
#[derive(Module, Debug)]
pub struct FeedForward<B: Backend> {
    /// Projection D → inner, or D → 2·inner for the gated activations (`ff.net.0.proj`).
    pub proj_in: Linear<B>,
    /// `ff.net.1`.
    pub dropout: Dropout,
    /// Projection inner → D (`ff.net.2`).
    pub proj_out: Linear<B>,
    /// The activation applied to `proj_in`'s output.
    pub activation: FeedForwardActivation,
}

impl<B: KernelBackend> FeedForward<B> {
    /// # Shapes
    ///
    /// - `x`: `[batch, n, D]`
    /// - output: `[batch, n, D]`
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let hidden = activate(self.proj_in.forward(x), self.activation);
        self.proj_out.forward(self.dropout.forward(hidden))
    }
}

/// Whether the activation halves a doubled projection (GLU variants).
fn is_gated(activation: FeedForwardActivation) -> bool {
    matches!(activation, FeedForwardActivation::Geglu | FeedForwardActivation::Swiglu)
}

/// Applies the activation to the output of `proj_in`.
fn activate<B: KernelBackend>(x: Tensor<B, 3>, activation: FeedForwardActivation) -> Tensor<B, 3> {
    match activation {
        FeedForwardActivation::Gelu => gelu(x),
        FeedForwardActivation::GeluApproximate => gelu_approximate(x),
        // diffusers' `ApproximateGELU` ("geglu-approximate", not gated): x · σ(1.702 x).
        FeedForwardActivation::GegluApproximate => B::quick_gelu(x),
        FeedForwardActivation::LinearSilu => silu(x),
        FeedForwardActivation::Geglu => {
            let [hidden, gate] = split_hidden_gate(x);
            hidden * gelu(gate)
        }
        FeedForwardActivation::Swiglu => {
            let [hidden, gate] = split_hidden_gate(x);
            hidden * silu(gate)
        }
    }
}

/// Splits the last axis in halves: diffusers' `hidden_states, gate = proj(x).chunk(2, -1)` —
/// the **first** half is the value, the **second** the gate.
fn split_hidden_gate<B: Backend>(x: Tensor<B, 3>) -> [Tensor<B, 3>; 2] {
    let [b, n, two_inner] = x.dims();
    let inner = two_inner / 2;
    [x.clone().slice([0..b, 0..n, 0..inner]), x.slice([0..b, 0..n, inner..two_inner])]
}
