//! `ResnetBlock2D` without time embedding (`diffusers/models/resnet.py`), as the VQ-VAE uses it.

use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{GroupNorm, PaddingConfig2d};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use vq_kernels::KernelBackend;

use crate::activation::Activation;
use crate::norm::{group_norm, group_norm_config};

/// Configuration of a [`ResnetBlock2d`].
#[derive(Config, Debug)]
pub struct ResnetBlock2dConfig {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels; a 1×1 `conv_shortcut` is added when they differ from the input's.
    pub out_channels: usize,
    /// Groups of both GroupNorms.
    pub num_groups: usize,
    /// Activation after each GroupNorm.
    #[config(default = "Activation::Silu")]
    pub activation: Activation,
}

/// `out = shortcut(x) + conv2(act(norm2(conv1(act(norm1(x))))))`, 3×3 convolutions with
/// padding 1, GroupNorm eps 1e−6, `output_scale_factor` 1, dropout 0.
#[derive(Module, Debug)]
pub struct ResnetBlock2d<B: Backend> {
    /// `…resnets.N.norm1`: GroupNorm over the input channels.
    pub norm1: GroupNorm<B>,
    /// `…resnets.N.conv1`: 3×3, input → output channels.
    pub conv1: Conv2d<B>,
    /// `…resnets.N.norm2`: GroupNorm over the output channels.
    pub norm2: GroupNorm<B>,
    /// `…resnets.N.conv2`: 3×3, output → output channels.
    pub conv2: Conv2d<B>,
    /// `…resnets.N.conv_shortcut`: 1×1 with bias, present iff the channel count changes.
    pub conv_shortcut: Option<Conv2d<B>>,
    /// The config's `act_fn`.
    pub activation: Activation,
}

impl ResnetBlock2dConfig {
    /// Initializes the block with random weights.
    pub fn init<B: Backend>(&self, device: &B::Device) -> ResnetBlock2d<B> {
        let conv3 = |i, o| Conv2dConfig::new([i, o], [3, 3]).with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1));
        let conv_shortcut = (self.in_channels != self.out_channels)
            .then(|| Conv2dConfig::new([self.in_channels, self.out_channels], [1, 1]).init(device));
        ResnetBlock2d {
            norm1: group_norm_config(self.num_groups, self.in_channels).init(device),
            conv1: conv3(self.in_channels, self.out_channels).init(device),
            norm2: group_norm_config(self.num_groups, self.out_channels).init(device),
            conv2: conv3(self.out_channels, self.out_channels).init(device),
            conv_shortcut,
            activation: self.activation,
        }
    }
}

impl<B: KernelBackend> ResnetBlock2d<B> {
    /// # Shapes
    ///
    /// - input: `[batch, in_channels, height, width]`
    /// - output: `[batch, out_channels, height, width]`
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let h = self.activation.forward(group_norm(&self.norm1, x.clone()));
        let h = B::convolution(&self.conv1, h);
        let h = self.activation.forward(group_norm(&self.norm2, h));
        let h = B::convolution(&self.conv2, h);
        let shortcut = match &self.conv_shortcut {
            Some(conv) => B::convolution(conv, x),
            None => x,
        };
        shortcut + h
    }
}
