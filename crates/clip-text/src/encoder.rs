//! The pre-LN transformer encoder (transformers' `CLIPEncoderLayer` / `CLIPEncoder`).

use burn::module::Module;
use burn::nn::{LayerNorm, LayerNormConfig};
use burn::tensor::{backend::Backend, Bool, Tensor};

use vq_kernels::KernelBackend;

use crate::attention::{CLIPAttention, CLIPAttentionConfig};
use crate::config::CLIPTextConfig;
use crate::mlp::{CLIPMlp, CLIPMlpConfig};

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

impl CLIPTextConfig {
    /// One encoder layer of this config (weights to be loaded).
    fn init_encoder_layer<B: Backend>(&self, device: &B::Device) -> CLIPEncoderLayer<B> {
        let layer_norm = || LayerNormConfig::new(self.hidden_size).with_epsilon(self.layer_norm_eps).init(device);
        CLIPEncoderLayer {
            self_attn: CLIPAttentionConfig { hidden_size: self.hidden_size, num_heads: self.num_attention_heads }
                .init(device),
            layer_norm1: layer_norm(),
            mlp: CLIPMlpConfig {
                hidden_size: self.hidden_size,
                intermediate_size: self.intermediate_size,
                activation: self.hidden_act,
            }
            .init(device),
            layer_norm2: layer_norm(),
        }
    }

    /// The encoder of this config (weights to be loaded).
    pub(crate) fn init_encoder<B: Backend>(&self, device: &B::Device) -> CLIPEncoder<B> {
        CLIPEncoder { layers: (0..self.num_hidden_layers).map(|_| self.init_encoder_layer(device)).collect() }
    }
}

impl<B: KernelBackend> CLIPEncoderLayer<B> {
    /// # Shapes
    /// - `hidden_states`: `[B, L, H]`; `key_padding_mask`: `[B, L]` (`true` = padding)
    /// - output: `[B, L, H]`
    pub fn forward(&self, hidden_states: Tensor<B, 3>, key_padding_mask: Option<Tensor<B, 2, Bool>>) -> Tensor<B, 3> {
        let attended = self.self_attn.forward(self.layer_norm1.forward(hidden_states.clone()), key_padding_mask);
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

impl<B: KernelBackend> CLIPEncoder<B> {
    /// # Shapes
    /// - `hidden_states`: `[B, L, H]`; `key_padding_mask`: `[B, L]` (`true` = padding)
    /// - output: `[B, L, H]`
    pub fn forward(&self, hidden_states: Tensor<B, 3>, key_padding_mask: Option<Tensor<B, 2, Bool>>) -> Tensor<B, 3> {
        self.layers.iter().fold(hidden_states, |x, layer| layer.forward(x, key_padding_mask.clone()))
    }
}
