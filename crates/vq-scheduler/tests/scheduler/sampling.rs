//! Gumbel-max sampling: frequencies, tie breaking, and the noise sources.

use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use vq_scheduler::{gumbel_max_sample, gumbel_noise, log_sum_exp_classes, DeviceNoise, TorchGenerator, UniformSource};

use crate::common::{device, float3, int2, scheduler, to_f32, to_i64, B};

/// Checks that `ids` (draws of one categorical) follow `probabilities`: every class count is
/// within 5 binomial standard deviations of n·p (per-class false-alarm rate < 6e−7).
fn assert_frequencies(ids: &[i64], probabilities: &[f64]) {
    let n = ids.len() as f64;
    for (class, &p) in probabilities.iter().enumerate() {
        let count = ids.iter().filter(|&&id| id == class as i64).count() as f64;
        let sigma = (n * p * (1.0 - p)).sqrt();
        assert!(
            (count - n * p).abs() <= 5.0 * sigma + 1e-9,
            "class {class}: {count} draws, expected {} ± 5·{sigma:.1}",
            n * p
        );
    }
    assert_eq!(ids.iter().filter(|&&id| id < 0 || id >= probabilities.len() as i64).count(), 0);
}

/// `pixels` copies of the same log-probability column, shape [1, K, pixels].
fn repeated_column(log_p: &[f32], pixels: usize) -> Tensor<B, 3> {
    let values = log_p.iter().flat_map(|&v| std::iter::repeat_n(v, pixels)).collect();
    float3(values, [1, log_p.len(), pixels])
}

#[test]
fn gumbel_max_with_the_torch_generator_samples_the_softmax() {
    let probabilities = [0.45, 0.25, 0.15, 0.1, 0.04, 0.01];
    let log_p: Vec<f32> = probabilities.iter().map(|p: &f64| p.ln() as f32).collect();
    let pixels = 40_000;
    let s = scheduler(probabilities.len());
    let sample = int2(vec![0; pixels], [1, pixels]);
    let ids = to_i64(s.step(repeated_column(&log_p, pixels), 0, sample, &mut TorchGenerator::new(1234)));
    assert_frequencies(&ids, &probabilities);
}

#[test]
fn step_at_t_above_0_samples_the_posterior() {
    // All pixels masked at t = 40: x_{t−1} ~ softmax(q_posterior) over K + 1 classes.
    let k = 4;
    let s = scheduler(k);
    let pixels = 40_000;
    let log_p: Vec<f32> = [0.5f64, 0.3, 0.15, 0.05].iter().map(|p| p.ln() as f32).collect();
    let x_t = int2(vec![k as i64; pixels], [1, pixels]);
    let posterior = s.q_posterior(repeated_column(&log_p, 1), int2(vec![k as i64], [1, 1]), 40);
    let posterior = to_f32(posterior.clone() - log_sum_exp_classes(posterior));
    let probabilities: Vec<f64> = posterior.iter().map(|&l| f64::from(l).exp()).collect();
    assert!(probabilities[k] > 0.3, "the mask keeps a large share at t = 40: {probabilities:?}");
    let ids = to_i64(s.step(repeated_column(&log_p, pixels), 40, x_t, &mut TorchGenerator::new(99)));
    assert_frequencies(&ids, &probabilities);
}

#[test]
fn device_noise_samples_the_softmax() {
    B::seed(&device(), 7);
    let probabilities = [0.6, 0.3, 0.1];
    let log_p: Vec<f32> = probabilities.iter().map(|p: &f64| p.ln() as f32).collect();
    let pixels = 30_000;
    let s = scheduler(3);
    let ids = to_i64(s.step(repeated_column(&log_p, pixels), 0, int2(vec![0; pixels], [1, pixels]), &mut DeviceNoise));
    assert_frequencies(&ids, &probabilities);
    let u = to_f32(UniformSource::<B>::uniform(&mut DeviceNoise, [1, 2, 500], &device()));
    assert!(u.iter().all(|v| (0.0..=1.0).contains(v)));
}

#[test]
fn argmax_ties_go_to_the_first_class() {
    // [1, K = 4, 2 pixels]; pixel 0's column is [0, 2, 1, 2] (classes 1 and 3 tie), pixel 1's
    // is [2, 2, 2, 2]; the noise is the same on every class.
    let logits = float3(vec![0.0, 2.0, 2.0, 2.0, 1.0, 2.0, 2.0, 2.0], [1, 4, 2]);
    let ids = to_i64(gumbel_max_sample(logits, float3(vec![0.5; 8], [1, 4, 2])));
    assert_eq!(ids, [1, 0]);
}

#[test]
fn gumbel_noise_matches_its_formula_including_u_equal_0() {
    let u = vec![0.0f32, 0.25, 0.5, 1.0 - 1.0 / 16_777_216.0];
    let g = to_f32(gumbel_noise(float3(u.clone(), [1, 4, 1])));
    for (g, u) in g.into_iter().zip(u) {
        let expected = -(-(u + 1e-30f32).ln() + 1e-30f32).ln();
        assert_eq!(g, expected, "u = {u}");
        assert!(g.is_finite());
    }
    // u = 0 → −ln(−ln 1e−30) = −ln 69.0776 ≈ −4.23523.
    let at_zero = to_f32(gumbel_noise(float3(vec![0.0], [1, 1, 1])))[0];
    assert!((at_zero + 4.235_23).abs() < 1e-5, "{at_zero}");
}

/// The scheduler computes in f32 (its tables, one-hots and noise are f32) whatever float type
/// the model hands it: burn-flex panicked on the mixed types when a model ran in f16. NdArray has
/// no f16, so this feeds f64 (exact for f32 values): the step must equal the f32 step. The f16
/// and bf16 runs are measured end to end by `xtask parity --backend flex --dtype f16|bf16`.
#[test]
fn a_model_output_of_another_float_type_is_stepped_in_f32() {
    use burn::tensor::{DType, FloatDType};
    let scheduler = scheduler(5);
    let [batch, pixels] = [2, 16];
    let values: Vec<f32> = (0..batch * 5 * pixels).map(|i| -((i * 7919 % 97) as f32) / 13.0).collect();
    let logits = float3(values, [batch, 5, pixels]);
    let log_p = logits.clone() - log_sum_exp_classes(logits);
    let wide = log_p.clone().cast(FloatDType::F64);
    assert_eq!(wide.dtype(), DType::F64);
    let x_t = int2((0..batch * pixels).map(|i| (i % 6) as i64).collect(), [batch, pixels]);
    for t in [0, 1, 37, 99] {
        let step = |model_output: Tensor<B, 3>| {
            let mut noise = TorchGenerator::new(11);
            to_i64(scheduler.step(model_output, t, x_t.clone(), &mut noise))
        };
        assert_eq!(step(wide.clone()), step(log_p.clone()), "t = {t}");
    }
}
