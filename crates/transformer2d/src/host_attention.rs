//! Attention computed on the host for the CPU backends: the two matrix products by the `gemm`
//! crate straight on the projections' `[batch, len, heads·head_dim]` layout (strides pick the
//! head, so no per-head copies of q, k and v are made; each head's output is copied into its
//! columns once), the softmax by a vectorisable `exp`, (batch, head) pairs spread over the CPU's
//! threads.
//!
//! Why: burn-flex's attention op (0.21) is a flash kernel that exponentiates its scores one
//! `expf` call at a time; at the ITHQ size a forward exponentiates 1.2 G scores, and the op
//! with its layout copies took ≈ 12 % of a CPU forward (BENCHMARKS.md, session 11).

use burn::tensor::backend::Backend;
use burn::tensor::{DType, Tensor, TensorData};

use crate::threads::{available_cores, map_on_threads, split_range};

/// Whether [`host_attention`] can run on these tensors: f32 values on a backend that records no
/// gradients (reading values on the host leaves autodiff's graph).
pub(crate) fn host_attention_applies<B: Backend>(q: &Tensor<B, 3>) -> bool {
    q.dtype() == DType::F32 && !B::ad_enabled(&q.device())
}

/// `softmax(q kᵀ / √head_dim) v` per head, from and to the projections' layout.
///
/// # Shapes
///
/// - `q`: `[batch, n, heads·head_dim]`; `k`, `v`: `[batch, l, heads·head_dim]`
/// - output: `[batch, n, heads·head_dim]`
pub(crate) fn host_attention<B: Backend>(
    q: Tensor<B, 3>,
    k: Tensor<B, 3>,
    v: Tensor<B, 3>,
    heads: usize,
) -> Tensor<B, 3> {
    let device = q.device();
    let [batch, n, inner] = q.dims();
    let l = k.dims()[1];
    assert_eq!(k.dims(), [batch, l, inner], "keys {:?} against queries {:?}", k.dims(), q.dims());
    assert_eq!(v.dims(), [batch, l, inner], "values {:?} against keys {:?}", v.dims(), k.dims());
    let read = |x: Tensor<B, 3>| x.into_data().into_vec::<f32>().expect("host attention reads f32 tensors");
    let (q, k, v) = (read(q), read(k), read(v));
    let shape = Shape { n, l, inner, head_dim: inner / heads };
    let pairs = split_range(batch * heads, available_cores());
    let groups = map_on_threads(pairs, |pairs| {
        let mut scores = vec![0.0_f32; n * l];
        pairs
            .map(|pair| {
                let (b, h) = (pair / heads, pair % heads);
                // The pair's first row in q and in k, v (rows of `inner` values, head h at column h·head_dim).
                let q_at = b * n * inner + h * shape.head_dim;
                let kv_at = b * l * inner + h * shape.head_dim;
                attend_one_head(&q[q_at..], &k[kv_at..], &v[kv_at..], &shape, &mut scores)
            })
            .collect::<Vec<_>>()
    });
    // Each pair's [n, head_dim] output into its columns of [batch, n, heads·head_dim].
    let mut out = vec![0.0_f32; batch * n * inner];
    for (pair, head_out) in groups.into_iter().flatten().enumerate() {
        let (b, h) = (pair / heads, pair % heads);
        for (row, values) in head_out.chunks_exact(shape.head_dim).enumerate() {
            let at = (b * n + row) * inner + h * shape.head_dim;
            out[at..at + shape.head_dim].copy_from_slice(values);
        }
    }
    Tensor::from_data(TensorData::new(out, [batch, n, inner]), &device)
}

/// Sizes of one head's attention.
struct Shape {
    /// Queries.
    n: usize,
    /// Keys and values.
    l: usize,
    /// Row length of q, k and v (all heads side by side).
    inner: usize,
    /// Width of one head.
    head_dim: usize,
}

/// One head: `q` starts at the head's first query value and `k`, `v` at its first key and value
/// value, rows `shape.inner` apart. `scores` is `[n, l]` scratch. Returns the `[n, head_dim]` output.
fn attend_one_head(q: &[f32], k: &[f32], v: &[f32], shape: &Shape, scores: &mut [f32]) -> Vec<f32> {
    let Shape { n, l, inner, head_dim } = *shape;
    // Every row the products read lies inside the slices (the last row needs only head_dim values).
    let rows = |count: usize| count.saturating_sub(1) * inner + head_dim;
    assert!(q.len() >= rows(n) && k.len() >= rows(l) && v.len() >= rows(l) && scores.len() == n * l);
    let scale = 1.0 / (head_dim as f32).sqrt();
    let mut out = vec![0.0_f32; n * head_dim];
    // SAFETY: the asserts above keep every element the products touch inside the slices:
    // q is [n, head_dim] with row stride `inner`, kᵀ is [head_dim, l] (k's rows as columns),
    // v is [l, head_dim] with row stride `inner`; scores and out are contiguous row-major.
    unsafe {
        // scores = scale · q kᵀ   (gemm computes dst = alpha·dst + beta·lhs·rhs)
        gemm::gemm(
            n,
            l,
            head_dim,
            scores.as_mut_ptr(),
            1,
            l as isize,
            false,
            q.as_ptr(),
            1,
            inner as isize,
            k.as_ptr(),
            inner as isize,
            1,
            0.0,
            scale,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
    let sums: Vec<f32> = scores.chunks_exact_mut(l).map(exp_shifted_row).collect();
    // SAFETY: as above.
    unsafe {
        // out = e^(scores − row max) v, normalised below
        gemm::gemm(
            n,
            head_dim,
            l,
            out.as_mut_ptr(),
            1,
            head_dim as isize,
            false,
            scores.as_ptr(),
            1,
            l as isize,
            v.as_ptr(),
            1,
            inner as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
    for (row, sum) in out.chunks_exact_mut(head_dim).zip(sums) {
        let inv = 1.0 / sum;
        row.iter_mut().for_each(|x| *x *= inv);
    }
    out
}

/// Replaces `row` by `e^(x − max(row))` and returns the sum — softmax without its division,
/// which the caller folds into the (narrower) output rows. The same code compiled for the widest
/// vector unit the CPU has (the results are identical: no step is contracted into an FMA).
fn exp_shifted_row(row: &mut [f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F.
            return unsafe { exp_shifted_row_avx512(row) };
        }
        if is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2.
            return unsafe { exp_shifted_row_avx2(row) };
        }
    }
    exp_shifted_row_any(row)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn exp_shifted_row_avx512(row: &mut [f32]) -> f32 {
    exp_shifted_row_any(row)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn exp_shifted_row_avx2(row: &mut [f32]) -> f32 {
    exp_shifted_row_any(row)
}

/// Lanes of the explicit accumulators below: written as fixed-width arrays so the compiler keeps
/// them in vector registers (a single running `f32` would serialise the loop).
const LANES: usize = 16;

#[inline(always)]
fn exp_shifted_row_any(row: &mut [f32]) -> f32 {
    let mut max = [f32::NEG_INFINITY; LANES];
    let mut chunks = row.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (m, &x) in max.iter_mut().zip(chunk) {
            *m = if x > *m { x } else { *m };
        }
    }
    let max = chunks.remainder().iter().chain(&max).fold(f32::NEG_INFINITY, |m, &x| m.max(x));
    let mut sum = [0.0_f32; LANES];
    let mut chunks = row.chunks_exact_mut(LANES);
    for chunk in &mut chunks {
        for (s, x) in sum.iter_mut().zip(chunk) {
            *x = exp_nonpositive(*x - max);
            *s += *x;
        }
    }
    let mut tail = 0.0;
    for x in chunks.into_remainder() {
        *x = exp_nonpositive(*x - max);
        tail += *x;
    }
    sum.iter().sum::<f32>() + tail
}

/// `e^x` for `x ≤ 0` without branches or library calls, so loops over it vectorise: `x = k·ln 2 + r`
/// with |r| ≤ ln 2 / 2, `e^r` by the degree-6 polynomial of Cephes' `expf` (≤ 2 ulp on that range),
/// `2^k` built in the exponent bits. Inputs below −87 (e^x < 2⁻¹²⁵, where the result would leave
/// the normal range) give e^−87 ≈ 1.6e−38, which no softmax sum notices.
#[inline(always)]
pub(crate) fn exp_nonpositive(x: f32) -> f32 {
    const LOG2_E: f32 = std::f32::consts::LOG2_E;
    // ln 2 in two parts, the first exact in few bits, so k·LN2_HI is exact (Cody–Waite).
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding and subtracting 1.5·2²³ rounds to the nearest integer without `round` (a library
    // call on baseline x86-64, which would stop vectorisation).
    const ROUND: f32 = 12_582_912.0;
    let x = x.max(-87.0);
    let k = (x * LOG2_E + ROUND) - ROUND;
    let r = x - k * LN2_HI - k * LN2_LO;
    let p = 1.987_569_1e-4_f32;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 5.000_000_1e-1;
    let e_r = p * r * r + r + 1.0;
    // k ∈ [−126, 0]: 2^k is the normal float with biased exponent k + 127.
    e_r * f32::from_bits(((k as i32 + 127) as u32) << 23)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_within_two_ulp_of_std_on_the_softmax_range() {
        let mut worst = 0.0_f64;
        for i in 0..=870_000 {
            let x = -(i as f32) * 1e-4;
            let (got, want) = (exp_nonpositive(x), x.exp());
            let error = (f64::from(got) - f64::from(want)).abs() / f64::from(want - want.next_down());
            worst = worst.max(error);
        }
        assert!(worst <= 2.0, "worst error {worst} ulp");
        assert_eq!(exp_nonpositive(0.0), 1.0);
        assert!(exp_nonpositive(-1000.0) > 0.0 && exp_nonpositive(-1000.0) < 1e-37);
        assert!(exp_nonpositive(f32::NEG_INFINITY) < 1e-37);
    }

    #[test]
    fn shifted_row_matches_the_definition() {
        let mut row: Vec<f32> = (0..37).map(|i| ((i * 7919) % 101) as f32 * 0.37 - 20.0).collect();
        let max = row.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x));
        // (of the f32 differences: e^x is exact to 2 ulp, x − max is rounded before)
        let want: Vec<f64> = row.iter().map(|&x| f64::from(x - max).exp()).collect();
        let sum = exp_shifted_row(&mut row);
        for (got, want) in row.iter().zip(&want) {
            assert!((f64::from(*got) - want).abs() <= 2.5e-7 * want, "{got} against {want}");
        }
        assert!((f64::from(sum) - want.iter().sum::<f64>()).abs() < 1e-5);
    }
}
