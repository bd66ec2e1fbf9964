//! Error types of the crate.

use std::path::PathBuf;

/// A `vqvae/config.json` that this crate cannot build a [`VQModel`](crate::VQModel) from.
///
/// Every variant names the offending config field and its value.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file was read, but its content is invalid: the file and what is wrong with it.
    #[error("{path}: {source}")]
    InFile {
        /// The config file.
        path: PathBuf,
        /// What is wrong with its content.
        source: Box<ConfigError>,
    },
    /// The file could not be read.
    #[error("cannot read VQModel config {path}: {source}")]
    Io {
        /// The config file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is not valid JSON or a field has the wrong JSON type.
    #[error("invalid VQModel config JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// An entry of `down_block_types` / `up_block_types` names a block VQModel cannot use.
    #[error("`{field}[{index}]` = {value:?}: not a VQModel block type (expected one of {expected})")]
    BlockType {
        /// `"down_block_types"` or `"up_block_types"`.
        field: &'static str,
        /// Position in the list.
        index: usize,
        /// The value found.
        value: String,
        /// The accepted values.
        expected: &'static str,
    },
    /// `norm_type` is `"spatial"` (MoVQ's spatially conditioned norm), which this port does not
    /// implement.
    #[error("`norm_type` = \"spatial\": the spatial (MoVQ) decoder norm is not supported; only \"group\" is")]
    SpatialNorm,
    /// `act_fn` is not one of diffusers' activations.
    #[error("`act_fn` = {value:?}: unknown activation (expected \"silu\", \"swish\", \"mish\", \"gelu\" or \"relu\")")]
    Activation {
        /// The value found.
        value: String,
    },
    /// A field has a value diffusers would reject or that cannot describe a working model.
    #[error("`{field}` = {value}: {reason}")]
    InvalidValue {
        /// The config field.
        field: &'static str,
        /// The value found, as JSON.
        value: String,
        /// Why it is rejected.
        reason: String,
    },
}

/// Loading a model from a diffusers `vqvae/` folder or a weight file failed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The config is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The weight file is missing, unreadable, or does not match the config (the error names the
    /// tensor and its expected shape).
    #[error(transparent)]
    Weights(#[from] vq_weights::WeightsError),
}

/// An input a [`VQModel`](crate::VQModel) method cannot take.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// An input tensor has the wrong shape.
    #[error("{input}: expected shape {expected}, got {found:?}")]
    Shape {
        /// Which input.
        input: &'static str,
        /// The expected shape, in words (`[batch, 3, height, width]`).
        expected: String,
        /// The shape given.
        found: Vec<usize>,
    },
    /// A codebook index is negative or not below the codebook size (for example the mask
    /// class of VQ-Diffusion, which has no codebook entry).
    #[error("codebook index {index} out of range: the codebook has {num_embeddings} entries")]
    IndexOutOfRange {
        /// The offending index.
        index: i64,
        /// `num_vq_embeddings`.
        num_embeddings: usize,
    },
}
