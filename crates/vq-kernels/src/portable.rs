//! The default implementation of every operation of [`KernelBackend`](crate::KernelBackend): plain
//! burn tensor ops, correct on every backend, autodiff included. Public, so that a backend
//! overriding an operation only in some cases can fall back to these, and so that benchmarks
//! and tests can hold each implementation against the others.

use burn::nn::conv::Conv2d;
use burn::nn::PaddingConfig2d;
use burn::tensor::activation::{log_softmax, sigmoid, softmax};
use burn::tensor::backend::Backend;
use burn::tensor::module::attention as attention_op;
use burn::tensor::ops::{AttentionModuleOptions, PadMode};
use burn::tensor::{DType, FloatDType, Slice, Tensor};

use crate::AttentionOptions;

/// Attention by burn's fused op ([`burn::tensor::module::attention`]): a flash kernel on
/// burn-flex and on CubeCL where the head width suits it, elsewhere an unfused fallback that
/// frees its `[batch, heads, n, l]` scores before returning. Default scale 1/√head_dim.
///
/// # Shapes
///
/// - `q`: `[batch, n, heads·head_dim]`; `k`, `v`: `[batch, l, heads·head_dim]`
/// - `options.key_padding_mask`: `[batch, l]`
/// - output: `[batch, n, heads·head_dim]`
pub fn attention<B: Backend>(
    q: Tensor<B, 3>,
    k: Tensor<B, 3>,
    v: Tensor<B, 3>,
    options: AttentionOptions<B>,
) -> Tensor<B, 3> {
    let dtype = q.dtype();
    if options.upcast && matches!(dtype, DType::F16 | DType::BF16) {
        let f32 = |t: Tensor<B, 3>| t.cast(FloatDType::F32);
        let options = AttentionOptions { upcast: false, ..options };
        return attention(f32(q), f32(k), f32(v), options).cast(dtype);
    }
    let heads = options.heads;
    let [batch, n, _] = q.dims();
    let l = k.dims()[1];
    // [batch, l] -> [batch, heads, n, l]
    let mask = options.key_padding_mask.map(|mask| mask.reshape([batch, 1, 1, l]).expand([batch, heads, n, l]));
    let op_options = AttentionModuleOptions { scale: None, softcap: None, is_causal: options.causal };
    let out = attention_op(split_heads(q, heads), split_heads(k, heads), split_heads(v, heads), mask, None, op_options);
    merge_heads(out)
}

/// Unmasked attention as a matrix product, a softmax and a matrix product in tensor ops, which
/// burn's kernel fusion merges into few passes over the `[batch, heads, n, l]` scores.
///
/// # Shapes
///
/// - `q`: `[batch, n, heads·head_dim]`; `k`, `v`: `[batch, l, heads·head_dim]`
/// - output: `[batch, n, heads·head_dim]`
pub fn composed_attention<B: Backend>(q: Tensor<B, 3>, k: Tensor<B, 3>, v: Tensor<B, 3>, heads: usize) -> Tensor<B, 3> {
    let head_dim = q.dims()[2] / heads;
    let scale = 1.0 / (head_dim as f64).sqrt();
    let (q, k, v) = (split_heads(q, heads), split_heads(k, heads), split_heads(v, heads));
    // [batch, heads, n, l]
    let scores = q.matmul(k.swap_dims(2, 3)) * scale;
    merge_heads(softmax(scores, 3).matmul(v))
}

/// `[batch, len, heads·head_dim]` -> `[batch, heads, len, head_dim]`.
pub fn split_heads<B: Backend>(x: Tensor<B, 3>, heads: usize) -> Tensor<B, 4> {
    let [batch, len, inner] = x.dims();
    x.reshape([batch, len, heads, inner / heads]).swap_dims(1, 2)
}

/// `[batch, heads, len, head_dim]` -> `[batch, len, heads·head_dim]`.
pub fn merge_heads<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 3> {
    let [batch, heads, len, head_dim] = x.dims();
    x.swap_dims(1, 2).reshape([batch, len, heads * head_dim])
}

/// `x · σ(1.702 x)`. burn has no such activation.
pub fn quick_gelu<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    x.clone() * sigmoid(x * 1.702)
}

/// LayerNorm over the last axis without `weight`/`bias` (torch's
/// `LayerNorm(elementwise_affine=False)`): `(x − mean) / √(var + eps)` with the biased variance.
/// burn's `LayerNorm` always owns a `gamma`.
pub fn layer_norm_without_affine<B: Backend, const D: usize>(x: Tensor<B, D>, epsilon: f64) -> Tensor<B, D> {
    let last = D - 1;
    let centered = x.clone() - x.mean_dim(last);
    let var = centered.clone().square().mean_dim(last);
    centered / (var + epsilon).sqrt()
}

/// `layer_norm_without_affine(x) · (1 + scale) + shift`.
///
/// # Shapes
///
/// - `x`: `[batch, n, D]`; `scale`, `shift`: `[batch or 1, 1, D]`
/// - output: `[batch, n, D]`
pub fn ada_layer_norm<B: Backend>(
    x: Tensor<B, 3>,
    scale: Tensor<B, 3>,
    shift: Tensor<B, 3>,
    epsilon: f64,
) -> Tensor<B, 3> {
    layer_norm_without_affine(x, epsilon) * (scale + 1.0) + shift
}

/// The dtype the class log-softmax is computed in on `device`: f64 where the backend supports it
/// (burn 0.21: the CPU backends; wgpu where the adapter has 64-bit floats; not CUDA), else f32.
pub fn log_softmax_dtype<B: Backend>(device: &B::Device) -> DType {
    if B::supports_dtype(device, DType::F64) {
        DType::F64
    } else {
        DType::F32
    }
}

/// `log_softmax` over `dim` computed in [`log_softmax_dtype`], returned as f32. Where f64 is
/// missing the result moves by rounding only (docs/numerics.md).
pub fn class_log_softmax<B: Backend>(logits: Tensor<B, 3>, dim: usize) -> Tensor<B, 3> {
    let compute = log_softmax_dtype::<B>(&logits.device());
    class_log_softmax_in(logits, dim, compute)
}

/// `log_softmax` over `dim` computed in `compute`, returned as f32.
pub fn class_log_softmax_in<B: Backend>(logits: Tensor<B, 3>, dim: usize, compute: DType) -> Tensor<B, 3> {
    log_softmax(logits.cast(compute), dim).cast(DType::F32)
}

/// `conv.forward(x)` as one matrix product ([`conv2d_gemm`]) where that form covers the
/// convolution (groups 1, dilation 1, explicit or no padding), else the backend's op.
///
/// # Shapes
///
/// - `x`: `[batch, C_in, height, width]`
/// - output: `[batch, C_out, height_out, width_out]`
pub fn conv2d_by_gemm<B: Backend>(conv: &Conv2d<B>, x: Tensor<B, 4>) -> Tensor<B, 4> {
    match gemm_padding(conv) {
        Some(padding) => conv2d_gemm(x, conv.weight.val(), conv.bias.as_ref().map(|b| b.val()), conv.stride, padding),
        None => conv.forward(x),
    }
}

/// `conv`'s padding as `[top, left, bottom, right]` where the GEMM form covers `conv`.
fn gemm_padding<B: Backend>(conv: &Conv2d<B>) -> Option<[usize; 4]> {
    if conv.groups != 1 || conv.dilation != [1, 1] {
        return None;
    }
    match conv.padding {
        PaddingConfig2d::Valid => Some([0; 4]),
        PaddingConfig2d::Explicit(top, left, bottom, right) => Some([top, left, bottom, right]),
        PaddingConfig2d::Same => None,
    }
}

/// Convolution as a matrix product ("im2col"): out[b] = W · cols[b], where column `(y, x)` of
/// `cols[b]` holds the `C_in·k_h·k_w` input values under the kernel at output pixel `(y, x)`,
/// ordered like the weight's `[C_in, k_h, k_w]` so that the weight only needs a reshape.
///
/// Why: burn 0.21 backends differ a lot in how they convolve, and above all in how they take a
/// convolution's gradient; this form runs on the matrix-product kernels every backend makes fast,
/// and its gradient is a matrix product plus slice assignments. It sums in another order than a
/// direct convolution (f32 results agree to rounding) and holds `k_h·k_w` copies of the input.
///
/// # Shapes
///
/// - `x`: `[batch, C_in, height, width]`; `weight`: `[C_out, C_in, k_h, k_w]`; `bias`: `[C_out]`
/// - `padding`: `[top, left, bottom, right]`
/// - output: `[batch, C_out, height_out, width_out]`
pub fn conv2d_gemm<B: Backend>(
    x: Tensor<B, 4>,
    weight: Tensor<B, 4>,
    bias: Option<Tensor<B, 1>>,
    stride: [usize; 2],
    padding: [usize; 4],
) -> Tensor<B, 4> {
    let [top, left, bottom, right] = padding;
    let x = if padding == [0; 4] { x } else { x.pad([(top, bottom), (left, right)], PadMode::Constant(0.0)) };
    let [batch, c_in, height, width] = x.dims();
    let [c_out, weight_c_in, k_h, k_w] = weight.dims();
    assert_eq!(c_in, weight_c_in, "conv2d_gemm: input has {c_in} channels, the weight expects {weight_c_in}");
    assert!(height >= k_h && width >= k_w, "conv2d_gemm: padded input {height}×{width} is smaller than the kernel");
    let h_out = (height - k_h) / stride[0] + 1;
    let w_out = (width - k_w) / stride[1] + 1;

    let cols = if [k_h, k_w, stride[0], stride[1]] == [1; 4] {
        x.reshape([batch, c_in, height * width])
    } else {
        // One view per kernel tap (i, j): rows i, i + s, …, columns j, j + s, ….
        let span = |offset: usize, n: usize, s: usize| {
            Slice::new(offset as isize, Some((offset + s * (n - 1) + 1) as isize), s as isize)
        };
        let taps: Vec<Tensor<B, 4>> = (0..k_h)
            .flat_map(|i| (0..k_w).map(move |j| (i, j)))
            .map(|(i, j)| {
                x.clone().slice([
                    Slice::from(0..batch),
                    Slice::from(0..c_in),
                    span(i, h_out, stride[0]),
                    span(j, w_out, stride[1]),
                ])
            })
            .collect();
        // [batch, C_in, k_h·k_w, h_out, w_out] -> [batch, C_in·k_h·k_w, h_out·w_out]
        Tensor::stack::<5>(taps, 2).reshape([batch, c_in * k_h * k_w, h_out * w_out])
    };
    // [1, C_out, C_in·k_h·k_w] · [batch, C_in·k_h·k_w, h_out·w_out] -> [batch, C_out, h_out·w_out]
    let out = weight.reshape([1, c_out, c_in * k_h * k_w]).matmul(cols);
    let out = match bias {
        Some(bias) => out + bias.reshape([1, c_out, 1]),
        None => out,
    };
    out.reshape([batch, c_out, h_out, w_out])
}

#[cfg(test)]
mod tests {
    use burn::backend::{Autodiff, NdArray};
    use burn::nn::conv::Conv2dConfig;
    use burn::tensor::{Distribution, Tolerance};

    use super::*;

    type B = Autodiff<NdArray<f32>>;

    /// Output and all three gradients of the GEMM form against NdArray's convolution, for each
    /// kind of convolution the VQ-VAE has (3×3 padded, 1×1, 3×3 stride 2 with diffusers'
    /// right/bottom padding) and a non-square input.
    #[test]
    fn gemm_form_matches_the_backend_convolution_and_its_gradients() {
        let device = Default::default();
        let cases = [
            (Conv2dConfig::new([3, 5], [3, 3]).with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1)), [2, 3, 7, 6]),
            (Conv2dConfig::new([4, 6], [1, 1]), [2, 4, 5, 5]),
            (
                Conv2dConfig::new([4, 4], [3, 3])
                    .with_stride([2, 2])
                    .with_padding(PaddingConfig2d::Explicit(0, 0, 1, 1)),
                [3, 4, 8, 6],
            ),
            (Conv2dConfig::new([2, 3], [3, 3]).with_bias(false), [1, 2, 4, 5]),
        ];
        for (config, shape) in cases {
            let conv = config.init::<B>(&device);
            let x = Tensor::<B, 4>::random(shape, Distribution::Normal(0.0, 1.0), &device).require_grad();
            let expected = conv.forward(x.clone());
            assert!(gemm_padding(&conv).is_some(), "the GEMM form should cover this convolution");
            let got = conv2d_by_gemm(&conv, x.clone());
            assert_eq!(got.dims(), expected.dims());
            got.to_data().assert_approx_eq::<f32>(&expected.to_data(), Tolerance::absolute(1e-5));

            // Gradients of a random linear functional of the output.
            let probe = Tensor::<B, 4>::random(expected.dims(), Distribution::Normal(0.0, 1.0), &device).detach();
            let grads_expected = (expected * probe.clone()).sum().backward();
            let grads_got = (got * probe).sum().backward();
            let xe = x.grad(&grads_expected).unwrap();
            x.grad(&grads_got).unwrap().to_data().assert_approx_eq::<f32>(&xe.to_data(), Tolerance::absolute(1e-4));
            let we = conv.weight.grad(&grads_expected).unwrap();
            let wg = conv.weight.grad(&grads_got).unwrap();
            wg.to_data().assert_approx_eq::<f32>(&we.to_data(), Tolerance::absolute(1e-4));
            if let Some(bias) = &conv.bias {
                bias.grad(&grads_got)
                    .unwrap()
                    .to_data()
                    .assert_approx_eq::<f32>(&bias.grad(&grads_expected).unwrap().to_data(), Tolerance::absolute(1e-4));
            }
        }
    }

    /// `Same` padding is not covered by the GEMM form: the backend's op runs, bit for bit.
    #[test]
    fn uncovered_convolutions_run_the_backends_op() {
        let device = Default::default();
        let conv = Conv2dConfig::new([2, 2], [3, 3]).with_padding(PaddingConfig2d::Same).init::<NdArray<f32>>(&device);
        let x = Tensor::<NdArray<f32>, 4>::random([1, 2, 5, 5], Distribution::Default, &device);
        assert!(gemm_padding(&conv).is_none());
        conv2d_by_gemm(&conv, x.clone()).to_data().assert_eq(&conv.forward(x).to_data(), true);
    }

    /// Where a backend lacks f64 the class log-softmax runs in f32. At K = 4096 with a wide
    /// logit spread (N(0, 5²), log p down to about −41) the f32 result moves by about 1e-5: a
    /// per-pixel offset (the rounding of the f32 sum of 4096 exponentials) plus rounding of each
    /// value, so differences between the classes of a pixel stay within two ulps of the largest
    /// magnitude.
    #[test]
    fn f32_class_log_softmax_stays_close_to_f64() {
        let device = Default::default();
        NdArray::<f32>::seed(&device, 7);
        let logits = Tensor::<NdArray, 3>::random([2, 4096, 64], Distribution::Normal(0.0, 5.0), &device);
        assert_eq!(log_softmax_dtype::<NdArray>(&device), DType::F64, "NdArray supports f64");
        let wide = class_log_softmax(logits.clone(), 1);
        let narrow = class_log_softmax_in(logits, 1, DType::F32);
        assert_eq!((wide.dtype(), narrow.dtype()), (DType::F32, DType::F32));
        let min = wide.clone().min().into_scalar();
        let diff = narrow - wide;
        let err = diff.clone().abs().max().into_scalar();
        // Spread over the classes of each pixel of (f32 − f64): what is not a per-pixel offset.
        let spread = (diff.clone().max_dim(1) - diff.min_dim(1)).max().into_scalar();
        assert!(err > 0.0, "the two precisions should round differently");
        assert!(err <= 2e-5, "f32 log-softmax off by {err:e}");
        let two_ulps = 2.0 * min.abs() * f32::EPSILON;
        assert!(spread <= two_ulps, "f32 changes class differences by {spread:e} (> {two_ulps:e})");
    }

    /// Masks: the padding mask hides keys from every query, the causal mask the later keys.
    #[test]
    fn masked_attention_hides_the_masked_keys() {
        let device = Default::default();
        let q = Tensor::<NdArray, 3>::random([1, 3, 4], Distribution::Default, &device);
        let k = Tensor::<NdArray, 3>::random([1, 3, 4], Distribution::Default, &device);
        let v = Tensor::<NdArray, 3>::from_floats(
            [[[1.0, 1.0, 1.0, 1.0], [2.0, 2.0, 2.0, 2.0], [4.0, 4.0, 4.0, 4.0]]],
            &device,
        );
        // Only key 0 visible: every output row is v[0].
        let mask = Tensor::<NdArray, 2, burn::tensor::Bool>::from_bool([[false, true, true]].into(), &device);
        let out =
            attention(q.clone(), k.clone(), v.clone(), AttentionOptions::heads(1).with_key_padding_mask(Some(mask)));
        out.to_data().assert_approx_eq::<f32>(
            &Tensor::<NdArray, 3>::ones([1, 3, 4], &device).to_data(),
            Tolerance::absolute(1e-6),
        );
        // Causal: the first query sees key 0 only.
        let out = attention(q, k, v, AttentionOptions::heads(1).with_causal());
        let first = out.slice([0..1, 0..1, 0..4]);
        first.to_data().assert_approx_eq::<f32>(
            &Tensor::<NdArray, 3>::ones([1, 1, 4], &device).to_data(),
            Tolerance::absolute(1e-6),
        );
    }
}
