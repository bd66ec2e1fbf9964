//! The crate's typed error.

/// Errors of configuring the dataset, reading captions, training and exporting.
///
/// Shape mismatches of the loss functions are programmer errors and panic with a message
/// instead (see each function's `# Panics`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TrainError {
    /// A config field holds a value the generator cannot work with.
    #[error("invalid dataset config: `{field}` {reason}")]
    InvalidConfig {
        /// The offending field.
        field: &'static str,
        /// What is wrong with its value.
        reason: String,
    },
    /// A caption does not follow the dataset's grammar
    /// (`a [size] colour shape [position] [and …] [on a colour background]`).
    #[error("cannot parse caption {caption:?}: expected {expected} at word {index}, found {found:?}")]
    Caption {
        /// The caption as given.
        caption: String,
        /// Index of the offending word (0-based; the word count if the caption ended early).
        index: usize,
        /// What the grammar allows there.
        expected: &'static str,
        /// The word found (empty at the end of the caption).
        found: String,
    },
    /// A file or folder could not be read or written.
    #[error("{path}: {message}")]
    Io {
        /// The file or folder.
        path: std::path::PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A model crate refused a config, a checkpoint or an input.
    #[error("{context}: {message}")]
    Model {
        /// What was being done.
        context: String,
        /// The model crate's error.
        message: String,
    },
}

impl TrainError {
    /// A [`TrainError::Io`] for `path`.
    pub fn io(path: &std::path::Path, error: impl std::fmt::Display) -> Self {
        Self::Io { path: path.to_path_buf(), message: error.to_string() }
    }

    /// A [`TrainError::Model`] while doing `context`.
    pub fn model(context: impl Into<String>, error: impl std::fmt::Display) -> Self {
        Self::Model { context: context.into(), message: error.to_string() }
    }
}
