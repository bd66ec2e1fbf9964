//! The forward process q(x_t | x_0): its log-probabilities are the cumulative tables, its draws
//! follow them, a region restricts it, and the mask absorbs.

use burn::tensor::{Bool, Tensor, TensorData};
use vq_scheduler::{
    log_sum_exp_classes, FixedUniforms, ScheduleProbabilities, TorchGenerator, VQDiffusionSchedulerConfig,
};

use crate::common::{device, float3, int2, to_f32, to_i64, B};

/// A schedule whose replacement probability β̄_t is large enough to count (the default one's is
/// ≈ 1e−6 / K): K = 4 real classes, T = 10, ᾱ from 0.99 to 0.3, γ̄ from 0.005 to 0.4.
fn counting_config() -> VQDiffusionSchedulerConfig {
    VQDiffusionSchedulerConfig {
        num_vec_classes: 5,
        num_train_timesteps: 10,
        alpha_cum_start: 0.99,
        alpha_cum_end: 0.3,
        gamma_cum_start: 0.005,
        gamma_cum_end: 0.4,
    }
}

fn bools(values: Vec<bool>, shape: [usize; 2]) -> Tensor<B, 2, Bool> {
    Tensor::from_data(TensorData::new(values, shape), &device())
}

#[test]
fn forward_log_probabilities_are_the_cumulative_tables() {
    let config = counting_config();
    let s = config.init::<B>(&device()).unwrap();
    let p = ScheduleProbabilities::new(&config);
    let k = 4;
    // x_0 = [class 2, mask]: [1, K + 1, 2].
    for t in [0, 4, 9] {
        let log_q = to_f32(s.log_q_x_t_given_x_0(int2(vec![2, k as i64], [1, 2]), t));
        let class = |row: usize| f64::from(log_q[row * 2]).exp();
        let from_mask = |row: usize| f64::from(log_q[row * 2 + 1]).exp();
        for row in 0..k {
            let expected = p.btt[t] + if row == 2 { p.att[t] } else { 0.0 };
            assert!((class(row) - expected).abs() < 1e-6, "t {t} row {row}: {} vs {expected}", class(row));
            assert!(from_mask(row) < 1e-29, "a masked x_0 goes nowhere else");
        }
        assert!((class(k) - p.ctt[t]).abs() < 1e-6);
        assert_eq!(from_mask(k), 1.0);
        for v in to_f32(log_sum_exp_classes(s.log_q_x_t_given_x_0(int2(vec![2, k as i64], [1, 2]), t))) {
            assert!(v.abs() < 1e-6, "t {t}: logsumexp {v}");
        }
    }
}

/// Draw frequencies of "kept", each other class and "masked" over 40,000 tokens per timestep,
/// each within 5 binomial standard deviations √(n·p·(1 − p)) of n·p (false alarm < 6e−7 per count).
#[test]
fn forward_draws_keep_change_and_mask_at_the_cumulative_rates() {
    let config = counting_config();
    let s = config.init::<B>(&device()).unwrap();
    let p = ScheduleProbabilities::new(&config);
    let (k, pixels) = (4usize, 40_000usize);
    let mut generator = TorchGenerator::new(2024);
    for t in [0, 3, 6, 9] {
        // x_0 cycles through the classes; count by relation to it.
        let x_0: Vec<i64> = (0..pixels).map(|i| (i % k) as i64).collect();
        let x_t = to_i64(s.q_sample(int2(x_0.clone(), [1, pixels]), t, None, &mut generator));
        let mut counts = [0usize; 5]; // kept, +1, +2, +3 (mod K), masked
        for (&before, &after) in x_0.iter().zip(&x_t) {
            let slot = if after == k as i64 { 4 } else { ((after - before).rem_euclid(k as i64)) as usize };
            counts[slot] += 1;
        }
        let expected = [p.att[t] + p.btt[t], p.btt[t], p.btt[t], p.btt[t], p.ctt[t]];
        let n = pixels as f64;
        for (slot, (&count, &probability)) in counts.iter().zip(&expected).enumerate() {
            let sigma = (n * probability * (1.0 - probability)).sqrt();
            assert!(
                (count as f64 - n * probability).abs() <= 5.0 * sigma + 1e-9,
                "t {t} slot {slot}: {count} of {pixels}, expected {} ± 5·{sigma:.1}",
                n * probability
            );
        }
    }
}

#[test]
fn the_default_schedule_masks_nearly_everything_at_the_last_timestep_and_nothing_at_the_first() {
    let s = VQDiffusionSchedulerConfig::new(17).init::<B>(&device()).unwrap();
    let pixels = 20_000;
    let x_0: Vec<i64> = (0..pixels).map(|i| (i % 16) as i64).collect();
    let mut generator = TorchGenerator::new(5);
    let last = to_i64(s.q_sample(int2(x_0.clone(), [1, pixels]), 99, None, &mut generator));
    // γ̄_99 = 0.99999: expected 0.2 unmasked tokens of 20,000.
    assert!(last.iter().filter(|&&id| id != 16).count() <= 3);
    let first = to_i64(s.q_sample(int2(x_0.clone(), [1, pixels]), 0, None, &mut generator));
    // ᾱ_0 + β̄_0 = 0.99999: expected 0.2 changed tokens.
    assert!(first.iter().zip(&x_0).filter(|(a, b)| a != b).count() <= 3);
}

#[test]
fn only_the_region_is_noised_and_the_draw_does_not_depend_on_it() {
    let config = counting_config();
    let s = config.init::<B>(&device()).unwrap();
    let (k, batch, pixels) = (4usize, 2usize, 64usize);
    let x_0: Vec<i64> = (0..batch * pixels).map(|i| (i * 7 % (k + 1)) as i64).collect();
    let region: Vec<bool> = (0..batch * pixels).map(|i| i % 3 != 0).collect();
    let uniforms: Vec<f32> = (0..batch * (k + 1) * pixels).map(|i| ((i * 7919) % 1000) as f32 / 1000.0).collect();
    let noise = || FixedUniforms::new([float3(uniforms.clone(), [batch, k + 1, pixels])]);
    let t = 9;
    let everywhere = to_i64(s.q_sample(int2(x_0.clone(), [batch, pixels]), t, None, &mut noise()));
    let mut fixed = noise();
    let inside = to_i64(s.q_sample(
        int2(x_0.clone(), [batch, pixels]),
        t,
        Some(bools(region.clone(), [batch, pixels])),
        &mut fixed,
    ));
    assert_eq!(fixed.remaining(), 0);
    for i in 0..batch * pixels {
        let expected = if region[i] { everywhere[i] } else { x_0[i] };
        assert_eq!(inside[i], expected, "pixel {i}");
        if x_0[i] == k as i64 {
            assert_eq!(everywhere[i], k as i64, "pixel {i}: the mask absorbs");
        }
    }
    assert!(everywhere.iter().zip(&x_0).any(|(a, b)| a != b), "t = 9 changes some tokens");
}
