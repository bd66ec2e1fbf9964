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
//! | [`class_log_softmax`](KernelBackend::class_log_softmax) | in f64 where the backend has it, returned as f32 | default (f64) | in f32 (graphics APIs define `exp`, `log` up to 32 bits) | default |
//! | [`convolution`](KernelBackend::convolution) | the backend's convolution | default | default | over NdArray, Flex: [`portable::conv2d_gemm`] (fast gradients); else default |
//! | [`split_batch`](KernelBackend::split_batch) | the whole batch at once | one part per core, on threads | default | default |
//! | [`transformer_engine`](KernelBackend::transformer_engine) (the discrete transformer's whole forward) | none: the model's tensor ops | none | CUDA with the feature `cuda-engine`: the CUDA engine (below); wgpu: none | none |
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
//! # The transformer engine
//!
//! [`KernelBackend::transformer_engine`] hands a backend the discrete transformer's whole forward
//! for one generation ([`engine`]: a plain [`TransformerDescription`] of sizes, weights and text
//! in, a [`TransformerEngine`] out). `transformer2d`'s `Transformer2DModel::prepare` asks for one;
//! without one the model runs its tensor ops, which stay the reference everywhere.
//!
//! An engine follows an [`engine::Plan`] built and checked on the CPU: the forward as 8 + 4·batch
//! matrix products and 6 kernels per block (ITHQ, batch 2: 577 products, 219 kernels, 4.6 TFLOP)
//! with every shape, leading dimension, stride, epilogue and launch size, and every buffer's
//! lifetime and place in a constants arena (per generation: every AdaLayerNorm's scale and shift
//! for all timesteps, every block's cross-attention keys and values; ITHQ batch 2 in f16: 75 MB)
//! and a workspace reused across blocks (90 MB). Residual additions are products that accumulate
//! into the hidden state; attention is two strided-batched products per sample around a softmax
//! kernel, its score rows padded to 8 elements. [`engine::HostExecutor`] runs a plan on the CPU
//! with the plan's storage types: the tests hold it against the tensor ops (f32: within 2e-5 on
//! log-probabilities, rounding of another summation order; a wrong stride or an early reuse moves
//! them by O(1)), and against the CUDA kernels themselves compiled for the host and run with a
//! thread per CUDA thread (`engine/emulation`, run by CI).
//!
//! **The CUDA engine** (feature `cuda-engine`, on in every CUDA build of `vq-pipeline`): on burn's
//! CUDA backend, fused (`Fusion<CubeBackend<CudaRuntime, …>>`, where it runs as one custom
//! operation of the fusion stream) or not. Products through cuBLASLt (f16/bf16/f32 storage, f32
//! accumulation, bias epilogues; descriptors, layouts and heuristics made once per engine); the
//! other kernels in CUDA C (`engine/kernels.cu`) compiled by NVRTC for the device and cached on
//! disk as CUBIN (`$VQ_KERNEL_CACHE`, else `~/.cache/vq-diffusion-rs/kernels`); the prologue run
//! once; every forward captured once into a CUDA graph on the engine's own stream and replayed;
//! weights read in place from burn's buffers. burn's stream is synchronised before each forward
//! reads the class ids and the engine's stream before the result is handed back. CUDA, NVRTC and
//! cuBLASLt are loaded at run time (`libcublasLt.so.13` must be on the library path).
//!
//! Turning it off: `PrepareOptions::engine` / `GenerateRequest::engine` = [`EngineChoice::Off`],
//! `vq-diffusion generate --engine off`, `xtask bench --engine off`. [`EngineChoice::Auto`] (the
//! default) falls back to the tensor ops with a warning where the engine fails to start.
//!
//! Measured on an H100 (BENCHMARKS.md "GPU speed"): the forward, whole generations beside
//! diffusers, start-up with cold and warm kernel caches, and f32 parity with diffusers' log
//! p(x0) (below 1e-6).
//!
//! # Process-wide set-up
//!
//! [`setup`] holds what only a program's `main` should decide: the CPU allocator policy
//! ([`setup::keep_freed_memory`]), what a panic on a thread nobody waits for ends
//! ([`setup::exit_on_panic`]) and wgpu on OpenGL.

mod backend;
mod backends;
pub mod cpu;
pub mod engine;
pub mod portable;
pub mod setup;

pub use backend::{AttentionOptions, KernelBackend};
pub use engine::{EngineChoice, EngineError, TransformerDescription, TransformerEngine};
