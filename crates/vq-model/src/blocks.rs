//! The encoder / decoder blocks of `diffusers/models/unets/unet_2d_blocks.py` that a VQModel
//! config can name: `DownEncoderBlock2D`, `AttnDownEncoderBlock2D`, `UpDecoderBlock2D`,
//! `AttnUpDecoderBlock2D`, and `UNetMidBlock2D` (one layer, no time embedding).
//!
//! The plain and attention variants differ only in the attention block after each resnet, so
//! each pair is one module whose `attentions` list is empty for the plain type.

use burn::config::Config;
use burn::module::Module;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use vq_kernels::KernelBackend;

use crate::activation::Activation;
use crate::attention::{AttentionBlock, AttentionBlockConfig};
use crate::resnet::{ResnetBlock2d, ResnetBlock2dConfig};
use crate::sampling::{Downsample2d, Downsample2dConfig, Upsample2d, Upsample2dConfig};

/// Configuration of a [`DownEncoderBlock2d`].
#[derive(Config, Debug)]
pub struct DownEncoderBlock2dConfig {
    /// Input channels of the first resnet.
    pub in_channels: usize,
    /// Output channels of every resnet.
    pub out_channels: usize,
    /// Number of resnets (`layers_per_block`).
    pub num_layers: usize,
    /// GroupNorm groups.
    pub num_groups: usize,
    /// Resnet activation.
    pub activation: Activation,
    /// `AttnDownEncoderBlock2D`: an attention block after every resnet.
    pub attention: bool,
    /// Whether a [`Downsample2d`] ends the block (all but the last encoder block).
    pub downsample: bool,
}

/// `DownEncoderBlock2D` / `AttnDownEncoderBlock2D`: `num_layers` × (resnet [, attention]), then
/// an optional downsampler.
#[derive(Module, Debug)]
pub struct DownEncoderBlock2d<B: Backend> {
    /// `down_blocks.I.resnets.N`.
    pub resnets: Vec<ResnetBlock2d<B>>,
    /// `down_blocks.I.attentions.N`: one per resnet, or none.
    pub attentions: Vec<AttentionBlock<B>>,
    /// `down_blocks.I.downsamplers.0`.
    pub downsampler: Option<Downsample2d<B>>,
}

impl DownEncoderBlock2dConfig {
    /// Initializes the block with random weights.
    pub fn init<B: Backend>(&self, device: &B::Device) -> DownEncoderBlock2d<B> {
        let (resnets, attentions) = resnet_stack(
            (self.in_channels, self.out_channels),
            self.num_layers,
            self.num_groups,
            self.activation,
            self.attention,
            device,
        );
        let downsampler = self.downsample.then(|| Downsample2dConfig::new(self.out_channels).init(device));
        DownEncoderBlock2d { resnets, attentions, downsampler }
    }
}

impl<B: KernelBackend> DownEncoderBlock2d<B> {
    /// # Shapes
    ///
    /// - input: `[batch, in_channels, height, width]`
    /// - output: `[batch, out_channels, height', width']` with `height' = height / 2` (rounded as
    ///   in [`Downsample2d`]) when the block downsamples, else `height`
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let x = resnets_then_attentions(&self.resnets, &self.attentions, x);
        match &self.downsampler {
            Some(down) => down.forward(x),
            None => x,
        }
    }
}

/// Configuration of an [`UpDecoderBlock2d`].
#[derive(Config, Debug)]
pub struct UpDecoderBlock2dConfig {
    /// Input channels of the first resnet.
    pub in_channels: usize,
    /// Output channels of every resnet.
    pub out_channels: usize,
    /// Number of resnets (`layers_per_block + 1`).
    pub num_layers: usize,
    /// GroupNorm groups.
    pub num_groups: usize,
    /// Resnet activation.
    pub activation: Activation,
    /// `AttnUpDecoderBlock2D`: an attention block after every resnet.
    pub attention: bool,
    /// Whether an [`Upsample2d`] ends the block (all but the last decoder block).
    pub upsample: bool,
}

/// `UpDecoderBlock2D` / `AttnUpDecoderBlock2D`: `num_layers` × (resnet [, attention]), then an
/// optional upsampler.
#[derive(Module, Debug)]
pub struct UpDecoderBlock2d<B: Backend> {
    /// `up_blocks.I.resnets.N`.
    pub resnets: Vec<ResnetBlock2d<B>>,
    /// `up_blocks.I.attentions.N`: one per resnet, or none.
    pub attentions: Vec<AttentionBlock<B>>,
    /// `up_blocks.I.upsamplers.0`.
    pub upsampler: Option<Upsample2d<B>>,
}

impl UpDecoderBlock2dConfig {
    /// Initializes the block with random weights.
    pub fn init<B: Backend>(&self, device: &B::Device) -> UpDecoderBlock2d<B> {
        let (resnets, attentions) = resnet_stack(
            (self.in_channels, self.out_channels),
            self.num_layers,
            self.num_groups,
            self.activation,
            self.attention,
            device,
        );
        let upsampler = self.upsample.then(|| Upsample2dConfig::new(self.out_channels).init(device));
        UpDecoderBlock2d { resnets, attentions, upsampler }
    }
}

impl<B: KernelBackend> UpDecoderBlock2d<B> {
    /// # Shapes
    ///
    /// - input: `[batch, in_channels, height, width]`
    /// - output: `[batch, out_channels, 2·height, 2·width]` when the block upsamples, else
    ///   `[batch, out_channels, height, width]`
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let x = resnets_then_attentions(&self.resnets, &self.attentions, x);
        match &self.upsampler {
            Some(up) => up.forward(x),
            None => x,
        }
    }
}

/// Configuration of a [`UNetMidBlock2d`].
#[derive(Config, Debug)]
pub struct UNetMidBlock2dConfig {
    /// Channels (the last `block_out_channels` entry).
    pub channels: usize,
    /// GroupNorm groups.
    pub num_groups: usize,
    /// Resnet activation.
    pub activation: Activation,
    /// `mid_block_add_attention`: an attention block between the two resnets.
    pub attention: bool,
}

/// `UNetMidBlock2D` with one layer: resnet, attention (unless disabled), resnet, all at `channels`.
#[derive(Module, Debug)]
pub struct UNetMidBlock2d<B: Backend> {
    /// `mid_block.resnets.{0,1}`.
    pub resnets: Vec<ResnetBlock2d<B>>,
    /// `mid_block.attentions.0`, absent when `mid_block_add_attention` is false.
    pub attentions: Vec<AttentionBlock<B>>,
}

impl UNetMidBlock2dConfig {
    /// Initializes the block with random weights.
    pub fn init<B: Backend>(&self, device: &B::Device) -> UNetMidBlock2d<B> {
        let resnet = || {
            ResnetBlock2dConfig::new(self.channels, self.channels, self.num_groups)
                .with_activation(self.activation)
                .init(device)
        };
        let attentions =
            if self.attention { attention_blocks(1, self.channels, self.num_groups, device) } else { Vec::new() };
        UNetMidBlock2d { resnets: vec![resnet(), resnet()], attentions }
    }
}

impl<B: KernelBackend> UNetMidBlock2d<B> {
    /// # Shapes
    ///
    /// - input: `[batch, channels, height, width]`
    /// - output: `[batch, channels, height, width]`
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let mut x = self.resnets[0].forward(x);
        if let Some(attention) = self.attentions.first() {
            x = attention.forward(x);
        }
        self.resnets[1].forward(x)
    }
}

fn attention_blocks<B: Backend>(
    n: usize,
    channels: usize,
    groups: usize,
    device: &B::Device,
) -> Vec<AttentionBlock<B>> {
    (0..n).map(|_| AttentionBlockConfig::new(channels, groups).init(device)).collect()
}

/// Each resnet, followed by its attention block when the block has attentions.
fn resnets_then_attentions<B: KernelBackend>(
    resnets: &[ResnetBlock2d<B>],
    attentions: &[AttentionBlock<B>],
    mut x: Tensor<B, 4>,
) -> Tensor<B, 4> {
    for (i, resnet) in resnets.iter().enumerate() {
        x = resnet.forward(x);
        if let Some(attention) = attentions.get(i) {
            x = attention.forward(x);
        }
    }
    x
}

/// `num_layers` resnets (the first changes `in → out` channels) and, with `attention`, one
/// attention block after each: the body shared by the encoder's down and decoder's up blocks.
fn resnet_stack<B: Backend>(
    (in_channels, out_channels): (usize, usize),
    num_layers: usize,
    num_groups: usize,
    activation: Activation,
    attention: bool,
    device: &B::Device,
) -> (Vec<ResnetBlock2d<B>>, Vec<AttentionBlock<B>>) {
    let resnets = (0..num_layers)
        .map(|i| {
            let in_channels = if i == 0 { in_channels } else { out_channels };
            ResnetBlock2dConfig::new(in_channels, out_channels, num_groups).with_activation(activation).init(device)
        })
        .collect();
    let attentions = match attention {
        true => attention_blocks(num_layers, out_channels, num_groups, device),
        false => Vec::new(),
    };
    (resnets, attentions)
}
