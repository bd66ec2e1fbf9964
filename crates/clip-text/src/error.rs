//! Typed errors of the crate: configuration, model loading and tokenizer loading/encoding.

use std::path::PathBuf;

/// A `config.json` that cannot be read, parsed or validated.
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
    #[error("cannot read CLIP text config {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The text is not a JSON object of the expected field types.
    #[error("invalid CLIP text config: {0}")]
    Json(serde_json::Error),
    /// `hidden_act` names an activation this crate does not implement.
    #[error("hidden_act: unsupported activation `{name}` (supported: quick_gelu, gelu, gelu_new, gelu_pytorch_tanh)")]
    UnsupportedActivation {
        /// The name found in the config.
        name: String,
    },
    /// A size field is zero.
    #[error("{field} must be > 0")]
    Zero {
        /// The field.
        field: &'static str,
    },
    /// `hidden_size` is not a multiple of `num_attention_heads`.
    #[error("hidden_size ({hidden_size}) is not a multiple of num_attention_heads ({num_attention_heads})")]
    HeadsDoNotDivideHidden {
        /// `hidden_size` from the config.
        hidden_size: usize,
        /// `num_attention_heads` from the config.
        num_attention_heads: usize,
    },
    /// Any other field with a value the model cannot use.
    #[error("{field}: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong with its value.
        reason: String,
    },
}

/// A text encoder directory that cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// `config.json` is missing or invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The weights file is missing, unreadable, or does not match the config (a missing or
    /// misshapen tensor is named with its expected shape).
    #[error(transparent)]
    Weights(#[from] vq_weights::WeightsError),
}

/// A tokenizer directory that cannot be loaded, or a text that cannot be encoded.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A JSON file (`special_tokens_map.json`, `tokenizer_config.json`) could not be parsed.
    #[error("invalid JSON in {path}: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The parse error.
        source: serde_json::Error,
    },
    /// Neither `tokenizer.json` nor `vocab.json` + `merges.txt` exist in the directory.
    #[error("no tokenizer in {dir}: expected tokenizer.json, or vocab.json and merges.txt")]
    NoTokenizerFiles {
        /// The directory searched.
        dir: PathBuf,
    },
    /// A special token (BOS, EOS, pad) is not in the vocabulary.
    #[error("the {role} token `{token}` is not in the vocabulary")]
    UnknownSpecialToken {
        /// `bos`, `eos` or `pad`.
        role: &'static str,
        /// The token text.
        token: String,
    },
    /// A tokenizer file's content is invalid (`tokenizer.json`, `vocab.json`, `merges.txt`).
    #[error("invalid {path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A token id is larger than [`MAX_TOKEN_ID`](crate::tokenizer::MAX_TOKEN_ID).
    #[error("token `{token}` has id {id}, larger than the largest supported id 2147483647")]
    IdOutOfRange {
        /// The token.
        token: String,
        /// Its id.
        id: u32,
    },
    /// The `tokenizers` library failed (bad `tokenizer.json`, vocab/merges, or encoding).
    #[error("tokenizers: {0}")]
    Tokenizers(#[source] tokenizers::Error),
}
