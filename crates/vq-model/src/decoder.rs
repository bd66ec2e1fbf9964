//! diffusers' `Decoder` (`diffusers/models/autoencoders/vae.py`) with `norm_type="group"`.

use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{GroupNorm, PaddingConfig2d};
use burn::tensor::activation::silu;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use vq_kernels::KernelBackend;

use crate::activation::Activation;
use crate::blocks::{UNetMidBlock2d, UNetMidBlock2dConfig, UpDecoderBlock2d, UpDecoderBlock2dConfig};
use crate::config::UpBlockType;
use crate::norm::{group_norm, group_norm_config};

/// Configuration of a [`Decoder`].
#[derive(Config, Debug)]
pub struct DecoderConfig {
    /// Input channels (`latent_channels`).
    pub in_channels: usize,
    /// Image channels.
    pub out_channels: usize,
    /// Block types, lowest resolution first.
    pub up_blocks: Vec<UpBlockType>,
    /// Channels per level, highest resolution first (the encoder's order; the decoder walks it
    /// backwards).
    pub block_out_channels: Vec<usize>,
    /// `layers_per_block`; every decoder block has one resnet more.
    pub layers_per_block: usize,
    /// GroupNorm groups.
    pub num_groups: usize,
    /// Resnet activation.
    pub activation: Activation,
    /// Whether the mid block has its attention layer.
    pub mid_block_attention: bool,
}

/// `conv_in` → mid block → up blocks (all but the last double the resolution) → GroupNorm →
/// SiLU → `conv_out`.
#[derive(Module, Debug)]
pub struct Decoder<B: Backend> {
    /// `decoder.conv_in`: 3×3, `latent_channels` → last block channels.
    pub conv_in: Conv2d<B>,
    /// `decoder.mid_block`.
    pub mid_block: UNetMidBlock2d<B>,
    /// `decoder.up_blocks.I`.
    pub up_blocks: Vec<UpDecoderBlock2d<B>>,
    /// `decoder.conv_norm_out`: GroupNorm over the first block channels, eps 1e−6.
    pub conv_norm_out: GroupNorm<B>,
    /// `decoder.conv_out`: 3×3, first block channels → image channels.
    pub conv_out: Conv2d<B>,
}

impl DecoderConfig {
    /// Initializes the decoder with random weights.
    ///
    /// Panics when `up_blocks` and `block_out_channels` differ in length or are empty
    /// ([`VQModelConfig::validate`](crate::VQModelConfig::validate) rejects such configs).
    pub fn init<B: Backend>(&self, device: &B::Device) -> Decoder<B> {
        assert!(
            !self.block_out_channels.is_empty() && self.up_blocks.len() == self.block_out_channels.len(),
            "Decoder: one up block per block_out_channels entry is needed"
        );
        let reversed: Vec<usize> = self.block_out_channels.iter().rev().copied().collect();
        let last = reversed.len() - 1;
        let up_blocks = self
            .up_blocks
            .iter()
            .enumerate()
            .map(|(i, block)| {
                UpDecoderBlock2dConfig::new(
                    reversed[i.saturating_sub(1)],
                    reversed[i],
                    self.layers_per_block + 1,
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
        Decoder {
            conv_in: conv3(self.in_channels, reversed[0]),
            mid_block: UNetMidBlock2dConfig::new(
                reversed[0],
                self.num_groups,
                self.activation,
                self.mid_block_attention,
            )
            .init(device),
            up_blocks,
            conv_norm_out: group_norm_config(self.num_groups, reversed[last]).init(device),
            conv_out: conv3(reversed[last], self.out_channels),
        }
    }
}

impl<B: KernelBackend> Decoder<B> {
    /// # Shapes
    ///
    /// - input: `[batch, latent_channels, h, w]`
    /// - output: `[batch, out_channels, h·f, w·f]` with `f = 2^(levels − 1)`
    pub fn forward(&self, z: Tensor<B, 4>) -> Tensor<B, 4> {
        let mut x = self.mid_block.forward(B::convolution(&self.conv_in, z));
        for block in &self.up_blocks {
            x = block.forward(x);
        }
        // diffusers' `conv_act` is always SiLU, whatever `act_fn` says.
        let x = silu(group_norm(&self.conv_norm_out, x));
        B::convolution(&self.conv_out, x)
    }
}
