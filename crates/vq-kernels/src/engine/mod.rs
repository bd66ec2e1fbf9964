//! Whole-forward engines for the discrete transformer (diffusers' `Transformer2DModel` as
//! VQ-Diffusion runs it): one object that computes a forward pass in few, large steps outside
//! burn's per-operation kernels, built once per generation.
//!
//! A model crate describes its forward in plain data ([`TransformerDescription`]: sizes, weights
//! by checkpoint name, the generation's text embeddings) and asks the backend for an engine
//! through [`KernelBackend::transformer_engine`](crate::KernelBackend::transformer_engine);
//! backends without one answer `None` and the model runs its own tensor ops. An engine follows
//! a [`Plan`]: the list of matrix products and kernels with every shape, stride, launch size and
//! buffer placement, built and checked on the CPU ([`Plan::check`]). [`HostExecutor`] runs a
//! plan on the CPU in f32 arithmetic with the plan's storage types; it is the reference the
//! tests hold the plan against, and [`HostEngine`] puts it behind the engine interface so that
//! the model's engine path is tested on any machine.
//!
//! With the cargo feature `cuda-engine`, burn's CUDA backend (fused or not) has an engine of
//! this crate's own (see the crate documentation).

mod description;
#[cfg(test)]
mod emulation;
mod host;
#[cfg(any(test, feature = "cuda-engine"))]
mod launch;
pub mod plan;
#[cfg(test)]
mod tests;

#[cfg(feature = "cuda-engine")]
pub(crate) mod cuda;

use std::fmt;
use std::str::FromStr;

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor};

pub use description::{
    Activation, Layer, Param, TransformerDescription, TransformerSizes, TransformerWeights, WeightId, WeightTensor,
};
pub use host::{HostEngine, HostExecutor};
pub use plan::{Elem, Plan};

/// A forward pass of the discrete transformer prepared for one generation: its text, batch
/// and sizes are fixed.
pub trait TransformerEngine<B: Backend>: Send + Sync {
    /// log p(x₀ | x_t) for the class ids `latents` at one timestep per sample.
    ///
    /// # Shapes
    ///
    /// - `latents`: `[batch, n]` ids in `0..=K`, the batch and n the engine was built for
    /// - `timesteps`: `batch` timesteps, each below the model's number of timestep embeddings
    /// - output: `[batch, K, n]` f32
    ///
    /// # Panics
    ///
    /// On other shapes, and when the device fails (as burn's own operations do).
    fn forward(&self, latents: Tensor<B, 2, Int>, timesteps: &[usize]) -> Tensor<B, 3>;

    /// What runs, in a few words (for logs and benchmarks).
    fn describe(&self) -> String;

    /// Every step of a forward timed alone (the median of `repeats` runs of it after one whole
    /// forward on the last inputs), in plan order: where a forward's time goes. `None` where the
    /// engine cannot time its steps.
    fn profile(&self, repeats: usize) -> Option<Vec<StepTime>> {
        let _ = repeats;
        None
    }
}

/// The time of one step of a plan ([`TransformerEngine::profile`]).
#[derive(Debug, Clone, PartialEq)]
pub struct StepTime {
    /// The step's label (`block 3 attn1.to_q`, …).
    pub label: String,
    /// Floating-point operations of a product, 0 for a kernel.
    pub flops: f64,
    /// Seconds.
    pub seconds: f64,
}

impl StepTime {
    /// The label without block and sample numbers (`attn1.to_q`, `attn1 scores`): the kind of
    /// step, to add up the steps of every block.
    pub fn kind(&self) -> String {
        let label = self
            .label
            .strip_prefix("block ")
            .map_or(self.label.as_str(), |rest| rest.split_once(' ').map_or(rest, |(_, kind)| kind));
        label.split(" (sample").next().unwrap_or(label).to_string()
    }
}

/// Whether a forward uses the backend's engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EngineChoice {
    /// Never: the model's burn tensor ops.
    Off,
    /// Where the backend has one, else the tensor ops; an engine that fails to start falls back
    /// with a warning.
    #[default]
    Auto,
    /// Always: failing where the backend has none or it fails to start.
    On,
}

impl EngineChoice {
    /// `off`, `auto` or `on`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Auto => "auto",
            Self::On => "on",
        }
    }
}

impl FromStr for EngineChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "off" => Ok(Self::Off),
            "auto" => Ok(Self::Auto),
            "on" => Ok(Self::On),
            other => Err(format!("engine `{other}`: expected off, auto or on")),
        }
    }
}

impl fmt::Display for EngineChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why an engine could not be built.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EngineError {
    /// The description is inconsistent (sizes against weights, dtypes).
    #[error("transformer engine: {0}")]
    Description(String),
    /// The plan failed a check (a bug of the planner).
    #[error("transformer engine plan: {0}")]
    Plan(String),
    /// The backend has no engine for this model (or not in this configuration).
    #[error("no transformer engine: {0}")]
    Unavailable(String),
    /// The device or one of its libraries failed while the engine was built.
    #[error("transformer engine device error: {0}")]
    Device(String),
}
