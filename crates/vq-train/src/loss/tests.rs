//! Tests of the training objective: statistics of the forward sample, KL properties, the
//! batched posterior against the scheduler and against the closed form, the loss on perfect
//! and uniform predictions, gradients, and the timestep sampler.

use burn::backend::{Autodiff, NdArray};
use burn::tensor::{activation::log_softmax, Int, Tensor, TensorData};
use proptest::prelude::*;
use vq_scheduler::{ScheduleProbabilities, ScheduleTables, VQDiffusionScheduler, VQDiffusionSchedulerConfig};

use super::*;
use crate::rng::SplitMix64;

type B = NdArray<f32>;

/// A short schedule with sizeable replacement probabilities (β̄_t up to 0.0375), so that all
/// three outcomes of q(x_t | x_0) are frequent: K = 8, T = 20.
fn replace_heavy_config() -> VQDiffusionSchedulerConfig {
    VQDiffusionSchedulerConfig {
        num_vec_classes: 9,
        num_train_timesteps: 20,
        alpha_cum_start: 0.99,
        alpha_cum_end: 0.1,
        gamma_cum_start: 0.005,
        gamma_cum_end: 0.6,
    }
}

fn host_uniforms(rng: &mut SplitMix64, shape: [usize; 2]) -> Tensor<B, 2> {
    let values: Vec<f32> = (0..shape[0] * shape[1]).map(|_| rng.next_f64() as f32).collect();
    Tensor::from_data(TensorData::new(values, shape), &Default::default())
}

fn ids(values: Vec<i64>, shape: [usize; 2]) -> Tensor<B, 2, Int> {
    Tensor::from_data(TensorData::new(values, shape), &Default::default())
}

fn to_vec<const D: usize>(tensor: Tensor<B, D>) -> Vec<f32> {
    tensor.into_data().convert::<f32>().into_vec::<f32>().unwrap()
}

fn to_ids(tensor: Tensor<B, 2, Int>) -> Vec<i64> {
    tensor.into_data().convert::<i64>().into_vec::<i64>().unwrap()
}

#[test]
fn q_sample_frequencies_match_the_cumulative_tables() {
    let config = replace_heavy_config();
    let tables = ScheduleTables::new(&config).unwrap();
    let probabilities = ScheduleProbabilities::new(&config);
    let (k, pixels) = (8usize, 40_000usize);
    let t = [1usize, 9, 19];
    let mut rng = SplitMix64::new(21);
    let x_0: Vec<i64> = (0..t.len() * pixels).map(|_| rng.below(k) as i64).collect();
    let rates = StepRates::<B>::gather(&tables, &t, &Default::default());
    let x_t = q_sample(
        ids(x_0.clone(), [t.len(), pixels]),
        k,
        rates.log_cumprod_bt.clone(),
        rates.log_cumprod_ct.clone(),
        host_uniforms(&mut rng, [t.len(), pixels]),
        host_uniforms(&mut rng, [t.len(), pixels]),
    );
    let x_t = to_ids(x_t);
    let log_q = to_vec(log_q_xt_given_x0(
        ids(x_0.clone(), [t.len(), pixels]),
        k,
        rates.log_cumprod_at.clone(),
        rates.log_cumprod_bt.clone(),
        rates.log_cumprod_ct.clone(),
    ));
    for (row, &t) in t.iter().enumerate() {
        let (alpha, beta, gamma) = (probabilities.att[t], probabilities.btt[t], probabilities.ctt[t]);
        // The distribution tensor, column 0: x_0's class, every other class, the mask.
        let column = |class: usize| f64::from(log_q[(row * (k + 1) + class) * pixels]).exp();
        let class_0 = x_0[row * pixels] as usize;
        assert!((column(class_0) - (alpha + beta)).abs() < 1e-5);
        assert!((column((class_0 + 1) % k) - beta).abs() < 1e-6);
        assert!((column(k) - gamma).abs() < 1e-5);
        assert!(((0..=k).map(column).sum::<f64>() - 1.0).abs() < 1e-5);

        // Outcome counts: [MASK], kept, and each class offset (x_t − x_0) mod K = 1..K−1.
        let mut offsets = vec![0usize; k];
        let mut masked = 0usize;
        for p in 0..pixels {
            let (a, b) = (x_0[row * pixels + p], x_t[row * pixels + p]);
            if b == k as i64 {
                masked += 1;
            } else {
                offsets[((b - a).rem_euclid(k as i64)) as usize] += 1;
            }
        }
        let check = |count: usize, p: f64, what: &str| {
            let sd = (p * (1.0 - p) / pixels as f64).sqrt();
            let rate = count as f64 / pixels as f64;
            assert!((rate - p).abs() < 5.0 * sd + 1e-9, "t = {t}, {what}: rate {rate}, expected {p}");
        };
        check(masked, gamma, "mask");
        check(offsets[0], alpha + beta, "keep");
        for (offset, &count) in offsets.iter().enumerate().skip(1) {
            check(count, beta, &format!("class offset {offset}"));
        }
    }
}

#[test]
fn categorical_kl_has_the_textbook_value() {
    let device = Default::default();
    let p = Tensor::<B, 1>::from_floats([0.5f32.ln(), 0.5f32.ln()], &device).reshape([1, 2, 1]);
    let q = Tensor::<B, 1>::from_floats([0.9f32.ln(), 0.1f32.ln()], &device).reshape([1, 2, 1]);
    let kl = categorical_kl(p.clone(), q.clone()).into_scalar();
    let expected = 0.5 * (0.5f64 / 0.9).ln() + 0.5 * (0.5f64 / 0.1).ln();
    assert!((f64::from(kl) - expected).abs() < 1e-6, "{kl} vs {expected}");
    let nll = to_vec(categorical_nll(q, ids(vec![1], [1, 1])));
    assert!((f64::from(nll[0]) - 10f64.ln()).abs() < 1e-6);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn categorical_kl_is_non_negative_and_zero_only_for_equal_inputs(
        classes in 2usize..7,
        logits in prop::collection::vec(-8.0f32..8.0, 2 * 6 * 3 * 2),
    ) {
        let device = Default::default();
        let shape = [2, classes, 3];
        let count = 2 * classes * 3;
        let make = |values: &[f32]| log_softmax(Tensor::<B, 3>::from_data(TensorData::new(values.to_vec(), shape), &device), 1);
        let (log_p, log_q) = (make(&logits[..count]), make(&logits[count..2 * count]));
        let kl = to_vec(categorical_kl(log_p.clone(), log_q.clone()));
        prop_assert!(kl.iter().all(|&v| v >= -1e-6), "{:?}", kl);
        let zero = to_vec(categorical_kl(log_p.clone(), log_p.clone()));
        prop_assert!(zero.iter().all(|&v| v.abs() < 1e-6), "{:?}", zero);
        // Positions whose distributions differ clearly have a clearly positive KL (Pinsker:
        // KL ≥ 2 · TV², TV ≥ max |p − q| over classes).
        let (p, q) = (to_vec(log_p.exp()), to_vec(log_q.exp()));
        for b in 0..2 {
            for n in 0..3 {
                let gap = (0..classes)
                    .map(|c| (p[(b * classes + c) * 3 + n] - q[(b * classes + c) * 3 + n]).abs())
                    .fold(0.0f32, f32::max);
                prop_assert!(kl[b * 3 + n] >= 2.0 * gap * gap - 1e-5, "KL {} < Pinsker bound for gap {}", kl[b * 3 + n], gap);
            }
        }
    }
}

/// Random normalised log p(x_0) `[batch, K, pixels]` and x_t ids in 0..=K (about a third masked).
fn random_inputs(rng: &mut SplitMix64, batch: usize, k: usize, pixels: usize) -> (Tensor<B, 3>, Tensor<B, 2, Int>) {
    let logits: Vec<f32> = (0..batch * k * pixels).map(|_| rng.uniform(-4.0, 4.0) as f32).collect();
    let log_p =
        log_softmax(Tensor::<B, 3>::from_data(TensorData::new(logits, [batch, k, pixels]), &Default::default()), 1);
    let x_t: Vec<i64> =
        (0..batch * pixels).map(|_| if rng.bernoulli(0.35) { k as i64 } else { rng.below(k) as i64 }).collect();
    (log_p, ids(x_t, [batch, pixels]))
}

#[test]
fn batched_posterior_equals_the_scheduler_for_each_samples_timestep() {
    for config in [VQDiffusionSchedulerConfig::new(9), replace_heavy_config()] {
        let device = Default::default();
        let scheduler = VQDiffusionScheduler::<B>::new(config.clone(), &device).unwrap();
        let steps = config.num_train_timesteps;
        let t = [1, 2, steps / 2, steps - 1];
        let mut rng = SplitMix64::new(5);
        let (log_p, x_t) = random_inputs(&mut rng, t.len(), 8, 12);
        let rates = StepRates::gather(scheduler.tables(), &t, &device);
        let ours = q_posterior(log_p.clone(), x_t.clone(), &rates);
        assert_eq!(ours.dims(), [4, 9, 12]);
        for (row, &t) in t.iter().enumerate() {
            let reference = scheduler.q_posterior(log_p.clone().narrow(0, row, 1), x_t.clone().narrow(0, row, 1), t);
            let ours_row = ours.clone().narrow(0, row, 1);
            let difference = to_vec((ours_row.clone() - reference).abs().max());
            assert!(difference[0] < 1e-5, "t = {t}: max |difference| {}", difference[0]);
            // A distribution over the K + 1 classes of x_{t−1}.
            let total = to_vec(ours_row.exp().sum_dim(1));
            assert!(total.iter().all(|s| (s - 1.0).abs() < 1e-4), "t = {t}: sums {total:?}");
        }
    }
}

#[test]
fn posterior_is_the_mixture_of_exact_posteriors() {
    // p_θ(x_{t−1} | x_t) = Σ_{x_0} q(x_{t−1} | x_t, x_0) p_θ(x_0 | x_t), computed in f64 from the
    // schedule's probabilities with Bayes' rule.
    let config = replace_heavy_config();
    let probabilities = ScheduleProbabilities::new(&config);
    let tables = ScheduleTables::new(&config).unwrap();
    let (k, pixels) = (8usize, 10usize);
    let t = [1usize, 7, 19];
    let mut rng = SplitMix64::new(8);
    let (log_p, x_t) = random_inputs(&mut rng, t.len(), k, pixels);
    let rates = StepRates::gather(&tables, &t, &Default::default());
    let ours = to_vec(q_posterior(log_p.clone(), x_t.clone(), &rates).exp());
    let (p_x_0, x_t) = (to_vec(log_p.exp()), to_ids(x_t));
    for (row, &t) in t.iter().enumerate() {
        let p = &probabilities;
        // q(x_t = j | x_{t−1} = i) one step; q(x_{t−1} = i | x_0) cumulative at t − 1.
        let step = |i: usize, j: usize| match (i == k, j == k) {
            (true, true) => 1.0,
            (true, false) => 0.0,
            (false, true) => p.ct[t],
            (false, false) => p.bt[t] + if i == j { p.at[t] } else { 0.0 },
        };
        let cumulative = |i: usize, x_0: usize, s: usize| {
            if i == k {
                p.ctt[s]
            } else {
                p.btt[s] + if i == x_0 { p.att[s] } else { 0.0 }
            }
        };
        for n in 0..pixels {
            let j = x_t[row * pixels + n] as usize;
            for i in 0..=k {
                let mut value = 0.0;
                for x_0 in 0..k {
                    let weight = f64::from(p_x_0[(row * k + x_0) * pixels + n]);
                    value += weight * step(i, j) * cumulative(i, x_0, t - 1) / cumulative(j, x_0, t);
                }
                let got = f64::from(ours[(row * (k + 1) + i) * pixels + n]);
                assert!((got - value).abs() < 2e-5, "t = {t}, x_t = {j}, x_(t-1) = {i}: {got} vs {value}");
            }
        }
    }
}

fn loss_config() -> VqDiffusionLossConfig {
    VqDiffusionLossConfig::new()
}

#[test]
fn a_perfect_prediction_has_zero_loss() {
    let config = replace_heavy_config();
    let tables = ScheduleTables::new(&config).unwrap();
    let (k, pixels) = (8usize, 16usize);
    let t = [0usize, 1, 10, 19];
    let mut rng = SplitMix64::new(2);
    let x_0 = ids((0..t.len() * pixels).map(|_| rng.below(k) as i64).collect(), [t.len(), pixels]);
    let rates = StepRates::<B>::gather(&tables, &t, &Default::default());
    let x_t = q_sample(
        x_0.clone(),
        k,
        rates.log_cumprod_bt.clone(),
        rates.log_cumprod_ct.clone(),
        host_uniforms(&mut rng, [t.len(), pixels]),
        host_uniforms(&mut rng, [t.len(), pixels]),
    );
    let perfect = vq_scheduler::index_to_log_onehot(x_0.clone(), k);
    let timesteps = TimestepBatch { t: t.to_vec(), p_t: vec![0.05; 4], num_timesteps: 20 };
    let terms = loss_config().loss(perfect, x_0, x_t, &timesteps, &rates);
    for value in to_vec(terms.vb).into_iter().chain(to_vec(terms.aux)).chain(to_vec(terms.loss)) {
        assert!(value.abs() < 1e-6, "{value}");
    }
}

#[test]
fn a_uniform_prediction_costs_log_k_per_token() {
    let config = replace_heavy_config();
    let tables = ScheduleTables::new(&config).unwrap();
    let (k, pixels) = (8usize, 5usize);
    let device = Default::default();
    let x_0 = ids(vec![3, 1, 4, 1, 5, 2, 6, 5, 3, 5], [2, pixels]);
    let x_t = ids(vec![3, 8, 8, 1, 0, 8, 6, 8, 8, 8], [2, pixels]);
    let t = [0usize, 12];
    let p_t = [0.05, 0.02];
    let rates = StepRates::<B>::gather(&tables, &t, &device);
    let uniform = Tensor::<B, 3>::full([2, k, pixels], -(k as f32).ln(), &device);
    let config = loss_config();
    let timesteps = TimestepBatch { t: t.to_vec(), p_t: p_t.to_vec(), num_timesteps: 20 };
    let terms = config.loss(uniform, x_0, x_t, &timesteps, &rates);
    let (vb, aux) = (to_vec(terms.vb), to_vec(terms.aux));
    let log_k = (k as f64).ln();
    // t = 0: both terms are the decoder NLL, pixels · log K.
    assert!((f64::from(vb[0]) - pixels as f64 * log_k).abs() < 1e-4);
    assert!((f64::from(aux[0]) - pixels as f64 * log_k).abs() < 1e-4);
    // t ≥ 1: the auxiliary term is KL(onehot ‖ uniform) = log K per token; the posterior KL is
    // positive and smaller (x_t already reveals the unmasked tokens).
    assert!((f64::from(aux[1]) - pixels as f64 * log_k).abs() < 1e-3);
    assert!(vb[1] > 0.0 && f64::from(vb[1]) < pixels as f64 * log_k, "{}", vb[1]);
    let aux_weight = |t: usize| config.auxiliary_loss_weight * (2.0 - t as f64 / 20.0);
    let expected = (f64::from(vb[0]) + aux_weight(0) * f64::from(aux[0])) / p_t[0]
        + (f64::from(vb[1]) + aux_weight(12) * f64::from(aux[1])) / p_t[1];
    let loss = f64::from(terms.loss.into_scalar());
    assert!((loss - expected / (2 * pixels) as f64).abs() < 1e-3 * loss, "{loss} vs {}", expected / 10.0);
}

#[test]
fn position_weights_select_masked_or_unmasked_tokens() {
    let tables = ScheduleTables::new(&replace_heavy_config()).unwrap();
    let device = Default::default();
    let mut rng = SplitMix64::new(4);
    let (log_p, _) = random_inputs(&mut rng, 1, 8, 6);
    let x_0 = ids(vec![0, 1, 2, 3, 4, 5], [1, 6]);
    let x_t = ids(vec![8, 8, 8, 3, 4, 7], [1, 6]);
    let rates = StepRates::<B>::gather(&tables, &[10], &device);
    let vb_with = |masked_weight: f64, unmasked_weight: f64| {
        let config =
            VqDiffusionLossConfig::new().with_masked_weight(masked_weight).with_unmasked_weight(unmasked_weight);
        let terms = config.loss(log_p.clone(), x_0.clone(), x_t.clone(), &TimestepBatch::constant(10, 1, 20), &rates);
        (f64::from(terms.vb.into_scalar()), f64::from(terms.aux.into_scalar()))
    };
    let (all, masked, unmasked) = (vb_with(1.0, 1.0), vb_with(1.0, 0.0), vb_with(0.0, 1.0));
    assert!(masked.0 > 0.0 && unmasked.0 > 0.0);
    assert!((all.0 - masked.0 - unmasked.0).abs() < 1e-5 * all.0);
    assert!((all.1 - masked.1 - unmasked.1).abs() < 1e-5 * all.1);
    assert_eq!(vb_with(0.0, 0.0), (0.0, 0.0));
}

#[test]
fn gradients_are_finite_with_every_kind_of_timestep_in_the_batch() {
    type A = Autodiff<B>;
    let device = Default::default();
    let tables = ScheduleTables::new(&VQDiffusionSchedulerConfig::new(9)).unwrap();
    let t = [0usize, 1, 50, 99];
    let mut rng = SplitMix64::new(6);
    let logits: Vec<f32> = (0..4 * 8 * 10).map(|_| rng.uniform(-3.0, 3.0) as f32).collect();
    let logits = Tensor::<A, 3>::from_data(TensorData::new(logits, [4, 8, 10]), &device).require_grad();
    let x_0: Vec<i64> = (0..40).map(|_| rng.below(8) as i64).collect();
    let x_t: Vec<i64> = x_0.iter().map(|&x| if rng.bernoulli(0.5) { 8 } else { x }).collect();
    let int = |values: Vec<i64>| Tensor::<A, 2, Int>::from_data(TensorData::new(values, [4, 10]), &device);
    let rates = StepRates::<A>::gather(&tables, &t, &device);
    let timesteps = TimestepBatch { t: t.to_vec(), p_t: vec![0.01; 4], num_timesteps: 100 };
    let terms = loss_config().loss(log_softmax(logits.clone(), 1), int(x_0), int(x_t), &timesteps, &rates);
    let gradients = terms.loss.backward();
    let gradient = logits.grad(&gradients).expect("logits are tracked");
    let values = gradient.into_data().convert::<f32>().into_vec::<f32>().unwrap();
    assert!(values.iter().all(|v| v.is_finite()));
    // Every sample receives gradient.
    for sample in values.chunks(8 * 10) {
        assert!(sample.iter().any(|v| v.abs() > 1e-6), "a sample got no gradient");
    }
}

#[test]
fn timestep_sampler_is_uniform_until_warm_then_follows_the_loss() {
    let steps = 10;
    let mut sampler = TimestepSampler::new(steps);
    let mut rng = SplitMix64::new(12);
    let TimestepBatch { t, p_t, num_timesteps } = sampler.sample(20_000, &mut rng);
    assert_eq!(num_timesteps, steps);
    assert!(p_t.iter().all(|&p| p == 0.1));
    let mut counts = vec![0usize; steps];
    t.iter().for_each(|&t| counts[t] += 1);
    assert!(counts.iter().all(|&c| (c as f64 - 2000.0).abs() < 5.0 * 42.5), "{counts:?}");

    // Loss t (so L_t = t² (1 − 0.9^n) after n updates). Warm after 11 reports of every t.
    for round in 0..11 {
        assert!(!sampler.is_warm(), "warm after {round} rounds");
        let t: Vec<usize> = (0..steps).collect();
        let losses: Vec<f64> = t.iter().map(|&t| t as f64).collect();
        sampler.update(&t, &losses);
    }
    assert!(sampler.is_warm());
    let decay = 1.0 - 0.9f64.powi(11);
    let mut weights: Vec<f64> = (0..steps).map(|t| ((t * t) as f64 * decay + 1e-10).sqrt() + 1e-4).collect();
    weights[0] = weights[1];
    let total: f64 = weights.iter().sum();
    let expected: Vec<f64> = weights.iter().map(|w| w / total).collect();
    let probabilities = sampler.probabilities();
    for (p, e) in probabilities.iter().zip(&expected) {
        assert!((p - e).abs() < 1e-12);
    }
    let TimestepBatch { t, p_t, .. } = sampler.sample(50_000, &mut rng);
    let mut counts = vec![0usize; steps];
    for (&t, &p) in t.iter().zip(&p_t) {
        counts[t] += 1;
        assert_eq!(p, probabilities[t]);
    }
    for (count, p) in counts.iter().zip(&expected) {
        let sd = (p * (1.0 - p) * 50_000.0).sqrt();
        assert!((*count as f64 - p * 50_000.0).abs() < 5.0 * sd, "{counts:?} vs {expected:?}");
    }
}
