//! Log-space helpers over tensors with a per-sample second operand.

use burn::tensor::{backend::Backend, Tensor};

/// `logaddexp(x, b)` with `b` broadcast from `[batch, 1, 1]`: `max + log1p(exp(−|x − b|))`,
/// torch's formula, stable for any finite operands (the schedule's logs used here are finite).
///
/// # Shapes
/// - `x`: `[batch, classes, pixels]`
/// - `b`: `[batch, 1, 1]`
/// - output: like `x`
pub fn log_add_exp<B: Backend>(x: Tensor<B, 3>, b: Tensor<B, 3>) -> Tensor<B, 3> {
    let b = b.expand(x.dims());
    let max = x.clone().max_pair(b.clone());
    let gap = (x - b).abs().neg();
    max + gap.exp().log1p()
}
