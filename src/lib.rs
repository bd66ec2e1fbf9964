//! vq-diffusion-rs: VQ-Diffusion text-to-image on burn. This package re-exports the
//! workspace crates and holds the workspace-level parity tests and the examples; depend on
//! the crate you need directly (`vq-pipeline`, `clip-text`, `transformer2d`, `vq-model`,
//! `vq-scheduler`).

pub use clip_text;
pub use transformer2d;
pub use vq_model;
pub use vq_pipeline;
pub use vq_scheduler;
