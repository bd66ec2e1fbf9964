//! `model_index.json` and the learned classifier-free embeddings component.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use serde::Deserialize;

use crate::PipelineError;

/// The components every VQ-Diffusion pipeline folder has, as `model_index.json` names them.
pub const COMPONENTS: [&str; 6] =
    ["vqvae", "text_encoder", "tokenizer", "transformer", "scheduler", "learned_classifier_free_sampling_embeddings"];

/// Reads and checks `model_index.json`: a `VQDiffusionPipeline` with every component.
///
/// Both spellings of the embeddings entry are accepted: the hub's
/// `["vq_diffusion", "LearnedClassifierFreeSamplingEmbeddings"]` and save_pretrained's
/// `["diffusers", …]`.
pub fn read_model_index(dir: &Path) -> Result<BTreeMap<String, serde_json::Value>, PipelineError> {
    let path = dir.join("model_index.json");
    let text = read(&path)?;
    let config = |message: String| PipelineError::Config { path: path.clone(), message };
    let index: BTreeMap<String, serde_json::Value> =
        serde_json::from_str(&text).map_err(|e| config(format!("not valid JSON: {e}")))?;
    match index.get("_class_name").and_then(|v| v.as_str()) {
        Some("VQDiffusionPipeline") => {}
        Some(other) => return Err(config(format!("_class_name is `{other}`, expected `VQDiffusionPipeline`"))),
        None => return Err(config("no `_class_name`".into())),
    }
    for name in COMPONENTS {
        let entry = index.get(name).ok_or_else(|| config(format!("no `{name}` component")))?;
        let is_pair = entry.as_array().is_some_and(|a| a.len() == 2 && a.iter().all(|v| v.is_string()));
        if !is_pair {
            return Err(config(format!("`{name}` must be [library, class], found {entry}")));
        }
        if !dir.join(name).is_dir() {
            return Err(config(format!("the `{name}` folder is missing")));
        }
    }
    Ok(index)
}

/// A small JSON file of the pipeline folder: a regular file of at most
/// [`vq_weights::CONFIG_MAX_BYTES`].
pub(crate) fn read(path: &Path) -> Result<String, PipelineError> {
    vq_weights::read_text_capped(path, vq_weights::CONFIG_MAX_BYTES)
        .map_err(|source| PipelineError::Io { path: path.into(), source })
}

/// `learned_classifier_free_sampling_embeddings/config.json`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct NegativeEmbeddingsConfig {
    /// Whether the unconditional branch uses learned embeddings (ITHQ: true) or the encoded
    /// empty prompt.
    pub learnable: bool,
    /// Text width H of the embeddings (required when `learnable`).
    #[serde(default)]
    pub hidden_size: Option<usize>,
    /// Number of text positions (required when `learnable`).
    #[serde(default)]
    pub length: Option<usize>,
}

/// What the unconditional branch of classifier-free guidance is conditioned on
/// (diffusers' `LearnedClassifierFreeSamplingEmbeddings`).
#[derive(Debug, Clone)]
pub enum NegativeEmbeddings<B: Backend> {
    /// Learned `[length, H]` embeddings, used as stored (not normalised).
    Learned(Tensor<B, 2>),
    /// The empty prompt, encoded and normalised like a prompt.
    EmptyPrompt,
}

impl<B: Backend> NegativeEmbeddings<B> {
    /// Loads the component folder. With `learnable: false` the weights file may be absent or
    /// hold the empty tensor diffusers writes for `embeddings = None`.
    pub fn from_dir(dir: &Path, variant: Option<&str>, device: &B::Device) -> Result<Self, PipelineError> {
        let config_path = dir.join("config.json");
        let config: NegativeEmbeddingsConfig = serde_json::from_str(&read(&config_path)?)
            .map_err(|e| PipelineError::Config { path: config_path.clone(), message: e.to_string() })?;
        if !config.learnable {
            return Ok(Self::EmptyPrompt);
        }
        let field = |value: Option<usize>, name: &str| {
            value.ok_or_else(|| PipelineError::Config {
                path: config_path.clone(),
                message: format!("`learnable` is true but `{name}` is missing"),
            })
        };
        let shape = [field(config.length, "length")?, field(config.hidden_size, "hidden_size")?];
        let weights = find_weights(dir, variant)?;
        let data = vq_weights::read_parameter(&weights, "embeddings", &shape)?;
        Ok(Self::Learned(Tensor::from_data(data, device)))
    }
}

fn find_weights(dir: &Path, variant: Option<&str>) -> Result<PathBuf, PipelineError> {
    Ok(vq_weights::find_weights_file(dir, "diffusion_pytorch_model", variant)?)
}
