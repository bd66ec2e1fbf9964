//! VQ-Diffusion's discrete diffusion scheduler on burn, numerically equal to diffusers 0.42.1's
//! `VQDiffusionScheduler` (`diffusers/schedulers/scheduling_vq_diffusion.py`), plus the sampling
//! helpers of `VQDiffusionPipeline` (`diffusers/pipelines/deprecated/vq_diffusion/pipeline_vq_diffusion.py`):
//! classifier-free guidance, truncation and the −70 clamp. Beyond diffusers: Improved VQ-Diffusion's
//! reveal sampler with the purity prior ([`reveal_step`]); the forward process q(x_t | x_0)
//! ([`VQDiffusionScheduler::q_sample`]), which starts image variations; and fast sampling over a
//! strided chain ([`strided_timesteps`], [`VQDiffusionScheduler::step_to`]) with the original's
//! one-step jump or the exact multi-step posterior ([`SkipPosterior`],
//! [`VQDiffusionScheduler::q_posterior_jump`]).
//!
//! Paper: Gu et al., *Vector Quantized Diffusion Model for Text-to-Image Synthesis*,
//! [arXiv:2111.14822](https://arxiv.org/abs/2111.14822) — the mask-and-replace forward process
//! (§4.1) and the posterior of eq. 11.
//!
//! Tensors are `[batch, classes, pixels]` with classes on dimension 1: K real classes and, where
//! present, the mask class K as the last row. Samples are `[batch, pixels]` Int ids.
//!
//! Seed-for-seed agreement with diffusers on CPU comes from [`TorchGenerator`], an MT19937 stream
//! identical to `torch.Generator("cpu").manual_seed(seed)`; [`DeviceNoise`] draws on the device
//! instead (fast, different stream); [`FixedUniforms`] replays given uniforms.
//!
//! # Example
//!
//! ```
//! use burn::backend::NdArray;
//! use burn::tensor::{activation::log_softmax, Distribution, Int, Tensor};
//! use vq_scheduler::{
//!     clamp_log_probs, truncate, TorchGenerator, VQDiffusionSchedulerConfig,
//! };
//!
//! type B = NdArray<f32>;
//! let device = Default::default();
//! // 8 real classes + the mask class; 4 latent pixels; one image.
//! let mut scheduler = VQDiffusionSchedulerConfig::new(9).init::<B>(&device)?;
//! scheduler.set_timesteps(10)?;
//! let (k, pixels) = (scheduler.num_classes(), 4);
//!
//! let mut generator = TorchGenerator::new(0); // = torch.Generator("cpu").manual_seed(0)
//! let mut sample = Tensor::<B, 2, Int>::full([1, pixels], k as i64, &device); // all masked
//! for &t in scheduler.timesteps() {
//!     // A stand-in for the transformer's log p(x_0 | x_t), shape [1, K, pixels].
//!     let logits = Tensor::<B, 3>::random([1, k, pixels], Distribution::Normal(0.0, 1.0), &device);
//!     let log_p_x_0 = clamp_log_probs(truncate(log_softmax(logits, 1), 0.86));
//!     sample = scheduler.step(log_p_x_0, t, sample, &mut generator);
//! }
//! // After the t = 0 step no pixel is masked.
//! let ids = sample.into_data().convert::<i64>().into_vec::<i64>().unwrap();
//! assert!(ids.iter().all(|&id| (0..k as i64).contains(&id)));
//! # Ok::<(), vq_scheduler::SchedulerError>(())
//! ```

mod config;
mod device_truncation;
mod error;
mod forward;
mod guidance;
mod gumbel;
mod logspace;
mod mt19937;
mod noise;
mod reveal;
mod schedule;
mod scheduler;
mod skip;
mod truncation;

pub use config::VQDiffusionSchedulerConfig;
pub use device_truncation::{truncate_on_device, BISECTION_STEPS};
pub use error::SchedulerError;
pub use guidance::{clamp_log_probs, classifier_free_guidance, LOG_PROB_FLOOR};
pub use gumbel::{gumbel_max_sample, gumbel_noise};
pub use logspace::{index_to_log_onehot, log_add_exp_scalar, log_sum_exp_classes, LOG_ONEHOT_ZERO};
pub use mt19937::{Mt19937, TorchGenerator};
pub use noise::{DeviceNoise, FixedUniforms, UniformSource};
pub use reveal::{reveal_count, reveal_step, RevealOrder};
pub use schedule::{DeviceScheduleTables, ScheduleProbabilities, ScheduleTables};
pub use scheduler::VQDiffusionScheduler;
pub use skip::{jump_probabilities, strided_timesteps, SkipPosterior};
pub use truncation::{truncate, truncation_keep_mask};
