//! The feed-forward network for every `activation_fn`, against diffusers 0.42.1 / torch 2.15
//! (`FeedForward(3, inner_dim=4, activation_fn=…)` with the weights below, CPU, f32). The
//! gated variants check which half of the projection is the gate.

use burn::module::Param;
use burn::nn::{DropoutConfig, Linear};
use burn::tensor::{Tensor, TensorData};
use transformer2d::{FeedForward, FeedForwardActivation};

use crate::common::{device, max_abs_diff, B};

/// `proj.weight` `[8, 3]` of the gated variants (torch layout); the others use the first 4 rows.
/// Values: `sin(0.37 i)` in f32.
const W1: [f32; 24] = [
    0.0,
    0.36161545,
    0.6742879,
    0.89569867,
    0.99588084,
    0.9612752,
    0.7965655,
    0.5240442,
    0.18059623,
    -0.18729459,
    -0.5298362,
    -0.80066687,
    -0.96313095,
    -0.99523985,
    -0.89264756,
    -0.6692397,
    -0.3552535,
    0.006814602,
    0.36796036,
    0.6793048,
    0.89870816,
    0.99647564,
    0.9593747,
    0.792427,
];
/// `proj.bias` `[8]`: `0.5 cos(0.53 i)`.
const B1: [f32; 8] = [0.5, 0.43140355, 0.24443607, -0.009601204, -0.26100403, -0.44079107, -0.49963126, -0.42137972];
/// `net.2.weight` `[3, 4]`: `cos(0.29 i)`.
const W2: [f32; 12] = [
    1.0,
    0.9582439,
    0.8364627,
    0.64482653,
    0.39933956,
    0.12050284,
    -0.16839746,
    -0.44323438,
    -0.68105584,
    -0.86200076,
    -0.9709581,
    -0.9988286,
];
const B2: [f32; 3] = [-0.1, 0.0, 0.1];
/// Input `[1, 2, 3]`.
const X: [f32; 6] = [0.5, -1.25, 2.0, -3.0, 0.75, 1.5];

/// torch's output `[1, 2, 3]` per activation.
const EXPECTED: [(FeedForwardActivation, [f32; 6]); 6] = [
    (FeedForwardActivation::Gelu, [2.671669, 0.7200644, -2.0965686, 1.4002932, 0.7672844, -0.7874793]),
    (FeedForwardActivation::GeluApproximate, [2.671132, 0.7200222, -2.0960655, 1.3999203, 0.7673652, -0.7870419]),
    (FeedForwardActivation::Geglu, [-0.53132814, 0.023830548, 0.5503611, 0.3862135, 0.25523567, -0.1823622]),
    (FeedForwardActivation::GegluApproximate, [2.6619055, 0.7147237, -2.0910707, 1.3811152, 0.76083475, -0.7734524]),
    (FeedForwardActivation::Swiglu, [-0.7587254, -0.07357519, 0.6999625, 0.4533325, 0.14503294, -0.33749774]),
    (FeedForwardActivation::LinearSilu, [2.2476237, 0.68802524, -1.698112, 0.9901396, 0.77223825, -0.3733691]),
];

/// A burn Linear from a torch-layout `[out, in]` weight.
fn linear(weight: &[f32], bias: &[f32], d_in: usize) -> Linear<B> {
    let d_out = bias.len();
    let w = Tensor::<B, 2>::from_data(TensorData::new(weight[..d_out * d_in].to_vec(), [d_out, d_in]), &device());
    Linear {
        weight: Param::from_tensor(w.transpose()),
        bias: Some(Param::from_tensor(Tensor::from_data(TensorData::new(bias.to_vec(), [d_out]), &device()))),
    }
}

#[test]
fn feed_forward_matches_diffusers_for_every_activation() {
    let x = Tensor::<B, 3>::from_data(TensorData::new(X.to_vec(), [1, 2, 3]), &device());
    for (activation, expected) in EXPECTED {
        let gated = matches!(activation, FeedForwardActivation::Geglu | FeedForwardActivation::Swiglu);
        let proj_width = if gated { 8 } else { 4 };
        let ff = FeedForward {
            proj_in: linear(&W1, &B1[..proj_width], 3),
            dropout: DropoutConfig::new(0.0).init(),
            proj_out: linear(&W2, &B2, 4),
            activation,
        };
        let err = max_abs_diff(&ff.forward(x.clone()).into_data(), &TensorData::new(expected.to_vec(), [1, 2, 3]));
        assert!(err <= 1e-6, "{activation:?}: off by {err:e}");
    }
}
