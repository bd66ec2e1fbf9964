//! The position-wise MLP (transformers' `CLIPMLP`): `fc2(act(fc1(x)))`.

use burn::module::{Initializer, Module};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{backend::Backend, Tensor};
use vq_kernels::KernelBackend;

use crate::activation::HiddenAct;

/// Configuration of a [`CLIPMlp`].
#[derive(Debug, Clone)]
pub(crate) struct CLIPMlpConfig {
    /// Width H of the hidden states (`hidden_size`).
    pub(crate) hidden_size: usize,
    /// Width of the inner layer (`intermediate_size`).
    pub(crate) intermediate_size: usize,
    /// The activation between the two layers (`hidden_act`).
    pub(crate) activation: HiddenAct,
}

impl CLIPMlpConfig {
    /// Zero weights: loading replaces them.
    pub(crate) fn init<B: Backend>(&self, device: &B::Device) -> CLIPMlp<B> {
        let linear = |d_in, d_out| LinearConfig::new(d_in, d_out).with_initializer(Initializer::Zeros).init(device);
        CLIPMlp {
            fc1: linear(self.hidden_size, self.intermediate_size),
            fc2: linear(self.intermediate_size, self.hidden_size),
            activation: self.activation,
        }
    }
}

/// `fc2(activation(fc1(x)))`.
#[derive(Module, Debug)]
pub struct CLIPMlp<B: Backend> {
    /// `mlp.fc1`: Linear H → intermediate.
    pub fc1: Linear<B>,
    /// `mlp.fc2`: Linear intermediate → H.
    pub fc2: Linear<B>,
    /// The config's `hidden_act`.
    pub activation: HiddenAct,
}

impl<B: KernelBackend> CLIPMlp<B> {
    /// # Shapes
    ///
    /// - `x`: `[batch, L, H]`
    /// - output: `[batch, L, H]`
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        self.fc2.forward(self.activation.forward(self.fc1.forward(x)))
    }
}
