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
//!
//! # Editing a picture, and fast sampling
//!
//! Beyond diffusers: inpainting ([`GenerateRequest::with_mask`]: the masked latent pixels are drawn
//! anew, every other one keeps its token exactly), image variations
//! ([`GenerateRequest::with_strength`]: the picture's tokens are noised forward to timestep
//! ⌊s·T⌋ − 1 and denoised from there), both on tokens from
//! [`VQDiffusionPipeline::encode_images`]; and fast sampling over a strided chain
//! ([`GenerateRequest::with_skip`], [`SkipPosterior`]). `docs/editing-and-fast-sampling.md` in the
//! repository has the details and the choices.
//!
//! ```no_run
//! use burn::backend::NdArray;
//! use vq_pipeline::{GenerateRequest, VQDiffusionPipeline};
//!
//! let device = Default::default();
//! let pipeline = VQDiffusionPipeline::<NdArray>::from_dir("models/shapes".as_ref(), None, &device)?;
//! let picture = image::open("in.png").unwrap().to_rgb8(); // pipeline.image_size(): 64 × 64 here
//! let mask = image::open("mask.png").unwrap().to_luma8(); // white: draw anew, black: keep
//! let request = GenerateRequest::new(["a small green square in the center on a yellow background"])
//!     .with_guidance_scale(3.0)
//!     .with_init_tokens(pipeline.encode_images(&[picture])?)
//!     .with_mask(vec![pipeline.latent_mask(&mask)?])
//!     .with_skip(4); // 11 network calls instead of 50
//! pipeline.generate(&request)?.rgb8()[0].save("out.png").unwrap();
//! # Ok::<(), vq_pipeline::PipelineError>(())
//! ```

mod batch;
mod components;
mod defaults;
mod describe;
mod edit;
mod error;
mod generate;
pub mod hub;
pub mod ithq;
mod metadata;
mod output;
pub mod picture;
mod pipeline;
mod precision;
mod prompt;
mod request;
mod schedule;
mod vocabulary;
mod vqvae;

pub use batch::{BatchKey, PerRequestNoise};
pub use components::{read_model_index, NegativeEmbeddings, NegativeEmbeddingsConfig, COMPONENTS};
pub use defaults::{SamplingDefaults, SAMPLING_DEFAULTS_FILE};
pub use describe::ModelDescription;
pub use edit::{check_strength, KeptRegion};
pub use error::PipelineError;
pub use generate::StepState;
pub use metadata::{ImageMetadata, BATCH_PROMPTS};
pub use output::{encode_png, write_png, Generation};
pub use picture::{decode_picture, fit_image, read_picture};
pub use pipeline::{LoadOptions, PipelineConfigs, VQDiffusionPipeline};
pub use precision::{set_precision, Precision};
pub use prompt::{l2_normalize_last, PromptEmbeddings};
pub use request::{
    check_guidance_scale, check_purity_weight, check_truncation_rate, GenerateRequest, NoiseSource, Sampler,
    TruncationMode,
};
pub use vocabulary::{prompt_words, Vocabulary, VOCABULARY_FILE};
pub use vq_kernels::{EngineChoice, KernelBackend};
pub use vq_scheduler::{RevealOrder, SkipPosterior};

pub use burn;
