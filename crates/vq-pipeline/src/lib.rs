//! VQ-Diffusion text-to-image on burn: diffusers' `VQDiffusionPipeline`
//! (`pipelines/deprecated/vq_diffusion/pipeline_vq_diffusion.py`, diffusers 0.42.1), seed for
//! seed: with [`NoiseSource::Torch`] a seed gives exactly the tokens diffusers gives with
//! `torch.Generator("cpu").manual_seed(seed)`.
//!
//! Paper: Gu et al., *Vector Quantized Diffusion Model for Text-to-Image Synthesis*,
//! [arXiv:2111.14822](https://arxiv.org/abs/2111.14822).
//!
//! ```no_run
//! use burn::backend::NdArray;
//! use vq_pipeline::{GenerateRequest, LoadOptions, NoiseSource, VQDiffusionPipeline};
//!
//! let device = Default::default();
//! let pipeline = VQDiffusionPipeline::<NdArray>::from_pretrained(
//!     "microsoft/vq-diffusion-ithq",
//!     &LoadOptions::default(),
//!     &device,
//! )?;
//! let request = GenerateRequest::new(["teddy bear playing in the pool"])
//!     .with_noise(NoiseSource::Torch { seed: 0 });
//! let generation = pipeline.generate(&request)?;
//! generation.rgb8()[0].save("teddy.png").unwrap();
//! # Ok::<(), vq_pipeline::PipelineError>(())
//! ```

mod components;
mod defaults;
mod describe;
mod error;
mod generate;
pub mod hub;
pub mod ithq;
mod output;
mod pipeline;
mod precision;
mod prompt;
mod request;
mod vocabulary;

pub use components::{read_model_index, NegativeEmbeddings, NegativeEmbeddingsConfig, COMPONENTS};
pub use defaults::{SamplingDefaults, SAMPLING_DEFAULTS_FILE};
pub use describe::ModelDescription;
pub use error::PipelineError;
pub use generate::StepState;
pub use output::{write_png, Generation};
pub use pipeline::{LoadOptions, PipelineConfigs, VQDiffusionPipeline};
pub use precision::{set_precision, Precision};
pub use prompt::{l2_normalize_last, PromptEmbeddings};
pub use request::{
    check_guidance_scale, check_purity_weight, check_truncation_rate, GenerateRequest, NoiseSource, Sampler,
    TruncationMode,
};
pub use vocabulary::{prompt_words, Vocabulary, VOCABULARY_FILE};
pub use vq_kernels::{EngineChoice, KernelBackend};
pub use vq_scheduler::RevealOrder;

pub use burn;
