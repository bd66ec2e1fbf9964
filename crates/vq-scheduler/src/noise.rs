//! Sources of the uniform noise behind the Gumbel-max sampling of [`crate::VQDiffusionScheduler::step`].

use std::collections::VecDeque;

use burn::tensor::{backend::Backend, DType, Distribution, Tensor, TensorData};

use crate::TorchGenerator;

/// Supplies the uniforms u ∈ [0, 1) of one scheduler step.
///
/// `step` calls [`uniform`](Self::uniform) exactly once per call, with shape
/// `[batch, K + 1, pixels]` for t > 0 and `[batch, K, pixels]` at t = 0 — the same draws, in the
/// same order, as diffusers' `torch.rand(logits.shape, generator=...)`.
pub trait UniformSource<B: Backend> {
    /// The next uniforms of `shape`, as f32 on `device`.
    fn uniform(&mut self, shape: [usize; 3], device: &B::Device) -> Tensor<B, 3>;
}

/// Seed-for-seed torch compatibility: fills the tensor on the host from the MT19937 stream (row
/// major, continuing across steps), then uploads it.
///
/// Cost: one full-size ITHQ step draws 4097 · 1024 ≈ 4.2 M uniforms per image.
impl<B: Backend> UniformSource<B> for TorchGenerator {
    fn uniform(&mut self, shape: [usize; 3], device: &B::Device) -> Tensor<B, 3> {
        let values = self.uniform_vec(shape.iter().product());
        Tensor::from_data(TensorData::new(values, shape), (device, DType::F32))
    }
}

/// Uniforms drawn on the device with burn's own generator
/// (`Tensor::random(shape, Distribution::Uniform(0, 1))`): fast, no host transfer, but a
/// different stream from torch's. Seed it with `B::seed(&device, seed)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct DeviceNoise;

impl<B: Backend> UniformSource<B> for DeviceNoise {
    fn uniform(&mut self, shape: [usize; 3], device: &B::Device) -> Tensor<B, 3> {
        Tensor::random(shape, Distribution::Uniform(0.0, 1.0), (device, DType::F32))
    }
}

/// Replays given uniform tensors in order (teacher forcing: e.g. the uniforms diffusers drew,
/// read from a fixture).
#[derive(Debug, Clone)]
pub struct FixedUniforms<B: Backend> {
    queue: VecDeque<Tensor<B, 3>>,
}

impl<B: Backend> FixedUniforms<B> {
    /// Replays `uniforms` front to back, one tensor per request.
    pub fn new(uniforms: impl IntoIterator<Item = Tensor<B, 3>>) -> Self {
        Self { queue: uniforms.into_iter().collect() }
    }

    /// Number of tensors not yet replayed.
    pub fn remaining(&self) -> usize {
        self.queue.len()
    }
}

impl<B: Backend> UniformSource<B> for FixedUniforms<B> {
    /// # Panics
    /// If no tensor is left or the next one's shape is not `shape`.
    fn uniform(&mut self, shape: [usize; 3], device: &B::Device) -> Tensor<B, 3> {
        let next = self.queue.pop_front().expect("FixedUniforms: asked for more uniform tensors than were given");
        assert_eq!(
            next.dims(),
            shape,
            "FixedUniforms: the next given uniform tensor has shape {:?}, the step needs {:?}",
            next.dims(),
            shape
        );
        next.to_device(device)
    }
}
