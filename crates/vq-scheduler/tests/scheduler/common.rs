//! Shared helpers: the test backend, host ↔ tensor conversion and proptest strategies.

use burn::backend::NdArray;
use burn::tensor::{activation::log_softmax, Int, Tensor, TensorData};
use proptest::prelude::*;
use vq_scheduler::{VQDiffusionScheduler, VQDiffusionSchedulerConfig};

pub type B = NdArray<f32>;

pub fn device() -> burn::backend::ndarray::NdArrayDevice {
    Default::default()
}

pub fn float3(values: Vec<f32>, shape: [usize; 3]) -> Tensor<B, 3> {
    Tensor::from_data(TensorData::new(values, shape), &device())
}

pub fn int2(values: Vec<i64>, shape: [usize; 2]) -> Tensor<B, 2, Int> {
    Tensor::from_data(TensorData::new(values, shape), &device())
}

pub fn to_f32<const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().into_vec().unwrap()
}

pub fn to_i64<const D: usize>(t: Tensor<B, D, Int>) -> Vec<i64> {
    t.into_data().convert::<i64>().into_vec().unwrap()
}

/// A scheduler with K real classes and the default ITHQ schedule (T = 100).
pub fn scheduler(k: usize) -> VQDiffusionScheduler<B> {
    VQDiffusionSchedulerConfig::new(k + 1).init::<B>(&device()).unwrap()
}

/// Normalised log-probabilities over classes (dimension 1) from raw logits.
pub fn log_probs(logits: Vec<f32>, shape: [usize; 3]) -> Tensor<B, 3> {
    log_softmax(float3(logits, shape), 1)
}

/// Index of (b, class, pixel) in a row-major [batch, classes, pixels] buffer.
pub fn at(shape: [usize; 3], b: usize, class: usize, pixel: usize) -> usize {
    (b * shape[1] + class) * shape[2] + pixel
}

/// Uniforms as torch draws them: mostly in [0, 1), with the extremes 0 and 1 − 2⁻²⁴ mixed in.
pub fn uniform_value() -> impl Strategy<Value = f32> {
    prop_oneof![
        8 => 0.0f32..1.0,
        1 => Just(0.0f32),
        1 => Just(1.0 - 1.0 / (1u32 << 24) as f32),
    ]
}

/// A random step problem: (batch, K, pixels, logits [b, K, n], x_t ids in 0..=K, t in 1..T).
#[derive(Debug, Clone)]
pub struct StepCase {
    pub batch: usize,
    pub k: usize,
    pub pixels: usize,
    pub logits: Vec<f32>,
    pub x_t: Vec<i64>,
    pub t: usize,
    pub uniforms: Vec<f32>,
}

pub fn step_case() -> impl Strategy<Value = StepCase> {
    (1usize..=2, 2usize..=8, 1usize..=6)
        .prop_flat_map(|(batch, k, pixels)| {
            (
                Just((batch, k, pixels)),
                prop::collection::vec(-8.0f32..8.0, batch * k * pixels),
                prop::collection::vec(0..=k as i64, batch * pixels),
                1usize..100,
                prop::collection::vec(uniform_value(), batch * (k + 1) * pixels),
            )
        })
        .prop_map(|((batch, k, pixels), logits, x_t, t, uniforms)| StepCase {
            batch,
            k,
            pixels,
            logits,
            x_t,
            t,
            uniforms,
        })
}
