//! The crate's typed error.

/// Errors of configuring the dataset and reading captions.
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
}
