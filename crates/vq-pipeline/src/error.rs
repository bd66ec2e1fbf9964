use std::path::PathBuf;

use crate::hub::HubError;

/// Why a pipeline could not be loaded or could not generate.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The model could not be found or downloaded.
    #[error(transparent)]
    Hub(#[from] HubError),
    /// A file of the pipeline folder could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating-system error.
        source: std::io::Error,
    },
    /// `model_index.json` or a component config is invalid.
    #[error("invalid {path}: {message}")]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The text encoder could not be loaded.
    #[error("text encoder: {0}")]
    TextEncoder(#[from] clip_text::LoadError),
    /// The tokenizer could not be loaded or failed on a prompt.
    #[error("tokenizer: {0}")]
    Tokenizer(#[from] clip_text::TokenizerError),
    /// The transformer could not be loaded.
    #[error("transformer: {0}")]
    Transformer(#[from] transformer2d::LoadError),
    /// The VQ-VAE could not be loaded.
    #[error("vqvae: {0}")]
    VQModel(#[from] vq_model::LoadError),
    /// The VQ-VAE could not take an input (tokens out of its codebook, a misshapen image).
    #[error("vqvae: {0}")]
    VQModelInput(#[from] vq_model::InputError),
    /// The scheduler config is invalid, or the number of steps.
    #[error("scheduler: {0}")]
    Scheduler(#[from] vq_scheduler::SchedulerError),
    /// A weights file could not be loaded.
    #[error(transparent)]
    Weights(#[from] vq_weights::WeightsError),
    /// The components do not fit together (sizes disagree between configs).
    #[error("incompatible components: {0}")]
    Incompatible(String),
    /// An argument of a generation request is out of range.
    #[error("invalid {name}: {message}")]
    InvalidArgument {
        /// The argument, as diffusers names it.
        name: &'static str,
        /// Why it is rejected.
        message: String,
    },
    /// The requested precision is not available on the device.
    #[error("precision {precision} is not supported here: {message}")]
    Precision {
        /// The precision asked for.
        precision: String,
        /// The backend's answer.
        message: String,
    },
    /// The compute device could not be set up.
    #[error("device: {0}")]
    Device(String),
    /// The backend's transformer engine was required and is not available, or failed to start.
    #[error(transparent)]
    Engine(#[from] vq_kernels::EngineError),
    /// The step callback stopped the chain (e.g. its client went away).
    #[error("cancelled after step {step}")]
    Cancelled {
        /// Index of the last step taken, from 0.
        step: usize,
    },
    /// A picture was to be encoded, but the VQ-VAE was loaded without its encoder.
    #[error(
        "{path} has no encoder weights: this model draws pictures but cannot encode them into tokens \
         (editing a picture needs the VQ-VAE's encoder)"
    )]
    NoEncoder {
        /// The VQ-VAE's folder.
        path: PathBuf,
    },
    /// A picture file could not be decoded (unknown format, malformed data, or beyond the
    /// decoding limits of [`crate::picture`]).
    #[error("{path} is not a readable picture: {message}")]
    Picture {
        /// The file.
        path: PathBuf,
        /// The decoder's reason.
        message: String,
    },
    /// A picture or mask does not have the model's size.
    #[error("the {what} is {}×{} pixels, the model's pictures are {}×{}", found.0, found.1, expected.0, expected.1)]
    ImageSize {
        /// `picture` or `mask`.
        what: &'static str,
        /// Its (width, height).
        found: (u32, u32),
        /// The model's (width, height).
        expected: (u32, u32),
    },
    /// An image could not be written.
    #[error("cannot write {path}: {message}")]
    Output {
        /// The file.
        path: PathBuf,
        /// What failed.
        message: String,
    },
}

impl PipelineError {
    pub(crate) fn invalid(name: &'static str, message: impl Into<String>) -> Self {
        Self::InvalidArgument { name, message: message.into() }
    }
}
