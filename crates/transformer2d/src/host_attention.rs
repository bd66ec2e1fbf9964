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
use burn::tensor::{Tensor, TensorData};

use crate::threads::{cores_here, map_on_threads, split_range};
use crate::vector_exp::{exp_nonpositive, on_widest_vectors};

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
    let pairs = split_range(batch * heads, cores_here());
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

on_widest_vectors! {
    /// Replaces `row` by `e^(x − max(row))` and returns the sum — softmax without its division,
    /// which the caller folds into the (narrower) output rows.
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
    use super::*;

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
