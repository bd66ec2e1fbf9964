//! Log-space helpers composed from burn ops (burn 0.21 has no `logsumexp` / `logaddexp`),
//! following torch's CPU definitions so that f32 results agree to rounding.

use burn::tensor::{backend::Backend, DType, Int, Tensor};

/// `ln(1e−30)` in f32 (−69.07755): the "log zero" of diffusers' `index_to_log_onehot`, which
/// clamps the one-hot to at least 1e−30 before taking the log.
pub const LOG_ONEHOT_ZERO: f32 = -69.077_55;

/// Log one-hot encoding of class ids, classes on dimension 1: 0 at `x`'s class, −69.07755
/// elsewhere (diffusers' `index_to_log_onehot`).
///
/// # Shapes
/// - `x`: `[batch, pixels]`, ids in `0..num_classes` (not checked: that would need a device sync)
/// - output: `[batch, num_classes, pixels]`
pub fn index_to_log_onehot<B: Backend>(x: Tensor<B, 2, Int>, num_classes: usize) -> Tensor<B, 3> {
    let [batch, pixels] = x.dims();
    let device = x.device();
    let shape = [batch, num_classes, pixels];
    let classes =
        Tensor::<B, 1, Int>::arange(0..num_classes as i64, &device).reshape([1, num_classes, 1]).expand(shape);
    let is_class = classes.equal(x.unsqueeze_dim::<3>(1).expand(shape));
    Tensor::full(shape, LOG_ONEHOT_ZERO, (&device, DType::F32)).mask_fill(is_class, 0.0)
}

/// `logaddexp(x, b)` for a tensor and a scalar, elementwise: `max + log1p(exp(−|x − b|))`,
/// torch's formula. An infinite `b` is handled first (`b = −inf` leaves `x`, `b = +inf` gives
/// +inf), so the formula only meets a finite `b`, where `x = −inf` correctly yields `b`.
pub fn log_add_exp_scalar<B: Backend>(x: Tensor<B, 3>, b: f32) -> Tensor<B, 3> {
    if b == f32::NEG_INFINITY {
        return x;
    }
    if b == f32::INFINITY {
        return x.ones_like().mul_scalar(f32::INFINITY);
    }
    let max = x.clone().clamp_min(b);
    let gap = x.sub_scalar(b).abs().neg();
    max + gap.exp().log1p()
}

/// `logsumexp` over the class dimension (1), kept as size 1, like
/// `torch.logsumexp(x, dim=1, keepdim=True)`: the per-column maximum is subtracted first, and an
/// infinite maximum is replaced by 0 (as torch does) so an all-(−inf) column gives −inf, not NaN.
///
/// # Shapes
/// - `x`: `[batch, classes, pixels]`
/// - output: `[batch, 1, pixels]`
pub fn log_sum_exp_classes<B: Backend>(x: Tensor<B, 3>) -> Tensor<B, 3> {
    let max = x.clone().max_dim(1);
    let max = max.clone().mask_fill(max.is_inf(), 0.0);
    (x - max.clone()).exp().sum_dim(1).log() + max
}
