//! How the vq-diffusion-rs models compute on each burn backend.
//!
//! The model crates (`clip-text`, `transformer2d`, `vq-model`) say *what* they compute in burn
//! tensor ops. Where an operation has more than one implementation worth having — because one
//! backend computes it much faster another way — they call a method of the backend extension
//! [`KernelBackend`] instead, and this crate decides *how*. Every method has a default written in
//! plain tensor ops ([`portable`]), correct on every backend, `Autodiff<…>` included.
//!
//! # Operations and their implementations
//!
//! | operation | default ([`portable`]) | NdArray, Flex (CPU) | CubeCL: CUDA, wgpu (`Fusion` or not) | `Autodiff<B>` |
//! |---|---|---|---|---|
//! | [`multi_head_attention`](KernelBackend::multi_head_attention) (self and cross, any head width, optional causal and padding masks) | burn's fused attention op | unmasked f32: [`cpu::host_attention`] (gemm products on the projections' layout, vectorised softmax, heads on threads); other unmasked: [`cpu::threaded_attention_op`]; masked: default | unmasked: [`portable::composed_attention`] (tensor ops that kernel fusion merges); masked: default | default |
//! | [`quick_gelu`](KernelBackend::quick_gelu) | `x · σ(1.702 x)` in tensor ops | f32: [`cpu::host_quick_gelu`] (one vectorised pass on the cores) | default | default |
//! | [`ada_layer_norm`](KernelBackend::ada_layer_norm) | LayerNorm without affine, `· (1 + scale) + shift` | default | default | default |
//! | [`class_log_softmax`](KernelBackend::class_log_softmax) | in f64 where the backend has it, returned as f32 | default | default | default |
//! | [`convolution`](KernelBackend::convolution) | the backend's convolution | default | default | over NdArray, Flex: [`portable::conv2d_gemm`] (fast gradients); else default |
//! | [`split_batch`](KernelBackend::split_batch) | the whole batch at once | one part per core, on threads | default | default |
//!
//! The CPU paths are chosen at run time only by what the data allows (f32 values, more than one
//! core); their loops are compiled for every [`cpu::VectorUnit`] and give the same bits on each
//! (the tests run every unit the machine has, and CI runs them again under an emulated AVX2-only
//! and baseline CPU). NaN inputs give NaN outputs on every unit.
//!
//! # Giving a backend a faster implementation
//!
//! Implement the trait for the backend (this crate does it for burn's backends behind the cargo
//! features `ndarray`, `flex`, `cubecl`, `fusion` and `autodiff`) and override the methods it
//! computes faster; the others keep their defaults. A backend this crate does not know needs one
//! line, `impl KernelBackend for MyBackend {}`, from a crate that owns either the trait or the
//! backend.
//!
//! ```
//! use burn::backend::NdArray;
//! use burn::tensor::{Distribution, Tensor};
//! use vq_kernels::{AttentionOptions, KernelBackend};
//!
//! let device = Default::default();
//! // Two heads of width 4, 3 queries, 5 keys.
//! let q = Tensor::<NdArray, 3>::random([1, 3, 8], Distribution::Default, &device);
//! let k = Tensor::<NdArray, 3>::random([1, 5, 8], Distribution::Default, &device);
//! let out = NdArray::multi_head_attention(q, k.clone(), k, AttentionOptions::heads(2));
//! assert_eq!(out.dims(), [1, 3, 8]);
//! ```
//!
//! # Process-wide set-up
//!
//! [`setup`] holds what only a program's `main` should decide: the CPU allocator policy
//! ([`setup::keep_freed_memory`]) and wgpu on OpenGL.

mod backend;
mod backends;
pub mod cpu;
pub mod engine;
pub mod portable;
pub mod setup;

pub use backend::{AttentionOptions, KernelBackend};
pub use engine::{EngineChoice, EngineError, TransformerDescription, TransformerEngine};
