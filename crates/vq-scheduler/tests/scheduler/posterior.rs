//! q_posterior and the transition helpers: normalisation, the closed form of eq. 11 of the paper,
//! and the sampling invariants of `step`.

use proptest::prelude::*;
use vq_scheduler::{
    index_to_log_onehot, log_add_exp_scalar, log_sum_exp_classes, FixedUniforms, ScheduleProbabilities,
    VQDiffusionSchedulerConfig, LOG_ONEHOT_ZERO,
};

use crate::common::{at, float3, int2, log_probs, scheduler, step_case, to_f32, to_i64};

/// |logsumexp over K + 1 classes| of the posterior of a normalised log p(x_0): the f32 log
/// tables carry ≤ ½ ulp (≈ 1e−6 at |log| ≈ 27) each, the rest is f32 arithmetic on values ≤ 70.
/// Measured maximum over 3000 random cases (K ≤ 8): 1.8e−6.
const NORMALISATION_TOL: f32 = 1e-5;
/// |log posterior − f64 closed form|, same error sources. Measured maximum over 3000 random
/// cases: 4.7e−6.
const CLOSED_FORM_TOL: f64 = 2e-5;

#[test]
fn log_onehot_zero_is_ln_of_1e_minus_30_in_f32() {
    assert_eq!(LOG_ONEHOT_ZERO, 1e-30f32.ln());
    assert_eq!(LOG_ONEHOT_ZERO as f64, -69.07755279541016);
    let onehot = to_f32(index_to_log_onehot(int2(vec![2, 0, 3], [1, 3]), 4));
    let z = LOG_ONEHOT_ZERO;
    // [1, 4, 3]: class rows, pixels along the last axis.
    assert_eq!(onehot, [z, 0.0, z, z, z, z, 0.0, z, z, z, z, 0.0]);
}

#[test]
fn log_q_rows_follow_the_transition_matrices() {
    let s = scheduler(3);
    let (t, k) = (5, 3);
    let x_t = int2(vec![1, 3], [1, 2]); // pixel 0 = class 1, pixel 1 = mask
    let onehot = index_to_log_onehot(x_t.clone(), k + 1);
    let step = to_f32(s.log_q_t_transitioning_to_known_class(t, x_t.clone(), onehot.clone(), false));
    let cumulative = to_f32(s.log_q_t_transitioning_to_known_class(t, x_t, onehot, true));
    let tables = s.tables();
    let lae = |a: f32, b: f32| a.max(b) + (-(a - b).abs()).exp().ln_1p();
    let (a, b, c) = (tables.log_at[t], tables.log_bt[t], tables.log_ct[t]);
    // [1, K + 1, 2]
    assert_eq!(step, [lae(z() + a, b), c, lae(a, b), c, lae(z() + a, b), c, z(), 0.0]);
    let (a, b, c) = (tables.log_cumprod_at[t], tables.log_cumprod_bt[t], tables.log_cumprod_ct[t]);
    assert_eq!(cumulative, [lae(z() + a, b), c, lae(a, b), c, lae(z() + a, b), c]);

    fn z() -> f32 {
        LOG_ONEHOT_ZERO
    }
}

/// p(x_{t−1} = k | x_t = j) = Σ_i p_i · Q_t[k → j] · Q̄_{t−1}[i → k] / Q̄_t[i → j] in f64, with the
/// exact transition matrices (zeros, not 1e−30).
fn closed_form(p: &ScheduleProbabilities, k: usize, t: usize, p_x_0: &[f64], j: usize) -> Vec<f64> {
    let step = |from: usize, to: usize| -> f64 {
        match (from == k, to == k) {
            (true, true) => 1.0,
            (true, false) => 0.0,
            (false, true) => p.ct[t],
            (false, false) => p.bt[t] + if from == to { p.at[t] } else { 0.0 },
        }
    };
    let cumulative = |s: usize, from: usize, to: usize| -> f64 {
        if to == k {
            p.ctt[s]
        } else {
            p.btt[s] + if from == to { p.att[s] } else { 0.0 }
        }
    };
    (0..=k)
        .map(|prev| (0..k).map(|i| p_x_0[i] * step(prev, j) * cumulative(t - 1, i, prev) / cumulative(t, i, j)).sum())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// For any normalised log p(x_0), t in [1, T) and x_t, the posterior over K + 1 classes
    /// sums to 1 (logsumexp ≈ 0).
    #[test]
    fn posterior_normalises(case in step_case()) {
        let s = scheduler(case.k);
        let shape = [case.batch, case.k, case.pixels];
        let posterior = s.q_posterior(
            log_probs(case.logits, shape), int2(case.x_t, [case.batch, case.pixels]), case.t);
        prop_assert_eq!(posterior.dims(), [case.batch, case.k + 1, case.pixels]);
        for v in to_f32(log_sum_exp_classes(posterior)) {
            prop_assert!(v.abs() <= NORMALISATION_TOL, "logsumexp = {}", v);
        }
    }

    /// The posterior equals eq. 11 of the paper evaluated in f64. One designed difference: for an
    /// unmasked x_t = j the paper's mask row is 0, while diffusers' one-hot trick leaves
    /// ln γ̄_{t−1} + ln(1e−30) + s there, s = ln Σ_i p_i / Q̄_t[i → j] (a probability below 1e−19
    /// for ITHQ); that row is checked against this expression instead.
    #[test]
    fn posterior_matches_the_closed_form(case in step_case()) {
        let s = scheduler(case.k);
        let probabilities = ScheduleProbabilities::new(s.config());
        let shape = [case.batch, case.k, case.pixels];
        let log_p = to_f32(log_probs(case.logits, shape));
        let log_p_tensor = float3(log_p.clone(), shape);
        let posterior = to_f32(s.q_posterior(log_p_tensor, int2(case.x_t.clone(), [case.batch, case.pixels]), case.t));
        let out_shape = [case.batch, case.k + 1, case.pixels];
        let (k, t) = (case.k, case.t);
        for b in 0..case.batch {
            for n in 0..case.pixels {
                let p_x_0: Vec<f64> = (0..k).map(|i| f64::from(log_p[at(shape, b, i, n)]).exp()).collect();
                let j = case.x_t[b * case.pixels + n] as usize;
                let mut expected: Vec<f64> = closed_form(&probabilities, k, t, &p_x_0, j).iter().map(|e| e.ln()).collect();
                if j != k {
                    let s: f64 = (0..k)
                        .map(|i| p_x_0[i] / (probabilities.btt[t] + if i == j { probabilities.att[t] } else { 0.0 }))
                        .sum();
                    expected[k] = probabilities.ctt[t - 1].ln() + f64::from(LOG_ONEHOT_ZERO) + s.ln();
                }
                for (prev, &e) in expected.iter().enumerate() {
                    let got = f64::from(posterior[at(out_shape, b, prev, n)]);
                    prop_assert!((got - e).abs() <= CLOSED_FORM_TOL,
                        "b {} n {} x_t {} row {}: {} vs {}", b, n, j, prev, got, e);
                }
            }
        }
    }

    /// A token that is not masked at t is never the mask at t − 1 (whatever the uniforms,
    /// including u = 0 and u = 1 − 2⁻²⁴), and every id stays in 0..=K.
    #[test]
    fn unmasked_tokens_are_never_masked_again(case in step_case()) {
        let s = scheduler(case.k);
        let shape = [case.batch, case.k, case.pixels];
        let mut noise = FixedUniforms::new([float3(case.uniforms, [case.batch, case.k + 1, case.pixels])]);
        let prev = to_i64(s.step(
            log_probs(case.logits, shape), case.t, int2(case.x_t.clone(), [case.batch, case.pixels]), &mut noise));
        prop_assert_eq!(noise.remaining(), 0);
        for (&before, &after) in case.x_t.iter().zip(&prev) {
            prop_assert!((0..=case.k as i64).contains(&after));
            if before != case.k as i64 {
                prop_assert!(after != case.k as i64, "unmasked {} became the mask", before);
            }
        }
    }

    /// At t = 0 the mask class cannot be sampled: the logits are the model output (K rows) and
    /// the draw has shape [batch, K, pixels].
    #[test]
    fn the_last_step_never_samples_the_mask(case in step_case()) {
        let s = scheduler(case.k);
        let shape = [case.batch, case.k, case.pixels];
        let uniforms = case.uniforms[..case.batch * case.k * case.pixels].to_vec();
        let mut noise = FixedUniforms::new([float3(uniforms, shape)]);
        let prev = to_i64(s.step(log_probs(case.logits, shape), 0, int2(case.x_t, [case.batch, case.pixels]), &mut noise));
        prop_assert!(prev.iter().all(|&id| (0..case.k as i64).contains(&id)));
    }
}

#[test]
fn posterior_of_a_masked_pixel_has_the_mask_row_of_the_paper() {
    // Masked x_t: the mask row is log(γ̄_{t−1} / γ̄_t) whatever p(x_0).
    let k = 5;
    let s = scheduler(k);
    let p = ScheduleProbabilities::new(&VQDiffusionSchedulerConfig::new(k + 1));
    let log_p = log_probs(vec![0.3, -1.0, 2.0, 0.0, 1.5], [1, k, 1]);
    for t in [1, 37, 99] {
        let posterior = to_f32(s.q_posterior(log_p.clone(), int2(vec![k as i64], [1, 1]), t));
        let expected = (p.ctt[t - 1] / p.ctt[t]).ln();
        assert!((f64::from(posterior[k]) - expected).abs() < 1e-5, "t {t}: {} vs {expected}", posterior[k]);
    }
}

#[test]
fn log_add_exp_and_log_sum_exp_follow_torch_at_infinities() {
    let x = float3(vec![f32::NEG_INFINITY, 0.0, -3.0, f32::INFINITY], [1, 4, 1]);
    // torch.logaddexp(x, b) for b = −1: (−1, 0.31326169, −0.87307198, inf).
    let got = to_f32(log_add_exp_scalar(x.clone(), -1.0));
    let expected = [-1.0f32, 0.313_261_7, -0.873_072, f32::INFINITY];
    for (g, e) in got.iter().zip(expected) {
        assert!(g == &e || (g - e).abs() < 1e-6, "{got:?} vs {expected:?}");
    }
    // b = −inf leaves x (torch: logaddexp(−inf, −inf) = −inf); b = +inf gives +inf everywhere.
    let same = to_f32(log_add_exp_scalar(x.clone(), f32::NEG_INFINITY));
    assert_eq!(same, [f32::NEG_INFINITY, 0.0, -3.0, f32::INFINITY]);
    assert!(to_f32(log_add_exp_scalar(x, f32::INFINITY)).iter().all(|v| *v == f32::INFINITY));
    // logsumexp over an all-(−inf) column is −inf, not NaN (torch zeroes an infinite max).
    let columns = float3(vec![f32::NEG_INFINITY, 0.0, f32::NEG_INFINITY, 0.0], [1, 2, 2]);
    let lse = to_f32(log_sum_exp_classes(columns));
    assert_eq!(lse[0], f32::NEG_INFINITY);
    assert!((lse[1] - std::f32::consts::LN_2).abs() < 1e-6);
}
