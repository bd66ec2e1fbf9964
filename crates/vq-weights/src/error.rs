use std::path::PathBuf;

/// Why a checkpoint could not be loaded. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    /// The file does not exist or cannot be read.
    #[error("cannot read weights file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating-system error.
        source: std::io::Error,
    },
    /// The file exists but is not a valid safetensors / PyTorch checkpoint (corrupt, truncated,
    /// unsupported tensor type).
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
