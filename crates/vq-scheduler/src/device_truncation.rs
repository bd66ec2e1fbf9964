//! Truncation without leaving the device: the same kept set as [`truncate`](crate::truncate),
//! found by bisecting a log-probability threshold instead of sorting.
//!
//! Why it is the same set: sorted by descending probability, torch keeps class i iff the mass
//! of the classes before it is below the rate. For distinct values that mass is
//! M(c) = Σ_{p_j > p_c} p_j, which only shrinks as p_c grows, so the kept classes are exactly
//! those with log p ≥ τ, where τ is the smallest class value with M(τ) < rate. Each bisection step
//! halves a bracket (lo, hi] around τ with one masked sum over the classes: M(hi) < rate ≤ M(lo)
//! throughout, and once the bracket is narrower than the gap between neighbouring values it
//! holds τ alone, so "log p > lo" is the kept set.
//!
//! What differs from the host path: the masses are f32 sums in the backend's order, not torch's
//! f64 running sum in sorted order, so a class whose mass M lies within float rounding of the
//! rate can land on the other side; classes closer than the final bracket (≈ 1e−6 in log
//! probability, [`BISECTION_STEPS`]) are kept or cut together; and a rate ≥ 1 keeps every
//! class (torch's f32 running sum reaches 1 before the end and cuts a tail of mass below 2⁻²⁴,
//! which the −70 clamp that follows makes nearly irrelevant). Use it where the tokens need not
//! match diffusers bit for bit — with [`DeviceNoise`](crate::DeviceNoise) they never do — and a
//! read-back per step costs more than 32 passes over the classes (GPUs).

use burn::tensor::{backend::Backend, Tensor};

/// Bisection steps: the bracket starts at most ≈ 100 wide (log-probabilities below
/// [`SEARCH_FLOOR`] carry no f32 mass) and ends below 100 / 2³² ≈ 2.3e−8, finer than f32
/// resolves log-probabilities of magnitude ≥ 0.5.
pub const BISECTION_STEPS: usize = 32;

/// The lowest threshold searched: exp(−104) underflows to 0 in f32, so classes below carry no mass.
const SEARCH_FLOOR: f32 = -104.0;

/// [`truncate`](crate::truncate) computed on the device: entries outside the kept set become
/// −inf. `rate` in (0, 1]; ≥ 1 returns `log_p` unchanged.
///
/// # Shapes
/// - `log_p`: `[batch, K, pixels]`, normalised over K (guidance's output)
/// - output: `[batch, K, pixels]`
pub fn truncate_on_device<B: Backend>(log_p: Tensor<B, 3>, rate: f32) -> Tensor<B, 3> {
    if rate >= 1.0 {
        return log_p;
    }
    let lo = log_p.clone().min_dim(1).clamp_min(SEARCH_FLOOR).sub_scalar(1.0); // [batch, 1, pixels]
    let hi = log_p.clone().max_dim(1);
    let lo = threshold_bracket(log_p.clone(), lo, hi, rate);
    let cut = log_p.clone().lower_equal(lo.expand(log_p.dims()));
    log_p.mask_fill(cut, f32::NEG_INFINITY)
}

/// The lower end `lo` of the final bracket (lo, hi] around the threshold τ, per pixel.
///
/// # Shapes
/// - `log_p`: `[batch, K, pixels]`; `lo`, `hi`, output: `[batch, 1, pixels]`
fn threshold_bracket<B: Backend>(log_p: Tensor<B, 3>, lo: Tensor<B, 3>, hi: Tensor<B, 3>, rate: f32) -> Tensor<B, 3> {
    let shape = log_p.dims();
    let p = log_p.clone().exp();
    let (mut lo, mut hi) = (lo, hi);
    for _ in 0..BISECTION_STEPS {
        let mid = (lo.clone() + hi.clone()).mul_scalar(0.5);
        // M(mid): the mass of the classes strictly above mid.
        let above = log_p.clone().greater(mid.clone().expand(shape));
        let mass = p.clone().mask_fill(above.bool_not(), 0.0).sum_dim(1);
        let below_rate = mass.lower_elem(rate);
        hi = hi.mask_where(below_rate.clone(), mid.clone());
        lo = mid.mask_where(below_rate, lo);
    }
    lo
}

#[cfg(test)]
mod tests {
    use burn::backend::NdArray;
    use burn::tensor::{Distribution, TensorData};
    use proptest::prelude::*;

    use super::*;
    use crate::truncate;

    type B = NdArray<f32>;

    /// Normalised log-probabilities from random logits.
    fn log_probs(values: Vec<f32>, shape: [usize; 3]) -> Tensor<B, 3> {
        let logits = Tensor::<B, 3>::from_data(TensorData::new(values, shape), &Default::default());
        crate::log_sum_exp_classes(logits.clone()).neg() + logits
    }

    fn kept(log_p: Tensor<B, 3>) -> Vec<bool> {
        log_p.into_data().into_vec::<f32>().expect("f32").iter().map(|v| v.is_finite()).collect()
    }

    /// The host path's kept set with each class's mass before it (f64, descending order), so
    /// that a disagreement can be checked to lie within rounding of the rate.
    fn masses_before(log_p: &[f32], [batch, classes, pixels]: [usize; 3]) -> Vec<f64> {
        let mut before = vec![0.0; log_p.len()];
        for b in 0..batch {
            for x in 0..pixels {
                let index = |k: usize| (b * classes + k) * pixels + x;
                let mut order: Vec<usize> = (0..classes).collect();
                order.sort_by(|&i, &j| log_p[index(j)].total_cmp(&log_p[index(i)]));
                let mut sum = 0.0f64;
                for k in order {
                    before[index(k)] = sum;
                    sum += f64::from(log_p[index(k)].exp());
                }
            }
        }
        before
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Same kept set as the exact host path, except for classes whose mass before them lies
        /// within f32 rounding of the rate; the top class always survives.
        #[test]
        fn keeps_what_the_exact_path_keeps(
            logits in proptest::collection::vec(-8.0f32..8.0, 2 * 24 * 5),
            rate in 0.05f32..0.999,
        ) {
            let shape = [2, 24, 5];
            let log_p = log_probs(logits, shape);
            let values = log_p.clone().into_data().into_vec::<f32>().unwrap();
            let exact = kept(truncate(log_p.clone(), rate));
            let device = kept(truncate_on_device(log_p, rate));
            let before = masses_before(&values, shape);
            for (i, (&e, &d)) in exact.iter().zip(&device).enumerate() {
                prop_assert!(e == d || (before[i] - f64::from(rate)).abs() < 1e-5,
                    "class entry {i}: exact {e}, device {d}, mass before {} vs rate {rate}", before[i]);
            }
            for b in 0..2 {
                for x in 0..5 {
                    let top = (0..24).max_by(|&i, &j| values[(b * 24 + i) * 5 + x].total_cmp(&values[(b * 24 + j) * 5 + x])).unwrap();
                    prop_assert!(device[(b * 24 + top) * 5 + x]);
                }
            }
        }
    }

    #[test]
    fn a_rate_of_one_keeps_everything_and_a_tiny_rate_only_the_top_class() {
        let log_p = log_probs(
            Tensor::<B, 3>::random([1, 64, 3], Distribution::Normal(0.0, 3.0), &Default::default())
                .into_data()
                .into_vec::<f32>()
                .unwrap(),
            [1, 64, 3],
        );
        assert!(kept(truncate_on_device(log_p.clone(), 1.0)).iter().all(|&k| k));
        let only_top = kept(truncate_on_device(log_p, 1e-6));
        assert_eq!(only_top.iter().filter(|&&k| k).count(), 3, "one class per pixel");
    }

    #[test]
    fn the_exact_and_device_paths_agree_on_a_known_distribution() {
        // One pixel, probabilities 0.5, 0.25, 0.125, 0.0625, 0.0625: at rate 0.8 the masses
        // before them are 0, 0.5, 0.75, 0.875, 0.9375, so the first three are kept.
        let p = [0.5f32, 0.25, 0.125, 0.0625, 0.0625];
        let log_p = Tensor::<B, 3>::from_data(
            TensorData::new(p.iter().map(|v| v.ln()).collect::<Vec<_>>(), [1, 5, 1]),
            &Default::default(),
        );
        assert_eq!(kept(truncate_on_device(log_p.clone(), 0.8)), [true, true, true, false, false]);
        assert_eq!(kept(truncate(log_p, 0.8)), [true, true, true, false, false]);
    }
}
