//! Shared training machinery: the run configuration and the loop shell both stages run in
//! ([`RunConfig`], [`run_loop`]), batches rendered on CPU threads, the learning-rate schedule,
//! loss curves and progress, checkpoints, weight EMA and the PyTorch-layout safetensors export.

pub mod batches;
pub mod checkpoint;
pub mod export;
pub mod log;
pub mod parallel;
pub mod params;
mod run_config;
mod run_loop;
pub mod schedule;
#[cfg(test)]
pub(crate) mod test_support;

pub use run_config::RunConfig;
pub use run_loop::{run_loop, BatchSource, Finished, Stage};
