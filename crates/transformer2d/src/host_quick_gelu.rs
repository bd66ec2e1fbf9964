//! Quick GELU, `x · sigmoid(1.702 x)` (diffusers' `ApproximateGELU`, ITHQ's "geglu-approximate"
//! feed-forward activation), computed on the host for the CPU backends: one pass over the values
//! in place, the sigmoid's `exp` by the vectorised [`exp_nonpositive`], the values cut into one
//! range per core.
//!
//! Why: as tensor ops it is a multiplication, a sigmoid and a product — three passes over the
//! `[batch, n, 4·D]` projection (46 MB per ITHQ block at batch 2), on burn-flex each on one
//! thread and the sigmoid one `expf` call per element (2.8 % of a CPU forward in `perf`,
//! BENCHMARKS.md session 11, plus the passes themselves).
//!
//! Measured on the 2-core Xeon VM (AVX-512), one `[1, 1024, 5632]` f32 tensor — what each batch
//! thread activates per ITHQ block: burn-flex's ops 40–57 ms, this 3.6–4.3 ms (the kernel alone
//! ≈ 2× a plain scaling pass over the same values, so close to memory speed); × 36 blocks ≈ 1.3 s
//! of the ≈ 28 s forward.
//!
//! Which layers use it: [`FeedForward::on_host`](crate::FeedForward::on_host), set where the
//! attention runs on the host by default; the values must also pass
//! [`host_code_applies`](crate::threads::host_code_applies) (f32, no autodiff).

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};

use crate::threads::{cores_here, map_on_threads};
use crate::vector_exp::{exp_nonpositive, on_widest_vectors};

/// Fewest values worth a thread of their own (a thread costs ≈ 10–20 µs; 64 k values take about as long).
const MIN_VALUES_PER_THREAD: usize = 1 << 16;

/// `x · sigmoid(1.702 x)` element-wise, on the host. `x` must hold f32 values.
pub(crate) fn host_quick_gelu<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    let device = x.device();
    let shape = x.shape();
    // Without a copy where the backend owns the only reference to contiguous values (burn-flex).
    let mut values = x.into_data().into_vec::<f32>().expect("host quick GELU reads f32 tensors");
    let threads = cores_here().min(values.len() / MIN_VALUES_PER_THREAD).max(1);
    let part_len = values.len().div_ceil(threads).max(1);
    map_on_threads(values.chunks_mut(part_len).collect(), quick_gelu_in_place);
    Tensor::from_data(TensorData::new(values, shape), &device)
}

on_widest_vectors! {
    /// [`quick_gelu`] of every value, in place.
    fn quick_gelu_in_place(values: &mut [f32]) => quick_gelu_all
}

#[inline(always)]
fn quick_gelu_all(values: &mut [f32]) {
    for x in values {
        *x = quick_gelu(*x);
    }
}

/// `x · sigmoid(1.702 x)` without branches: with `e = e^−|z|` ∈ (0, 1], sigmoid(z) is
/// `1 / (1 + e)` for z ≥ 0 and `e / (1 + e)` below (no overflow either way; burn-flex's
/// sigmoid takes the same two forms). Where z < −87 the clamp of [`exp_nonpositive`] leaves
/// |result| ≤ |x| · 1.6e−38 instead of a subnormal or zero.
#[inline(always)]
fn quick_gelu(x: f32) -> f32 {
    let z = x * 1.702;
    let e = exp_nonpositive(-z.abs());
    let numerator = if z >= 0.0 { 1.0 } else { e };
    x * (numerator / (1.0 + e))
}

#[cfg(test)]
mod tests {
    use burn::backend::NdArray;
    use burn::tensor::activation::sigmoid;
    use burn::tensor::Distribution;

    use super::*;

    /// Against burn's ops on values from ±0 to ±90 (both sigmoid branches, the exp clamp, the
    /// saturated ends), over more than one thread's worth: within 1e−6 relative (≈ 8 ulp: the `exp`
    /// is ≤ 2 ulp, the division and products add ≤ 1.5, burn's `expf` and rounding the rest;
    /// 6.8e−7 seen) plus 1e−35 absolute (the clamp).
    #[test]
    fn matches_burns_ops() {
        let device = Default::default();
        NdArray::<f32>::seed(&device, 12);
        let random = |len, distribution| {
            Tensor::<NdArray, 1>::random([len], distribution, &device).into_data().into_vec::<f32>().unwrap()
        };
        let edges = [-0.0, 0.0, 90.0, -90.0, 87.0 / 1.702, -87.0 / 1.702, 1e-30, -1e-30, f32::MIN_POSITIVE];
        let mut values = edges.to_vec();
        values.extend(random(200_000, Distribution::Uniform(-90.0, 90.0)));
        values.extend(random(100_000, Distribution::Normal(0.0, 3.0)));
        let len = values.len();
        let x = Tensor::<NdArray, 3>::from_data(TensorData::new(values.clone(), [1, 1, len]), &device);
        let want = (x.clone() * sigmoid(x.clone() * 1.702)).into_data().into_vec::<f32>().unwrap();
        let got = host_quick_gelu(x).into_data().into_vec::<f32>().unwrap();
        assert!(len / MIN_VALUES_PER_THREAD >= 2, "the test should cover a split over threads");
        let mut worst = 0.0_f32;
        for ((x, got), want) in values.iter().zip(&got).zip(&want) {
            assert!(!got.is_nan(), "NaN at {x}");
            assert!((got - want).abs() <= 1e-6 * want.abs() + 1e-35, "at {x}: {got} against {want}");
            if want.abs() > 1e-30 {
                worst = worst.max((got - want).abs() / want.abs());
            }
        }
        eprintln!("host quick GELU against burn's ops: worst relative error {worst:.2e}");
        assert!(got[0] == 0.0 && got[0].is_sign_negative(), "−0 should stay −0, got {}", got[0]);
        assert_eq!(got[2], 90.0);
    }
}
