//! `Downsample2D` and `Upsample2D` with `use_conv=True` (`diffusers/models/downsampling.py`,
//! `diffusers/models/upsampling.py`).

use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::PaddingConfig2d;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use vq_kernels::KernelBackend;

/// Configuration of a [`Downsample2d`].
#[derive(Config, Debug)]
pub struct Downsample2dConfig {
    /// Input and output channels.
    pub channels: usize,
}

/// Halves the resolution: zero-pad right and bottom by one (`F.pad(x, (0, 1, 0, 1))`), then a
/// 3×3 convolution with stride 2 and no further padding, i.e. output size `⌊(n − 2)/2⌋ + 1`
/// (`n/2` for even `n`).
#[derive(Module, Debug)]
pub struct Downsample2d<B: Backend> {
    /// `…downsamplers.0.conv`: 3×3, stride 2, padding (top 0, left 0, bottom 1, right 1).
    pub conv: Conv2d<B>,
}

impl Downsample2dConfig {
    /// Initializes the layer with random weights.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Downsample2d<B> {
        let conv = Conv2dConfig::new([self.channels, self.channels], [3, 3])
            .with_stride([2, 2])
            // burn's order is (top, left, bottom, right); torch's F.pad lists (left, right, top, bottom).
            .with_padding(PaddingConfig2d::Explicit(0, 0, 1, 1));
        Downsample2d { conv: conv.init(device) }
    }
}

impl<B: KernelBackend> Downsample2d<B> {
    /// # Shapes
    ///
    /// - input: `[batch, channels, height, width]`
    /// - output: `[batch, channels, ⌊(height − 2)/2⌋ + 1, ⌊(width − 2)/2⌋ + 1]`
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        B::convolution(&self.conv, x)
    }
}

/// Configuration of an [`Upsample2d`].
#[derive(Config, Debug)]
pub struct Upsample2dConfig {
    /// Input and output channels.
    pub channels: usize,
}

/// Doubles the resolution: nearest-neighbour ×2, then a 3×3 convolution with padding 1.
#[derive(Module, Debug)]
pub struct Upsample2d<B: Backend> {
    /// `…upsamplers.0.conv`: 3×3, padding 1.
    pub conv: Conv2d<B>,
}

impl Upsample2dConfig {
    /// Initializes the layer with random weights.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Upsample2d<B> {
        let conv = Conv2dConfig::new([self.channels, self.channels], [3, 3])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1));
        Upsample2d { conv: conv.init(device) }
    }
}

impl<B: KernelBackend> Upsample2d<B> {
    /// # Shapes
    ///
    /// - input: `[batch, channels, height, width]`
    /// - output: `[batch, channels, 2·height, 2·width]`
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        B::convolution(&self.conv, upsample_nearest_2x(x))
    }
}

/// `F.interpolate(x, scale_factor=2, mode="nearest")`: output pixel `(y, x)` copies input pixel
/// `(⌊y/2⌋, ⌊x/2⌋)` — written as a broadcast (each pixel expanded to a 2 × 2 block) rather than
/// burn's `interpolate`, the same copies forward; backward, a sum over each block. Why: on the
/// autotuned CUDA build (burn 0.21) the gradient through `interpolate`'s nearest mode came back
/// wrong inside the decoder while every convolution's gradients checked right alone, and
/// stage-1 training diverged (`xtask grad-check` finds such faults).
///
/// # Shapes
///
/// - input: `[batch, channels, height, width]`
/// - output: `[batch, channels, 2·height, 2·width]`
pub fn upsample_nearest_2x<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    let [batch, channels, height, width] = x.dims();
    // [b, c, h, w] -> [b, c, h, 1, w, 1] -> broadcast [b, c, h, 2, w, 2] -> [b, c, 2h, 2w]
    let blocks = x.reshape([batch, channels, height, 1, width, 1]).expand([batch, channels, height, 2, width, 2]);
    blocks.reshape([batch, channels, 2 * height, 2 * width])
}
