//! Attention on the host for burn's CPU backends: the two matrix products by the `gemm` crate
//! straight on the projections' `[batch, len, heads·head_dim]` layout (strides pick the head, so
//! no per-head copies of q, k and v are made; each head's output is copied into its columns
//! once), the softmax by a vectorised `exp`, (batch, head) pairs spread over the CPU's threads.
//!
//! Why: burn-flex's attention op (0.21) is a flash kernel that exponentiates its scores one
//! `expf` call at a time; at the ITHQ size a forward exponentiates 1.2 G scores, and the op with
//! its layout copies took about an eighth of a CPU forward (docs/performance.md).

use std::ops::Range;

use burn::tensor::backend::Backend;
use burn::tensor::module::attention as attention_op;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{DType, FloatDType, Tensor, TensorData};

use crate::cpu::threads::{available_cores, cores_here, map_on_threads, split_range};
use crate::cpu::vector::{exp_nonpositive, vectorized};
use crate::cpu::VectorUnit;
use crate::{portable, AttentionOptions};

/// [`KernelBackend::attention`](crate::KernelBackend::multi_head_attention) on a CPU backend: unmasked f32
/// attention by [`host_attention`]; other unmasked attention by burn's op on groups of heads,
/// one group per thread; masked attention (and everything on a one-core machine) by the
/// portable op.
pub(crate) fn attention<B: Backend>(
    q: Tensor<B, 3>,
    k: Tensor<B, 3>,
    v: Tensor<B, 3>,
    options: AttentionOptions<B>,
) -> Tensor<B, 3> {
    let dtype = q.dtype();
    if !options.is_unmasked() || available_cores() <= 1 {
        return portable::attention(q, k, v, options);
    }
    if options.upcast && matches!(dtype, DType::F16 | DType::BF16) {
        let f32 = |t: Tensor<B, 3>| t.cast(FloatDType::F32);
        return attention(f32(q), f32(k), f32(v), AttentionOptions { upcast: false, ..options }).cast(dtype);
    }
    if dtype == DType::F32 {
        host_attention(q, k, v, options.heads, VectorUnit::widest())
    } else {
        threaded_attention_op(q, k, v, options.heads)
    }
}

/// burn's attention op on groups of heads, one group per thread, from and to the projections'
/// layout. burn-flex's op runs on the calling thread only, and its permuted copies go element by
/// element (about 4× slower than the row copies of a concatenation).
///
/// # Shapes
///
/// - `q`: `[batch, n, heads·head_dim]`; `k`, `v`: `[batch, l, heads·head_dim]`
/// - output: `[batch, n, heads·head_dim]`
pub fn threaded_attention_op<B: Backend>(
    q: Tensor<B, 3>,
    k: Tensor<B, 3>,
    v: Tensor<B, 3>,
    heads: usize,
) -> Tensor<B, 3> {
    let head_dim = q.dims()[2] / heads;
    // [batch, len, heads·head_dim] -> [batch, group, len, head_dim], contiguous: the heads' column
    // slices stacked by one concatenation (row copies) instead of a permuted copy.
    let gather = |x: &Tensor<B, 3>, group: &Range<usize>| {
        let slices = group.clone().map(|h| x.clone().narrow(2, h * head_dim, head_dim).unsqueeze_dim(1));
        Tensor::cat(slices.collect(), 1)
    };
    let outputs = map_on_threads(split_range(heads, cores_here()), |group| {
        let out = attention_op(
            gather(&q, &group),
            gather(&k, &group),
            gather(&v, &group),
            None,
            None,
            AttentionModuleOptions::default(),
        );
        // [batch, group, n, head_dim] -> one [batch, n, head_dim] per head
        out.chunk(group.len(), 1).into_iter().map(|head| head.squeeze_dim(1)).collect::<Vec<Tensor<B, 3>>>()
    });
    // The heads side by side: [batch, n, heads·head_dim].
    Tensor::cat(outputs.into_iter().flatten().collect(), 2)
}

/// `softmax(q kᵀ / √head_dim) v` per head, from and to the projections' layout.
///
/// # Shapes
///
/// - `q`: `[batch, n, heads·head_dim]`; `k`, `v`: `[batch, l, heads·head_dim]`
/// - output: `[batch, n, heads·head_dim]`
///
/// `unit` picks the vector instructions of the softmax (the widest the CPU has, or a narrower one
/// to test that every unit gives the same values).
///
/// # Panics
///
/// If the tensors are not f32, or k and v do not match q's batch and width.
pub fn host_attention<B: Backend>(
    q: Tensor<B, 3>,
    k: Tensor<B, 3>,
    v: Tensor<B, 3>,
    heads: usize,
    unit: VectorUnit,
) -> Tensor<B, 3> {
    let device = q.device();
    let [batch, n, inner] = q.dims();
    let l = k.dims()[1];
    assert_eq!(k.dims(), [batch, l, inner], "keys {:?} against queries {:?}", k.dims(), q.dims());
    assert_eq!(v.dims(), [batch, l, inner], "values {:?} against keys {:?}", v.dims(), k.dims());
    let read = |x: Tensor<B, 3>| x.into_data().into_vec::<f32>().expect("host attention reads f32 tensors");
    let (q, k, v) = (read(q), read(k), read(v));
    let shape = Shape { n, l, inner, head_dim: inner / heads };
    let pairs = split_range(batch * heads, cores_here());
    let groups = map_on_threads(pairs, |pairs| {
        let mut scores = vec![0.0_f32; n * l];
        pairs
            .map(|pair| {
                let (b, h) = (pair / heads, pair % heads);
                // The pair's first row in q and in k, v (rows of `inner` values, head h at column h·head_dim).
                let q_at = b * n * inner + h * shape.head_dim;
                let kv_at = b * l * inner + h * shape.head_dim;
                attend_one_head(&q[q_at..], &k[kv_at..], &v[kv_at..], &shape, &mut scores, unit)
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
fn attend_one_head(q: &[f32], k: &[f32], v: &[f32], shape: &Shape, scores: &mut [f32], unit: VectorUnit) -> Vec<f32> {
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
    let sums: Vec<f32> = scores.chunks_exact_mut(l).map(|row| exp_shifted_row(unit, row)).collect();
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

vectorized! {
    /// Replaces `row` by `e^(x − max(row))` and returns the sum — softmax without its division,
    /// which the caller folds into the (narrower) output rows. The maximum skips NaN; a NaN value
    /// then becomes a NaN exponential, so the sum and the whole row of output are NaN.
    fn exp_shifted_row(row: &mut [f32]) -> f32 => exp_shifted_row_any
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

#[cfg(test)]
mod tests {
    use burn::backend::NdArray;
    use burn::tensor::Distribution;

    use super::*;
    use crate::cpu::vector::same_values;

    type B = NdArray<f32>;

    fn random(shape: [usize; 3], seed: u64) -> Tensor<B, 3> {
        let device = Default::default();
        B::seed(&device, seed);
        Tensor::random(shape, Distribution::Normal(0.0, 2.0), &device)
    }

    fn values(x: Tensor<B, 3>) -> Vec<f32> {
        x.into_data().into_vec::<f32>().unwrap()
    }

    #[test]
    fn shifted_row_matches_the_definition_on_every_unit() {
        let row: Vec<f32> = (0..37).map(|i| ((i * 7919) % 101) as f32 * 0.37 - 20.0).collect();
        let max = row.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x));
        // (of the f32 differences: e^x is exact to 2 ulp, x − max is rounded before)
        let want: Vec<f64> = row.iter().map(|&x| f64::from(x - max).exp()).collect();
        for unit in VectorUnit::available() {
            let mut got = row.clone();
            let sum = exp_shifted_row(unit, &mut got);
            for (got, want) in got.iter().zip(&want) {
                assert!((f64::from(*got) - want).abs() <= 2.5e-7 * want, "{unit:?}: {got} against {want}");
            }
            assert!((f64::from(sum) - want.iter().sum::<f64>()).abs() < 1e-5, "{unit:?}");
        }
    }

    #[test]
    fn a_nan_score_makes_its_row_nan_on_every_unit() {
        for nan_at in [0, 5, 16, 36] {
            let mut row: Vec<f32> = (0..37).map(|i| i as f32 * 0.1 - 2.0).collect();
            row[nan_at] = f32::NAN;
            for unit in VectorUnit::available() {
                let mut got = row.clone();
                assert!(exp_shifted_row(unit, &mut got).is_nan(), "{unit:?}, NaN at {nan_at}");
                assert!(got[nan_at].is_nan(), "{unit:?}, NaN at {nan_at}");
            }
        }
    }

    /// Against the composed tensor-op attention (cross-attention shape, 4 heads, keys not a
    /// multiple of the vector width), within f32 rounding; every unit gives the same bits.
    #[test]
    fn host_attention_matches_the_tensor_ops_and_every_unit_agrees() {
        let (q, k, v) = (random([2, 19, 32], 1), random([2, 77, 32], 2), random([2, 77, 32], 3));
        let want = values(portable::composed_attention(q.clone(), k.clone(), v.clone(), 4));
        let baseline = values(host_attention(q.clone(), k.clone(), v.clone(), 4, VectorUnit::Baseline));
        let worst = baseline.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0_f32, f32::max);
        assert!(worst < 2e-5, "host attention differs from the tensor ops by {worst}");
        for unit in VectorUnit::available() {
            let got = values(host_attention(q.clone(), k.clone(), v.clone(), 4, unit));
            assert!(same_values(&got, &baseline), "{unit:?} differs from the baseline unit");
        }
    }

    /// A NaN query poisons its own output row (in its head's columns); a NaN key or value
    /// poisons every output row of its head and batch item, like the tensor ops.
    #[test]
    fn nan_inputs_give_nan_outputs_on_every_unit() {
        let (batch, n, l, heads, head_dim) = (2, 5, 9, 2, 4);
        let inner = heads * head_dim;
        let q = values(random([batch, n, inner], 4));
        let k = values(random([batch, l, inner], 5));
        let tensor = |mut x: Vec<f32>, at: usize, len: usize| {
            x[at] = f32::NAN;
            Tensor::<B, 3>::from_data(TensorData::new(x, [batch, len, inner]), &Default::default())
        };
        // batch 1, query row 3, head 1
        let q_nan = tensor(q.clone(), (n + 3) * inner + head_dim, n);
        // batch 0, key row 7, head 0
        let k_nan = tensor(k.clone(), 7 * inner, l);
        for unit in VectorUnit::available() {
            let k_plain = Tensor::<B, 3>::from_data(TensorData::new(k.clone(), [batch, l, inner]), &Default::default());
            let out = values(host_attention(q_nan.clone(), k_plain.clone(), k_plain.clone(), heads, unit));
            for (i, x) in out.iter().enumerate() {
                let (b, row, col) = (i / (n * inner), i / inner % n, i % inner);
                assert_eq!(x.is_nan(), b == 1 && row == 3 && col >= head_dim, "{unit:?}: query NaN, output {i}");
            }
            let out = values(host_attention(q_nan.clone(), k_nan.clone(), k_plain, heads, unit));
            for (i, x) in out.iter().enumerate() {
                let (b, row, col) = (i / (n * inner), i / inner % n, i % inner);
                let poisoned = (b == 0 && col < head_dim) || (b == 1 && row == 3 && col >= head_dim);
                assert_eq!(x.is_nan(), poisoned, "{unit:?}: key NaN, output {i}");
            }
        }
    }

    #[test]
    fn heads_on_threads_give_the_ops_values_exactly() {
        let (q, k, v) = (random([2, 16, 24], 6), random([2, 16, 24], 7), random([2, 16, 24], 8));
        let op = values(portable::attention(q.clone(), k.clone(), v.clone(), AttentionOptions::heads(3)));
        assert_eq!(values(threaded_attention_op(q, k, v, 3)), op);
    }
}
