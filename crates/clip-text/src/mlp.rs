//! The position-wise MLP (transformers' `CLIPMLP`): `fc2(act(fc1(x)))`.

use burn::module::{Initializer, Module};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{backend::Backend, Tensor};

use crate::activation::HiddenAct;

/// `fc1` (H → intermediate) → activation → `fc2` (intermediate → H).
#[derive(Module, Debug)]
pub struct CLIPMlp<B: Backend> {
    /// `mlp.fc1.{weight,bias}` `H → intermediate_size`.
    pub fc1: Linear<B>,
    /// `mlp.fc2.{weight,bias}` `intermediate_size → H`.
    pub fc2: Linear<B>,
    /// The config's `hidden_act`.
    pub activation: HiddenAct,
}

impl<B: Backend> CLIPMlp<B> {
    /// Creates the MLP with zero weights (to be loaded).
    pub fn new(hidden_size: usize, intermediate_size: usize, activation: HiddenAct, device: &B::Device) -> Self {
        Self {
            fc1: LinearConfig::new(hidden_size, intermediate_size)
                .with_initializer(Initializer::Zeros)
                .init(device),
            fc2: LinearConfig::new(intermediate_size, hidden_size)
                .with_initializer(Initializer::Zeros)
                .init(device),
            activation,
        }
    }

    /// # Shapes
    /// - input: `[B, L, H]`
    /// - output: `[B, L, H]`
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        self.fc2.forward(self.activation.forward(self.fc1.forward(x)))
    }
}
