//! Quick GELU, `x · σ(1.702 x)` (CLIP's `quick_gelu`, diffusers' `ApproximateGELU`, ITHQ's
//! "geglu-approximate" feed-forward activation), on the host for burn's CPU backends: one pass
//! over the values in place, the sigmoid's `exp` by the vectorised [`exp_nonpositive`], the values
//! cut into one range per core.
//!
//! Why: as tensor ops it is a multiplication, a sigmoid and a product — three passes over the
//! `[batch, n, 4·D]` projection (46 MB per ITHQ block at batch 2), on burn-flex each on one thread
//! and the sigmoid one `expf` call per element. On a 2-core Xeon (AVX-512) one `[1, 1024, 5632]`
//! tensor takes 40–57 ms by burn-flex's ops and 3.6–4.3 ms here, close to memory speed
//! (docs/performance.md).

use burn::tensor::backend::Backend;
use burn::tensor::{DType, Tensor, TensorData};

use crate::cpu::threads::{available_cores, cores_here, map_on_threads};
use crate::cpu::vector::{exp_nonpositive, vectorized};
use crate::cpu::VectorUnit;
use crate::portable;

/// Fewest values worth a thread of their own (a thread costs ≈ 10–20 µs; 64 k values take about as long).
const MIN_VALUES_PER_THREAD: usize = 1 << 16;

/// [`KernelBackend::quick_gelu`](crate::KernelBackend::quick_gelu) on a CPU backend: f32 values
/// on the host ([`host_quick_gelu`]) where there is more than one core, else the tensor ops.
pub(crate) fn quick_gelu<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    if x.dtype() == DType::F32 && available_cores() > 1 {
        host_quick_gelu(x, VectorUnit::widest())
    } else {
        portable::quick_gelu(x)
    }
}

/// `x · σ(1.702 x)` element-wise, on the host, with `unit`'s vector instructions.
///
/// # Panics
///
/// If `x` does not hold f32 values.
pub fn host_quick_gelu<B: Backend, const D: usize>(x: Tensor<B, D>, unit: VectorUnit) -> Tensor<B, D> {
    let device = x.device();
    let shape = x.shape();
    // Without a copy where the backend owns the only reference to contiguous values (burn-flex).
    let mut values = x.into_data().into_vec::<f32>().expect("host quick GELU reads f32 tensors");
    let threads = cores_here().min(values.len() / MIN_VALUES_PER_THREAD).max(1);
    let part_len = values.len().div_ceil(threads).max(1);
    map_on_threads(values.chunks_mut(part_len).collect(), |part| quick_gelu_in_place(unit, part));
    Tensor::from_data(TensorData::new(values, shape), &device)
}

vectorized! {
    /// [`quick_gelu_one`] of every value, in place.
    fn quick_gelu_in_place(values: &mut [f32]) => quick_gelu_all
}

#[inline(always)]
fn quick_gelu_all(values: &mut [f32]) {
    for x in values {
        *x = quick_gelu_one(*x);
    }
}

/// `x · σ(1.702 x)` without branches: with `e = e^−|z|` ∈ (0, 1], σ(z) is `1 / (1 + e)` for
/// z ≥ 0 and `e / (1 + e)` below (no overflow either way; burn-flex's sigmoid takes the same two
/// forms). Where z < −87 the clamp of [`exp_nonpositive`] leaves |result| ≤ |x| · 1.6e−38
/// instead of a subnormal or zero. NaN gives NaN.
#[inline(always)]
fn quick_gelu_one(x: f32) -> f32 {
    let z = x * 1.702;
    let e = exp_nonpositive(-z.abs());
    let numerator = if z >= 0.0 { 1.0 } else { e };
    x * (numerator / (1.0 + e))
}

#[cfg(test)]
mod tests {
    use burn::backend::NdArray;
    use burn::tensor::Distribution;

    use super::*;
    use crate::cpu::vector::same_values;

    /// Against burn's ops on values from ±0 to ±90 (both sigmoid branches, the exp clamp, the
    /// saturated ends), over more than one thread's worth: within 1e−6 relative (≈ 8 ulp: the `exp`
    /// is ≤ 2 ulp, the division and products add ≤ 1.5, burn's `expf` and rounding the rest)
    /// plus 1e−35 absolute (the clamp). Every unit gives the same bits; NaN stays NaN.
    #[test]
    fn matches_burns_ops_on_every_unit() {
        let device = Default::default();
        NdArray::<f32>::seed(&device, 12);
        let random = |len, distribution| {
            Tensor::<NdArray, 1>::random([len], distribution, &device).into_data().into_vec::<f32>().unwrap()
        };
        let edges = [-0.0, 0.0, 90.0, -90.0, 87.0 / 1.702, -87.0 / 1.702, 1e-30, -1e-30, f32::MIN_POSITIVE, f32::NAN];
        let mut values = edges.to_vec();
        values.extend(random(200_000, Distribution::Uniform(-90.0, 90.0)));
        values.extend(random(100_000, Distribution::Normal(0.0, 3.0)));
        let len = values.len();
        let x = Tensor::<NdArray, 3>::from_data(TensorData::new(values.clone(), [1, 1, len]), &device);
        let want = portable::quick_gelu(x.clone()).into_data().into_vec::<f32>().unwrap();
        assert!(len / MIN_VALUES_PER_THREAD >= 2, "the test should cover a split over threads");
        let baseline = host_quick_gelu(x.clone(), VectorUnit::Baseline).into_data().into_vec::<f32>().unwrap();
        for ((x, got), want) in values.iter().zip(&baseline).zip(&want) {
            if x.is_nan() {
                assert!(got.is_nan() && want.is_nan(), "NaN became {got}");
                continue;
            }
            assert!(!got.is_nan(), "NaN at {x}");
            assert!((got - want).abs() <= 1e-6 * want.abs() + 1e-35, "at {x}: {got} against {want}");
        }
        assert!(baseline[0] == 0.0 && baseline[0].is_sign_negative(), "−0 should stay −0, got {}", baseline[0]);
        assert_eq!(baseline[2], 90.0);
        for unit in VectorUnit::available() {
            let got = host_quick_gelu(x.clone(), unit).into_data().into_vec::<f32>().unwrap();
            assert!(same_values(&got, &baseline), "{unit:?} differs from the baseline unit");
        }
    }
}
