use std::path::{Path, PathBuf};

use crate::checkpoint::FormatError;

/// Why a checkpoint could not be loaded. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    /// The file does not exist, is not a regular file, or cannot be read.
    #[error("cannot read weights file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating-system error.
        source: std::io::Error,
    },
    /// The file exists but is not a valid safetensors / PyTorch checkpoint (corrupt, truncated,
    /// a legacy or unsupported format).
    #[error("invalid weights file {path}: {message}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What the reader reported.
        message: String,
    },
    /// Tensors the module needs are absent from the file.
    #[error("weights file {path} lacks {} tensor(s): {}", missing.len(), list_missing(missing))]
    Missing {
        /// The file.
        path: PathBuf,
        /// Module path and expected shape of each missing tensor.
        missing: Vec<(String, Vec<usize>)>,
    },
    /// A tensor has the wrong shape.
    #[error("weights file {path}: tensor `{tensor}` has shape {found:?}, expected {expected:?}")]
    Shape {
        /// The file.
        path: PathBuf,
        /// Checkpoint key of the tensor.
        tensor: String,
        /// Shape the module needs (in the checkpoint's layout).
        expected: Vec<usize>,
        /// Shape stored in the file (in the checkpoint's layout).
        found: Vec<usize>,
    },
    /// The file holds tensors that map to no parameter: a different architecture or config.
    #[error("weights file {path} has {} unexpected tensor(s) (wrong config or architecture?): {}", keys.len(), list(keys))]
    Unexpected {
        /// The file.
        path: PathBuf,
        /// Checkpoint keys that were not used.
        keys: Vec<String>,
    },
    /// A tensor's element type cannot fill the parameter it maps to (an integer or boolean
    /// tensor where a float parameter is expected, or a type this crate cannot read).
    #[error("weights file {path}: tensor `{tensor}` has dtype {found}, expected {expected}")]
    Dtype {
        /// The file.
        path: PathBuf,
        /// Checkpoint key of the tensor.
        tensor: String,
        /// Element type stored in the file.
        found: String,
        /// What the parameter needs.
        expected: String,
    },
    /// One tensor's declaration does not fit the file: its storage is missing or short, its
    /// view reaches past the storage's end, an offset overflows, …
    #[error("invalid weights file {path}: tensor `{tensor}`: {message}")]
    Tensor {
        /// The file.
        path: PathBuf,
        /// Checkpoint key of the tensor.
        tensor: String,
        /// What is wrong.
        message: String,
    },
    /// A tensor that fills a parameter holds NaN or an infinity, as stored or after the cast
    /// to the model's dtype (an f32 value beyond f16's range becomes infinite in f16).
    #[error("weights file {path}: tensor `{tensor}` holds {value} at element {index} (as {dtype})")]
    NonFinite {
        /// The file.
        path: PathBuf,
        /// Checkpoint key of the tensor.
        tensor: String,
        /// Position of the first such element, in C order.
        index: usize,
        /// The value (`NaN`, `inf`, `-inf`).
        value: String,
        /// The dtype the value was found in.
        dtype: String,
    },
    /// Two checkpoint keys map to the same parameter (e.g. a key with and without a prefix).
    #[error("weights file {path}: tensors `{first}` and `{second}` both map to parameter `{parameter}`")]
    Duplicate {
        /// The file.
        path: PathBuf,
        /// The module path of the parameter.
        parameter: String,
        /// The first checkpoint key.
        first: String,
        /// The second checkpoint key.
        second: String,
    },
    /// The module has a parameter this crate cannot fill, or a dtype it cannot cast to (a
    /// programming error in a model crate).
    #[error("cannot load `{parameter}`: {reason}")]
    Unsupported {
        /// The module path of the parameter, or the dtype.
        parameter: String,
        /// Why.
        reason: String,
    },
    /// A config describes a model with more than twice the parameter values the weights file
    /// holds, so the model is not built (it would be a large allocation bound to fail to load).
    #[error(
        "{config}: `{field}` = {value} describes a model of {required} parameter values, but the weights \
         file {weights} holds only {held}"
    )]
    ConfigExceedsWeights {
        /// The config file.
        config: PathBuf,
        /// The weights file.
        weights: PathBuf,
        /// The size field that contributes most to the excess.
        field: String,
        /// Its value.
        value: usize,
        /// The parameter values the config implies (`u64::MAX` when the count overflows).
        required: u64,
        /// The values the weights file holds (all tensors together).
        held: u64,
    },
    /// A named tensor is absent (reading single tensors).
    #[error("weights file {path} has no tensor `{name}`")]
    NoTensor {
        /// The file.
        path: PathBuf,
        /// The requested name.
        name: String,
    },
    /// No weights file of a supported format was found in a folder.
    #[error("no weights file in {dir}: looked for {}", candidates.join(", "))]
    NotFound {
        /// The folder searched.
        dir: PathBuf,
        /// File names tried, in order of preference.
        candidates: Vec<String>,
    },
    /// A key-map rule is not a valid regular expression (a programming error in a model crate).
    #[error("invalid key-map pattern `{pattern}`: {message}")]
    Pattern {
        /// The rule.
        pattern: String,
        /// The regex error.
        message: String,
    },
}

fn list(keys: &[String]) -> String {
    const SHOWN: usize = 8;
    let mut s = keys.iter().take(SHOWN).cloned().collect::<Vec<_>>().join(", ");
    if keys.len() > SHOWN {
        s.push_str(&format!(", … ({} more)", keys.len() - SHOWN));
    }
    s
}

fn list_missing(missing: &[(String, Vec<usize>)]) -> String {
    list(&missing.iter().map(|(k, s)| format!("`{k}` {s:?}")).collect::<Vec<_>>())
}

impl WeightsError {
    /// Names the file of a [`FormatError`].
    pub(crate) fn from_format(path: &Path, error: FormatError) -> Self {
        match error {
            FormatError::File(message) => Self::Format { path: path.into(), message },
            FormatError::Tensor { key, message } => Self::Tensor { path: path.into(), tensor: key, message },
            FormatError::Io(source) => Self::Io { path: path.into(), source },
        }
    }
}
