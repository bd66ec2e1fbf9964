//! Shared training machinery: batches rendered on CPU threads, the learning-rate schedule,
//! loss curves and progress, checkpoints, weight EMA and the PyTorch-layout safetensors export.

pub mod batches;
pub mod checkpoint;
pub mod export;
pub mod log;
pub mod parallel;
pub mod params;
pub mod schedule;
#[cfg(test)]
pub(crate) mod test_support;
