//! [`CLIPTextModel`]: transformers' `CLIPTextModel` (text tower without projection).

use std::path::Path;

use burn::module::{Module, ModuleMapper, Param};
use burn::nn::{LayerNorm, LayerNormConfig};
use burn::tensor::{backend::Backend, get_device_settings, DType, Distribution, Int, Tensor};
use vq_kernels::KernelBackend;

use crate::config::CLIPTextConfig;
use crate::embeddings::CLIPTextEmbeddings;
use crate::encoder::CLIPEncoder;
use crate::error::{ConfigError, LoadError};
use crate::keys;
use crate::pooling::EosRule;

/// What [`CLIPTextModel::forward`] returns.
#[derive(Debug, Clone)]
pub struct CLIPTextOutput<B: Backend> {
    /// Output of `final_layer_norm`, `[B, L, H]` — what VQ-Diffusion and Stable Diffusion use.
    pub last_hidden_state: Tensor<B, 3>,
    /// `last_hidden_state` at each sequence's EOS position ([`EosRule`]), `[B, H]`.
    pub pooler_output: Tensor<B, 2>,
}

/// CLIP's text transformer: embeddings → pre-LN causal encoder → final LayerNorm, plus the
/// pooled (EOS) output.
#[derive(Module, Debug)]
pub struct CLIPTextModel<B: Backend> {
    /// `embeddings.*`.
    pub embeddings: CLIPTextEmbeddings<B>,
    /// `encoder.layers.*`.
    pub encoder: CLIPEncoder<B>,
    /// `final_layer_norm.{weight,bias}` (→ `gamma`/`beta`).
    pub final_layer_norm: LayerNorm<B>,
    /// Longest accepted sequence.
    pub max_position_embeddings: usize,
    /// Position rule of the pooled output, from the config's `eos_token_id`.
    pub eos_rule: EosRule,
}

impl CLIPTextConfig {
    /// Creates a model with this configuration for loading ([`CLIPTextModel::load_weights`]):
    /// embeddings and Linear layers start at zero, LayerNorms at the identity. Zero is the
    /// cheapest fill — loading materialises every parameter before replacing it, and a random
    /// fill of the 63 M ViT-B/32 values costs seconds. Fails if [`validate`](Self::validate)
    /// does.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<CLIPTextModel<B>, ConfigError> {
        self.validate()?;
        Ok(CLIPTextModel {
            embeddings: self.init_embeddings(device),
            encoder: self.init_encoder(device),
            final_layer_norm: LayerNormConfig::new(self.hidden_size).with_epsilon(self.layer_norm_eps).init(device),
            max_position_embeddings: self.max_position_embeddings,
            eos_rule: EosRule::from_eos_token_id(self.eos_token_id),
        })
    }

    /// Creates a model with transformers' random initialisation: every matrix (embedding tables,
    /// Linear weights) N(0, 0.02²), biases 0, LayerNorms the identity. For training from scratch
    /// and for benchmarks: a model of [`init`](Self::init)'s zeros encodes every prompt to zero
    /// states, which the pipeline's L2 normalisation turns into NaN.
    pub fn init_random<B: Backend>(&self, device: &B::Device) -> Result<CLIPTextModel<B>, ConfigError> {
        Ok(self.init(device)?.map(&mut NormalMatrices { std: INITIALIZER_RANGE }))
    }
}

/// transformers' `CLIPTextConfig.initializer_range`: the standard deviation of random matrices.
const INITIALIZER_RANGE: f64 = 0.02;

/// Refills every matrix parameter (rank ≥ 2) with N(0, std²); vectors stay as they are.
struct NormalMatrices {
    std: f64,
}

impl<B: Backend> ModuleMapper<B> for NormalMatrices {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let (id, tensor, mapper) = param.consume();
        let tensor = match D >= 2 {
            true => Tensor::random(tensor.shape(), Distribution::Normal(0.0, self.std), &tensor.device()),
            false => tensor,
        };
        Param::from_mapped_value(id, tensor, mapper)
    }
}

impl<B: Backend> CLIPTextModel<B> {
    /// Loads a transformers text-encoder folder (`config.json` + `model[.<variant>].safetensors`
    /// or `pytorch_model[.<variant>].bin`), e.g. a pipeline's `text_encoder/`; `variant =
    /// Some("fp16")` for the half-precision files. Parameters take the device's default float
    /// dtype, whatever the file stores.
    pub fn from_pretrained(folder: &Path, variant: Option<&str>, device: &B::Device) -> Result<Self, LoadError> {
        Self::from_config(&CLIPTextConfig::from_file(&folder.join("config.json"))?, folder, variant, device)
    }

    /// [`from_pretrained`](Self::from_pretrained) with the folder's config already read (a
    /// caller that also keeps the config reads it once).
    pub fn from_config(
        config: &CLIPTextConfig,
        folder: &Path,
        variant: Option<&str>,
        device: &B::Device,
    ) -> Result<Self, LoadError> {
        let weights = vq_weights::find_weights_file(folder, "model", variant)?;
        config.check_against_weights(&folder.join("config.json"), &weights)?;
        let dtype = get_device_settings::<B>(device).float_dtype.into();
        config.init(device)?.load_weights(&weights, dtype)
    }

    /// Fills the parameters from a safetensors or PyTorch `.bin` file, in either key layout
    /// (see [`keys`](crate::keys)), casting floats to `dtype`. Missing, misshapen and unexpected
    /// tensors are errors that name the tensor.
    pub fn load_weights(self, file: &Path, dtype: DType) -> Result<Self, LoadError> {
        Ok(vq_weights::load_module(self, file, &keys::key_map(), dtype)?)
    }
}

impl<B: KernelBackend> CLIPTextModel<B> {
    /// Encodes token ids without an attention mask (only the causal mask applies), as
    /// diffusers' pipelines do.
    ///
    /// # Shapes
    /// - `input_ids`: `[B, L]`, `1 <= L <= max_position_embeddings`
    /// - output: `last_hidden_state` `[B, L, H]`, `pooler_output` `[B, H]`
    ///
    /// # Panics
    /// If `L` is 0 or larger than `max_position_embeddings` (truncate with the tokenizer).
    pub fn forward(&self, input_ids: Tensor<B, 2, Int>) -> CLIPTextOutput<B> {
        self.forward_impl(input_ids, None)
    }

    /// Encodes token ids with a padding mask: keys where `attention_mask == 0` are hidden
    /// from every query, on top of the causal mask.
    ///
    /// # Shapes
    /// - `input_ids`, `attention_mask`: `[B, L]`
    /// - output: as [`forward`](Self::forward)
    ///
    /// # Panics
    /// As [`forward`](Self::forward), and if the two shapes differ.
    pub fn forward_with_attention_mask(
        &self,
        input_ids: Tensor<B, 2, Int>,
        attention_mask: Tensor<B, 2, Int>,
    ) -> CLIPTextOutput<B> {
        assert_eq!(input_ids.dims(), attention_mask.dims(), "attention_mask must have the shape of input_ids");
        self.forward_impl(input_ids, Some(attention_mask))
    }

    fn forward_impl(
        &self,
        input_ids: Tensor<B, 2, Int>,
        attention_mask: Option<Tensor<B, 2, Int>>,
    ) -> CLIPTextOutput<B> {
        let [batch, seq_len] = input_ids.dims();
        assert!(
            (1..=self.max_position_embeddings).contains(&seq_len),
            "sequence length {seq_len} must be in 1..={} (max_position_embeddings)",
            self.max_position_embeddings
        );
        let key_padding_mask = attention_mask.map(|mask| mask.equal_elem(0));
        let hidden_states = self.embeddings.forward(input_ids.clone()); // [B, L, H]
        let hidden_states = self.encoder.forward(hidden_states, key_padding_mask);
        let last_hidden_state = self.final_layer_norm.forward(hidden_states);

        let [_, _, hidden] = last_hidden_state.dims();
        let positions = self.eos_rule.positions(input_ids).reshape([batch, 1, 1]).expand([batch, 1, hidden]); // [B, 1, H]
        let pooler_output = last_hidden_state.clone().gather(1, positions).reshape([batch, hidden]);
        CLIPTextOutput { last_hidden_state, pooler_output }
    }
}
