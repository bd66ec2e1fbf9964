//! Classifier-free guidance, truncation and the −70 clamp.

use proptest::prelude::*;
use vq_scheduler::{clamp_log_probs, classifier_free_guidance, log_sum_exp_classes, truncate, truncation_keep_mask};

use crate::common::{at, float3, log_probs, to_f32};

/// Slack on probability masses compared with the rate: the kept set is decided on f32-rounded
/// partial sums (≤ 6e−8 off) of f32 exponentials.
const MASS_TOL: f64 = 1e-6;

fn log_prob_case() -> impl Strategy<Value = ([usize; 3], Vec<f32>)> {
    (1usize..=2, 1usize..=12, 1usize..=5)
        .prop_flat_map(|(b, k, n)| (Just([b, k, n]), prop::collection::vec(-6.0f32..6.0, b * k * n)))
}

/// The definition of the keep mask, written plainly: per pixel, sort (value descending, class
/// ascending), accumulate exp in f64 in that order, keep while the f32 partial sum before a
/// class is < rate. Returned in `truncation_keep_mask`'s class-minor layout.
fn reference_keep_mask(log_p: &[f32], [batch, k, pixels]: [usize; 3], rate: f32) -> Vec<bool> {
    let mut keep = vec![false; log_p.len()];
    for b in 0..batch {
        for n in 0..pixels {
            let mut column: Vec<(f32, usize)> = (0..k).map(|c| (log_p[at([batch, k, pixels], b, c, n)], c)).collect();
            column.sort_by(|x, y| y.0.partial_cmp(&x.0).unwrap().then(x.1.cmp(&y.1)));
            let mut sum = 0.0f64;
            for (position, &(value, class)) in column.iter().enumerate() {
                if position > 0 && (sum as f32) >= rate {
                    break;
                }
                keep[(b * pixels + n) * k + class] = true;
                sum += f64::from(value.exp());
            }
        }
    }
    keep
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The fast keep mask (selection search + threaded blocks) equals the plain definition, for
    /// class counts that exercise the bisection (K ≫ 32), rates up to and including 1.0, and
    /// logits from flat to peaked.
    #[test]
    fn keep_mask_equals_its_definition(
        (shape, logits) in (1usize..=2, 1usize..=300, 1usize..=20).prop_flat_map(|(b, k, n)| {
            (Just([b, k, n]), prop::collection::vec(-1.0f32..1.0, b * k * n))
        }),
        spread in prop_oneof![Just(0.1f32), Just(1.0), Just(3.0), Just(12.0)],
        rate in prop_oneof![Just(1.0f32), Just(0.86), 0.0f32..=1.0],
    ) {
        let log_p = to_f32(log_probs(logits.iter().map(|v| v * spread).collect(), shape));
        prop_assert_eq!(truncation_keep_mask(&log_p, shape, rate), reference_keep_mask(&log_p, shape, rate));
    }

    /// Truncation keeps, per pixel, the shortest prefix of the classes sorted by probability
    /// whose mass reaches the rate (the top class always), leaves kept values untouched and sets
    /// the rest to −inf.
    #[test]
    fn truncation_keeps_the_shortest_prefix_reaching_the_rate(
        (shape, logits) in log_prob_case(), rate in 0.0f32..=1.0,
    ) {
        let log_p = to_f32(log_probs(logits, shape));
        let out = to_f32(truncate(float3(log_p.clone(), shape), rate));
        let [batch, k, pixels] = shape;
        for b in 0..batch {
            for n in 0..pixels {
                let column: Vec<(f32, f32)> = (0..k).map(|c| (log_p[at(shape, b, c, n)], out[at(shape, b, c, n)])).collect();
                let kept: Vec<f32> = column.iter().filter(|(_, o)| *o != f32::NEG_INFINITY).map(|(l, _)| *l).collect();
                let removed: Vec<f32> = column.iter().filter(|(_, o)| *o == f32::NEG_INFINITY).map(|(l, _)| *l).collect();
                for (l, o) in &column {
                    prop_assert!(*o == f32::NEG_INFINITY || o == l, "kept values are unchanged");
                }
                let top = column.iter().map(|(l, _)| *l).fold(f32::NEG_INFINITY, f32::max);
                prop_assert!(kept.contains(&top), "the top class is kept");
                let min_kept = kept.iter().copied().fold(f32::INFINITY, f32::min);
                let max_removed = removed.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                prop_assert!(min_kept >= max_removed, "kept classes are a prefix of the sorted order");
                let mass = |v: &[f32]| v.iter().map(|&l| f64::from(l.exp())).sum::<f64>();
                let kept_mass = mass(&kept);
                // Shortest: without its least probable class the prefix is still below the rate.
                if kept.len() > 1 {
                    prop_assert!(kept_mass - f64::from(min_kept.exp()) < f64::from(rate) + MASS_TOL,
                        "prefix is not the shortest: {} without its last vs rate {}", kept_mass, rate);
                }
                // Reaching: if anything was cut, the kept mass reached the rate.
                if !removed.is_empty() {
                    prop_assert!(kept_mass >= f64::from(rate) - MASS_TOL,
                        "kept mass {} below rate {}", kept_mass, rate);
                }
            }
        }
    }

    /// Guidance with scale 1 returns the conditional branch (renormalising an already
    /// normalised input changes it by rounding only).
    #[test]
    fn guidance_with_scale_1_returns_the_conditional_branch(
        (shape, logits) in log_prob_case(), other in prop::collection::vec(-6.0f32..6.0, 60),
    ) {
        let cond = log_probs(logits, shape);
        let uncond_logits: Vec<f32> = other.iter().cycle().take(shape.iter().product()).copied().collect();
        let uncond = log_probs(uncond_logits, shape);
        let guided = to_f32(classifier_free_guidance(uncond, cond.clone(), 1.0));
        for (g, c) in guided.iter().zip(to_f32(cond)) {
            // (c − u) + u rounds within 1 ulp of max(|c|, |u|) ≤ 2⁻²⁰ at ~ 20; the logsumexp
            // of a normalised column is within ~1e−6 of 0.
            prop_assert!((g - c).abs() <= 1e-5, "{} vs {}", g, c);
        }
    }

    /// Guided log-probabilities are normalised over classes for any scale.
    #[test]
    fn guidance_renormalises((shape, logits) in log_prob_case(), scale in 0.0f32..10.0) {
        let cond = log_probs(logits.clone(), shape);
        let uncond = log_probs(logits.iter().map(|v| -v).collect(), shape);
        let guided = classifier_free_guidance(uncond, cond, scale);
        for v in to_f32(log_sum_exp_classes(guided)) {
            prop_assert!(v.abs() <= 1e-5, "logsumexp {}", v);
        }
    }
}

#[test]
fn truncation_of_a_known_column() {
    // Classes in shuffled order with p = [0.1, 0.4, 0.2, 0.3]; one pixel.
    let log_p: Vec<f32> = [0.1f32, 0.4, 0.2, 0.3].iter().map(|p| p.ln()).collect();
    let keep = |rate| truncation_keep_mask(&log_p, [1, 4, 1], rate);
    // Sorted: 0.4 (class 1), 0.3 (3), 0.2 (2), 0.1 (0); running sums 0.4, 0.7, 0.9, 1.0.
    assert_eq!(keep(0.3), [false, true, false, false]);
    assert_eq!(keep(0.5), [false, true, false, true]);
    assert_eq!(keep(0.86), [false, true, true, true]);
    assert_eq!(keep(0.95), [true, true, true, true]);
    assert_eq!(keep(0.0), [false, true, false, false], "the top class survives rate 0");
}

#[test]
fn rate_1_still_cuts_once_the_f32_running_sum_reaches_1() {
    // p ≈ [1, 9e−14, 9e−14]: the first partial sum is 1.0 in f32, so only the top class stays.
    let out = to_f32(truncate(float3(vec![0.0, -30.0, -30.0], [1, 3, 1]), 1.0));
    assert_eq!(out, [0.0, f32::NEG_INFINITY, f32::NEG_INFINITY]);
}

#[test]
fn running_sum_accumulates_in_f64() {
    // p = [0.5, 1000 × 2⁻²⁵]. In f32, 0.5 + 2⁻²⁵ rounds back to 0.5 (half an ulp, ties to even),
    // so an f32 running sum would never reach 0.50002 and would keep all 1001 classes; torch's
    // f64 accumulation crosses it after ≈ 671 small classes.
    let small = (2.0f32).powi(-25).ln();
    let mut log_p = vec![0.5f32.ln()];
    log_p.extend(std::iter::repeat_n(small, 1000));
    let kept = truncation_keep_mask(&log_p, [1, 1001, 1], 0.50002).iter().filter(|&&k| k).count();
    assert!((600..740).contains(&kept), "kept {kept} classes");
}

#[test]
fn ties_are_broken_by_class_id() {
    // Four equal classes; rate 0.5 keeps two of them: the lowest ids.
    let log_p = vec![0.25f32.ln(); 4];
    assert_eq!(truncation_keep_mask(&log_p, [1, 4, 1], 0.5), [true, true, false, false]);
}

#[test]
fn a_nan_column_keeps_only_the_nan_like_torch() {
    // torch sorts NaN first; the NaN partial sum then fails every `< rate` comparison.
    let out = to_f32(truncate(float3(vec![-1.0, f32::NAN, -0.5], [1, 3, 1]), 0.9));
    assert!(out[1].is_nan());
    assert_eq!((out[0], out[2]), (f32::NEG_INFINITY, f32::NEG_INFINITY));
}

#[test]
fn the_keep_mask_is_class_minor_and_truncate_maps_it_back() {
    // Two pixels whose top classes differ; rate 0 keeps only the top class of each.
    let log_p: Vec<f32> = [[0.7f32, 0.1], [0.2, 0.2], [0.1, 0.7]].iter().flatten().map(|p| p.ln()).collect();
    assert_eq!(truncation_keep_mask(&log_p, [1, 3, 2], 0.0), [true, false, false, false, false, true]);
    let out = to_f32(truncate(float3(log_p.clone(), [1, 3, 2]), 0.0));
    let ninf = f32::NEG_INFINITY;
    assert_eq!(out, [log_p[0], ninf, ninf, ninf, ninf, log_p[5]]);
}

#[test]
fn clamp_raises_everything_below_minus_70() {
    let out = to_f32(clamp_log_probs(float3(vec![f32::NEG_INFINITY, -100.0, -70.0, -69.5, 0.0], [1, 5, 1])));
    assert_eq!(out, [-70.0, -70.0, -70.0, -69.5, 0.0]);
}
