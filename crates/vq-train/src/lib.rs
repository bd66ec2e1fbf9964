//! Training support for VQ-Diffusion on burn: the data, the evaluator, the objective and the two
//! training stages of a small text-to-image model, exported in the diffusers hub layout.
//!
//! - [`data`]: a procedural captioned shapes dataset (seeded, unlimited, with a held-out split of
//!   unseen attribute combinations);
//! - [`eval`]: a pixel-based evaluator that recovers colour, shape, size and position from an
//!   image and scores it against what the caption asked for;
//! - [`loss`]: the VQ-Diffusion training objective (Gu et al., arXiv 2111.14822, §4 and
//!   appendix) as functions over burn tensors: the mask-and-replace forward sample q(x_t | x_0),
//!   the per-sample posterior, the variational-bound KL, the auxiliary x_0 loss and the
//!   importance sampler of timesteps;
//! - [`text`]: the CLIP tokenizer trimmed to the captions' vocabulary;
//! - [`vqvae`]: stage 1, training the VQ-VAE (EMA codebook, straight-through estimator);
//! - [`diffusion`]: stage 2, training text encoder + transformer, and the export in the
//!   diffusers hub layout;
//! - [`sampling`]: generating held-out prompts with the pipeline and scoring them;
//! - [`train`]: the run configuration and the loop shell both stages share ([`train::RunConfig`],
//!   [`train::run_loop`]), batches on CPU threads, schedules, curves, checkpoints, the safetensors
//!   writer.
//!
//! The `vq-train` binary (crate `vq-train-cli`) runs the stages from the command line; the crate's
//! `README.md` shows the commands, their flags and outputs.
//!
//! # Example
//!
//! ```
//! use vq_train::data::{Dataset, DatasetConfig, Prompt, Split};
//! use vq_train::eval::{evaluate, evaluate_ground_truth};
//!
//! let dataset = Dataset::new(DatasetConfig::default(), 42)?;
//! let sample = dataset.sample(Split::Train, 0); // a pure function of (config, 42, Train, 0)
//! assert_eq!(sample.image.dimensions(), (64, 64));
//! assert_eq!(Prompt::parse(&sample.caption)?, sample.prompt);
//! assert!(evaluate_ground_truth(&sample).all_correct());
//! // The caption asks for less than the truth; the image satisfies it too.
//! assert!(evaluate(&sample.image, &sample.prompt).all_correct());
//! # Ok::<(), vq_train::TrainError>(())
//! ```

pub mod data;
pub mod diffusion;
mod error;
pub mod eval;
pub mod loss;
pub mod rng;
pub mod sampling;
pub mod text;
pub mod train;
pub mod vqvae;

pub use error::TrainError;

use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::Autodiff;
use burn::tensor::backend::AutodiffBackend;
use vq_kernels::KernelBackend;

/// A backend the trainers run on: autodiff over a backend the models run on (see
/// [`vq_kernels`]), e.g. `Autodiff<NdArray>` or `Autodiff<Cuda>`.
pub trait TrainBackend: AutodiffBackend<InnerBackend: KernelBackend> + KernelBackend {}

impl<B: KernelBackend, C: CheckpointStrategy> TrainBackend for Autodiff<B, C> {}
