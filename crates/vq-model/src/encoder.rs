//! diffusers' `Encoder` (`diffusers/models/autoencoders/vae.py`) with `double_z=False`, as
//! `VQModel` builds it.

use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{GroupNorm, PaddingConfig2d};
use burn::tensor::activation::silu;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use vq_kernels::KernelBackend;

use crate::activation::Activation;
use crate::blocks::{DownEncoderBlock2d, DownEncoderBlock2dConfig, UNetMidBlock2d, UNetMidBlock2dConfig};
use crate::config::DownBlockType;
use crate::norm::{group_norm, group_norm_config};

/// Configuration of an [`Encoder`].
#[derive(Config, Debug)]
pub struct EncoderConfig {
    /// Image channels.
    pub in_channels: usize,
    /// Output channels (`latent_channels`).
    pub out_channels: usize,
    /// Block types, highest resolution first.
    pub down_blocks: Vec<DownBlockType>,
    /// Channels per block, highest resolution first.
    pub block_out_channels: Vec<usize>,
    /// Resnets per block.
    pub layers_per_block: usize,
    /// GroupNorm groups.
    pub num_groups: usize,
    /// Resnet activation.
    pub activation: Activation,
    /// Whether the mid block has its attention layer.
    pub mid_block_attention: bool,
}

/// `conv_in` → down blocks (all but the last halve the resolution) → mid block →
/// GroupNorm → SiLU → `conv_out`.
#[derive(Module, Debug)]
pub struct Encoder<B: Backend> {
    /// `encoder.conv_in`: 3×3, image → first block channels.
    pub conv_in: Conv2d<B>,
    /// `encoder.down_blocks.I`.
    pub down_blocks: Vec<DownEncoderBlock2d<B>>,
    /// `encoder.mid_block`.
    pub mid_block: UNetMidBlock2d<B>,
    /// `encoder.conv_norm_out`: GroupNorm, eps 1e−6.
    pub conv_norm_out: GroupNorm<B>,
    /// `encoder.conv_out`: 3×3, last block channels → `latent_channels`.
    pub conv_out: Conv2d<B>,
}

impl EncoderConfig {
    /// Initializes the encoder with random weights.
    ///
    /// Panics when `down_blocks` and `block_out_channels` differ in length or are empty
    /// ([`VQModelConfig::validate`](crate::VQModelConfig::validate) rejects such configs).
    pub fn init<B: Backend>(&self, device: &B::Device) -> Encoder<B> {
        let channels = &self.block_out_channels;
        assert!(
            !channels.is_empty() && self.down_blocks.len() == channels.len(),
            "Encoder: one down block per block_out_channels entry is needed"
        );
        let last = channels.len() - 1;
        let down_blocks = self
            .down_blocks
            .iter()
            .enumerate()
            .map(|(i, block)| {
                let in_channels = channels[i.saturating_sub(1)];
                DownEncoderBlock2dConfig::new(
                    in_channels,
                    channels[i],
                    self.layers_per_block,
                    self.num_groups,
                    self.activation,
                    block.has_attention(),
                    i != last,
                )
                .init(device)
            })
            .collect();
        let conv3 =
            |i, o| Conv2dConfig::new([i, o], [3, 3]).with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1)).init(device);
        Encoder {
            conv_in: conv3(self.in_channels, channels[0]),
            down_blocks,
            mid_block: UNetMidBlock2dConfig::new(
                channels[last],
                self.num_groups,
                self.activation,
                self.mid_block_attention,
            )
            .init(device),
            conv_norm_out: group_norm_config(self.num_groups, channels[last]).init(device),
            conv_out: conv3(channels[last], self.out_channels),
        }
    }
}

impl<B: KernelBackend> Encoder<B> {
    /// # Shapes
    ///
    /// - input: `[batch, in_channels, height, width]`
    /// - output: `[batch, latent_channels, height / f, width / f]` with `f = 2^(levels − 1)`
    ///   (sizes rounded as in [`Downsample2d`](crate::Downsample2d))
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let mut x = B::convolution(&self.conv_in, x);
        for block in &self.down_blocks {
            x = block.forward(x);
        }
        let x = self.mid_block.forward(x);
        // diffusers' `conv_act` is always SiLU, whatever `act_fn` says.
        let x = silu(group_norm(&self.conv_norm_out, x));
        B::convolution(&self.conv_out, x)
    }
}
