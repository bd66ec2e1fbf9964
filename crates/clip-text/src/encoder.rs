//! The pre-LN transformer encoder (transformers' `CLIPEncoderLayer` / `CLIPEncoder`).

use burn::module::Module;
use burn::nn::{LayerNorm, LayerNormConfig};
use burn::tensor::{backend::Backend, Bool, Tensor};

use crate::attention::CLIPAttention;
use crate::config::CLIPTextConfig;
use crate::mlp::CLIPMlp;

/// `x + attn(LN1(x))`, then `x + mlp(LN2(x))`.
#[derive(Module, Debug)]
pub struct CLIPEncoderLayer<B: Backend> {
    /// `encoder.layers.{i}.self_attn.*`.
    pub self_attn: CLIPAttention<B>,
    /// `encoder.layers.{i}.layer_norm1.{weight,bias}` (→ `gamma`/`beta`).
    pub layer_norm1: LayerNorm<B>,
    /// `encoder.layers.{i}.mlp.*`.
    pub mlp: CLIPMlp<B>,
    /// `encoder.layers.{i}.layer_norm2.{weight,bias}` (→ `gamma`/`beta`).
    pub layer_norm2: LayerNorm<B>,
}

impl<B: Backend> CLIPEncoderLayer<B> {
    /// Creates one layer of `config` (weights to be loaded).
    pub fn new(config: &CLIPTextConfig, device: &B::Device) -> Self {
        let layer_norm = || {
            LayerNormConfig::new(config.hidden_size)
                .with_epsilon(config.layer_norm_eps)
                .init(device)
        };
        Self {
            self_attn: CLIPAttention::new(config.hidden_size, config.num_attention_heads, device),
            layer_norm1: layer_norm(),
            mlp: CLIPMlp::new(config.hidden_size, config.intermediate_size, config.hidden_act, device),
            layer_norm2: layer_norm(),
        }
    }

    /// # Shapes
    /// - `hidden_states`: `[B, L, H]`; `key_padding_mask`: `[B, L]` (`true` = padding)
    /// - output: `[B, L, H]`
    pub fn forward(&self, hidden_states: Tensor<B, 3>, key_padding_mask: Option<Tensor<B, 2, Bool>>) -> Tensor<B, 3> {
        let attended = self
            .self_attn
            .forward(self.layer_norm1.forward(hidden_states.clone()), key_padding_mask);
        let hidden_states = hidden_states + attended;
        let transformed = self.mlp.forward(self.layer_norm2.forward(hidden_states.clone()));
        hidden_states + transformed
    }
}

/// `num_hidden_layers` [`CLIPEncoderLayer`]s in sequence.
#[derive(Module, Debug)]
pub struct CLIPEncoder<B: Backend> {
    /// `encoder.layers.{i}`.
    pub layers: Vec<CLIPEncoderLayer<B>>,
}

impl<B: Backend> CLIPEncoder<B> {
    /// Creates the encoder of `config` (weights to be loaded).
    pub fn new(config: &CLIPTextConfig, device: &B::Device) -> Self {
        Self {
            layers: (0..config.num_hidden_layers)
                .map(|_| CLIPEncoderLayer::new(config, device))
                .collect(),
        }
    }

    /// # Shapes
    /// - `hidden_states`: `[B, L, H]`; `key_padding_mask`: `[B, L]` (`true` = padding)
    /// - output: `[B, L, H]`
    pub fn forward(&self, hidden_states: Tensor<B, 3>, key_padding_mask: Option<Tensor<B, 2, Bool>>) -> Tensor<B, 3> {
        self.layers
            .iter()
            .fold(hidden_states, |x, layer| layer.forward(x, key_padding_mask.clone()))
    }
}
