//! Strided chains and their jumps: the skip-0 chain is the ordinary one, both jumps reduce to the
//! ordinary step, the exact jump is a normalised closed form built on a product of transitions.

use proptest::prelude::*;
use vq_scheduler::{
    jump_probabilities, log_sum_exp_classes, strided_timesteps, FixedUniforms, ScheduleProbabilities, SkipPosterior,
    VQDiffusionSchedulerConfig,
};

use crate::common::{at, float3, int2, log_probs, scheduler, step_case, to_f32, to_i64};

/// |logsumexp − 0| of an exact jump's posterior: the same error sources as the one-step
/// posterior's (f32 logs of f64 probabilities, f32 arithmetic on values ≤ 70).
const NORMALISATION_TOL: f32 = 1e-5;
/// |log posterior − f64 closed form| (the one-step posterior's tolerance).
const CLOSED_FORM_TOL: f64 = 2e-5;

#[test]
fn strided_chains_call_at_every_k_plus_first_timestep_and_at_zero() {
    assert_eq!(strided_timesteps(49, 1).len(), 26);
    assert_eq!(strided_timesteps(49, 1)[..3], [49, 47, 45]);
    assert_eq!(strided_timesteps(49, 1)[24..], [1, 0]);
    assert_eq!(strided_timesteps(49, 2).len(), 18);
    assert_eq!(strided_timesteps(49, 4), [49, 44, 39, 34, 29, 24, 19, 14, 9, 4, 0]);
    assert_eq!(strided_timesteps(99, 1).len(), 51, "the original's infer_speed 2: 51 calls");
    assert_eq!(strided_timesteps(99, 2).len(), 34, "infer_speed 3: 34 calls");
    assert_eq!(strided_timesteps(99, 200), [99, 0]);
    assert_eq!(strided_timesteps(99, usize::MAX), [99, 0]);
    for start in [0, 1, 7, 49, 99] {
        assert_eq!(strided_timesteps(start, 0), (0..=start).rev().collect::<Vec<_>>());
        for skip in 0..12 {
            let chain = strided_timesteps(start, skip);
            assert_eq!((chain[0], *chain.last().unwrap()), (start, 0));
            assert!(chain.windows(2).all(|w| w[0] > w[1] && w[0] - w[1] <= skip + 1), "{chain:?}");
        }
    }
}

#[test]
fn a_skip_0_schedule_is_set_timesteps() {
    let mut plain = scheduler(4);
    let mut strided = scheduler(4);
    for steps in [1, 10, 50, 100] {
        plain.set_timesteps(steps).unwrap();
        strided.set_strided_timesteps(steps, 0).unwrap();
        assert_eq!(plain.timesteps(), strided.timesteps());
    }
    strided.set_strided_timesteps(100, 3).unwrap();
    assert_eq!(strided.timesteps(), strided_timesteps(99, 3));
    assert!(strided.set_strided_timesteps(101, 3).is_err());
    assert!(strided.set_strided_timesteps(0, 3).is_err());
}

/// The transition over s + 1..=t of [`jump_probabilities`] is the product of the per-step
/// transition matrices, computed in f64 on the (K + 1)-state chain.
#[test]
fn a_jump_transition_is_the_product_of_the_steps_it_skips() {
    let k = 3;
    let p = ScheduleProbabilities::new(&VQDiffusionSchedulerConfig::new(k + 1));
    // Q_t[from][to] of one step t.
    let step = |t: usize| -> Vec<Vec<f64>> {
        (0..=k)
            .map(|from| {
                (0..=k)
                    .map(|to| match (from == k, to == k) {
                        (true, true) => 1.0,
                        (true, false) => 0.0,
                        (false, true) => p.ct[t],
                        (false, false) => p.bt[t] + if from == to { p.at[t] } else { 0.0 },
                    })
                    .collect()
            })
            .collect()
    };
    let product = |a: &[Vec<f64>], b: &[Vec<f64>]| -> Vec<Vec<f64>> {
        (0..=k).map(|i| (0..=k).map(|j| (0..=k).map(|m| a[i][m] * b[m][j]).sum()).collect()).collect()
    };
    for (s, t) in [(0, 1), (3, 5), (10, 30), (47, 99), (0, 99)] {
        let mut q = step(s + 1);
        for r in s + 2..=t {
            q = product(&q, &step(r));
        }
        let (a, b, c) = jump_probabilities(&p, k, s, t);
        for from in 0..k {
            assert!((q[from][from] - (a + b)).abs() < 1e-12, "s {s} t {t}: keep {} vs {}", q[from][from], a + b);
            assert!((q[from][(from + 1) % k] - b).abs() < 1e-15 + 1e-9 * b, "s {s} t {t}: change");
            assert!((q[from][k] - c).abs() < 1e-12, "s {s} t {t}: mask {} vs {c}", q[from][k]);
        }
    }
    // One step: exactly the per-step values (the same f64 operations).
    for t in 1..100 {
        assert_eq!(jump_probabilities(&p, k, t - 1, t), (p.at[t], p.bt[t], p.ct[t]), "t {t}");
    }
}

/// p(x_s = k | x_t = j) = Σ_i p_i · Q_{s→t}[k → j] · Q̄_s[i → k] / Q̄_t[i → j] in f64.
fn closed_form(p: &ScheduleProbabilities, k: usize, s: usize, t: usize, p_x_0: &[f64], j: usize) -> Vec<f64> {
    let (a, b, c) = jump_probabilities(p, k, s, t);
    let jump = |from: usize, to: usize| -> f64 {
        match (from == k, to == k) {
            (true, true) => 1.0,
            (true, false) => 0.0,
            (false, true) => c,
            (false, false) => b + if from == to { a } else { 0.0 },
        }
    };
    let cumulative = |r: usize, from: usize, to: usize| -> f64 {
        if to == k {
            p.ctt[r]
        } else {
            p.btt[r] + if from == to { p.att[r] } else { 0.0 }
        }
    };
    (0..=k)
        .map(|prev| (0..k).map(|i| p_x_0[i] * jump(prev, j) * cumulative(s, i, prev) / cumulative(t, i, j)).sum())
        .collect()
}

/// A masked pixel's mask row: γ̄_s / γ̄_t for the exact jump, γ̄_s / γ̄_{s+1} for the original's
/// one-step rule (which unmasks far fewer pixels per call).
#[test]
fn the_two_jumps_keep_different_shares_of_masked_pixels() {
    let k = 5;
    let s = scheduler(k);
    let p = s.probabilities().clone();
    let log_p = log_probs(vec![0.3, -1.0, 2.0, 0.0, 1.5], [1, k, 1]);
    let masked = int2(vec![k as i64], [1, 1]);
    for (t, next) in [(99, 95), (60, 40), (9, 0)] {
        let exact = to_f32(s.q_posterior_jump(log_p.clone(), masked.clone(), t, next));
        let one_step = to_f32(s.q_posterior(log_p.clone(), masked.clone(), next + 1));
        let exact_expected = (p.ctt[next] / p.ctt[t]).ln();
        let one_step_expected = (p.ctt[next] / p.ctt[next + 1]).ln();
        assert!((f64::from(exact[k]) - exact_expected).abs() < 1e-5, "t {t}: {} vs {exact_expected}", exact[k]);
        assert!((f64::from(one_step[k]) - one_step_expected).abs() < 1e-5, "t {t}");
        assert!(exact[k] < one_step[k], "t {t}: the exact jump unmasks more");
    }
}

/// A random jump problem: a step case with a target s in 0..t.
fn jump_case() -> impl Strategy<Value = (crate::common::StepCase, usize)> {
    step_case().prop_flat_map(|case| {
        let t = case.t;
        (Just(case), 0..t)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// For K = 0 skipped steps the exact posterior is the one-step posterior, bit for bit.
    #[test]
    fn the_exact_jump_over_one_step_is_the_one_step_posterior(case in step_case()) {
        let s = scheduler(case.k);
        let shape = [case.batch, case.k, case.pixels];
        let x_t = int2(case.x_t.clone(), [case.batch, case.pixels]);
        let log_p = log_probs(case.logits, shape);
        let one_step = to_f32(s.q_posterior(log_p.clone(), x_t.clone(), case.t));
        let jump = to_f32(s.q_posterior_jump(log_p, x_t, case.t, case.t - 1));
        prop_assert_eq!(one_step, jump);
    }

    /// `step_to(t, t − 1)` is `step(t)` for both posteriors, and at t = 0 too (same uniforms).
    #[test]
    fn a_step_to_the_next_timestep_is_the_ordinary_step(case in step_case()) {
        let s = scheduler(case.k);
        let shape = [case.batch, case.k, case.pixels];
        let x_t = int2(case.x_t.clone(), [case.batch, case.pixels]);
        let log_p = log_probs(case.logits, shape);
        for t in [case.t, 0] {
            let classes = if t == 0 { case.k } else { case.k + 1 };
            let uniforms = case.uniforms[..case.batch * classes * case.pixels].to_vec();
            let noise = || FixedUniforms::new([float3(uniforms.clone(), [case.batch, classes, case.pixels])]);
            let ordinary = to_i64(s.step(log_p.clone(), t, x_t.clone(), &mut noise()));
            for posterior in [SkipPosterior::OneStep, SkipPosterior::Exact] {
                let strided = to_i64(s.step_to(log_p.clone(), t, t.saturating_sub(1), x_t.clone(), posterior, &mut noise()));
                prop_assert_eq!(&strided, &ordinary, "t {} {:?}", t, posterior);
            }
        }
    }

    /// The exact jump's probabilities are non-negative, finite and sum to 1 over K + 1 classes.
    #[test]
    fn the_exact_jump_normalises((case, next) in jump_case()) {
        let s = scheduler(case.k);
        let shape = [case.batch, case.k, case.pixels];
        let posterior = s.q_posterior_jump(
            log_probs(case.logits, shape), int2(case.x_t, [case.batch, case.pixels]), case.t, next);
        prop_assert_eq!(posterior.dims(), [case.batch, case.k + 1, case.pixels]);
        for v in to_f32(posterior.clone()) {
            prop_assert!(!v.is_nan() && v <= NORMALISATION_TOL, "log-probability {}", v);
        }
        for v in to_f32(log_sum_exp_classes(posterior)) {
            prop_assert!(v.abs() <= NORMALISATION_TOL, "logsumexp = {}", v);
        }
    }

    /// The exact jump equals its closed form in f64 (on the rows the one-hot trick leaves alone:
    /// for an unmasked x_t the mask row is ≈ 0 in probability, as in the one-step posterior).
    #[test]
    fn the_exact_jump_matches_the_closed_form((case, next) in jump_case()) {
        let s = scheduler(case.k);
        let probabilities = s.probabilities().clone();
        let shape = [case.batch, case.k, case.pixels];
        let log_p = to_f32(log_probs(case.logits, shape));
        let posterior = to_f32(s.q_posterior_jump(
            float3(log_p.clone(), shape), int2(case.x_t.clone(), [case.batch, case.pixels]), case.t, next));
        let out_shape = [case.batch, case.k + 1, case.pixels];
        let k = case.k;
        for b in 0..case.batch {
            for n in 0..case.pixels {
                let p_x_0: Vec<f64> = (0..k).map(|i| f64::from(log_p[at(shape, b, i, n)]).exp()).collect();
                let j = case.x_t[b * case.pixels + n] as usize;
                let expected = closed_form(&probabilities, k, next, case.t, &p_x_0, j);
                let rows = if j == k { k + 1 } else { k };
                for (prev, &e) in expected.iter().enumerate().take(rows) {
                    let got = f64::from(posterior[at(out_shape, b, prev, n)]);
                    prop_assert!((got - e.ln()).abs() <= CLOSED_FORM_TOL,
                        "b {} n {} x_t {} row {}: {} vs {}", b, n, j, prev, got, e.ln());
                }
                if j != k {
                    let mask = f64::from(posterior[at(out_shape, b, k, n)]).exp();
                    prop_assert!(mask < 1e-20, "an unmasked x_t is masked at s with probability {}", mask);
                }
            }
        }
    }

    /// Every id a jump draws is in 0..=K, and an unmasked pixel is never masked again.
    #[test]
    fn jumps_never_mask_an_unmasked_pixel((case, next) in jump_case()) {
        let s = scheduler(case.k);
        let shape = [case.batch, case.k, case.pixels];
        for posterior in [SkipPosterior::OneStep, SkipPosterior::Exact] {
            let mut noise = FixedUniforms::new([float3(case.uniforms.clone(), [case.batch, case.k + 1, case.pixels])]);
            let prev = to_i64(s.step_to(log_probs(case.logits.clone(), shape), case.t, next,
                int2(case.x_t.clone(), [case.batch, case.pixels]), posterior, &mut noise));
            prop_assert_eq!(noise.remaining(), 0);
            for (&before, &after) in case.x_t.iter().zip(&prev) {
                prop_assert!((0..=case.k as i64).contains(&after));
                prop_assert!(before == case.k as i64 || after != case.k as i64, "{:?}: {} masked", posterior, before);
            }
        }
    }
}
