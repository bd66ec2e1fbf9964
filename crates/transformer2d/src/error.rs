//! Error types of the crate.

use std::path::PathBuf;

/// A `transformer/config.json` that this crate cannot build a model from.
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
    #[error("cannot read transformer config {path}: {source}")]
    Io {
        /// The config file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is not valid JSON or a field has the wrong JSON type.
    #[error("invalid transformer config JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// `in_channels` is set: the config describes the continuous-input (latent image) path
    /// of `Transformer2DModel`, or both the continuous and the discrete path.
    #[error(
        "`in_channels` = {in_channels}: the continuous (or patched) input path of Transformer2DModel \
         is not supported; only discrete input (`num_vector_embeds`, `in_channels` null) is"
    )]
    ContinuousInput {
        /// The value of `in_channels`.
        in_channels: usize,
    },
    /// `patch_size` is set: the config describes the patched (DiT / PixArt) input path.
    #[error(
        "`patch_size` = {patch_size}: the patched input path of Transformer2DModel is not \
         supported; only discrete input (`num_vector_embeds`) is"
    )]
    PatchedInput {
        /// The value of `patch_size`.
        patch_size: usize,
    },
    /// The effective norm type (after diffusers' upgrade rule) is not `"ada_norm"`.
    #[error(
        "`norm_type` = {norm_type:?} (after upgrading \"layer_norm\" with `num_embeds_ada_norm` \
         to \"ada_norm\"): only \"ada_norm\" is supported"
    )]
    NormType {
        /// The effective norm type.
        norm_type: String,
    },
    /// A field the discrete path needs is absent or null.
    #[error("`{field}` is missing or null; the discrete Transformer2DModel path needs it")]
    Missing {
        /// The config field.
        field: &'static str,
    },
    /// A field has a value this port does not implement.
    #[error("`{field}` = {value}: {reason}")]
    Unsupported {
        /// The config field.
        field: &'static str,
        /// The value found, as JSON.
        value: String,
        /// Why it is rejected.
        reason: &'static str,
    },
}

/// Loading a model from a diffusers `transformer/` folder or a weight file failed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The config is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The weight file is missing, unreadable, or does not match the config.
    #[error(transparent)]
    Weights(#[from] vq_weights::WeightsError),
}
