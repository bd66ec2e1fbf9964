//! The model's convolutions: by the backend's convolution kernels (the default) or as one
//! explicit matrix product over stacked shifted views ("im2col" GEMM), chosen per thread.
//!
//! Why a second algorithm: burn 0.21 backends differ a lot in how they convolve. Without
//! autotuning (the `cuda-untuned` build used for training), CUDA runs convolutions and their
//! gradients with direct kernels: in a VQ-VAE training step on an H100 they were 79 % of the
//! kernel time (1.1 s of a 1.4 s step at batch 64, BENCHMARKS.md). NdArray's gradient kernels
//! are slower still (a 64×64 VQ-VAE step at batch 4 took 22 s on two cores). The GEMM form runs
//! on the matrix-product kernels every backend makes fast, and its gradient is a matrix product
//! plus slice assignments. Both forms compute the same sums in a different order (f32 results
//! agree to rounding; the test bounds it).

use std::cell::Cell;

use burn::nn::conv::Conv2d;
use burn::nn::PaddingConfig2d;
use burn::tensor::backend::Backend;
use burn::tensor::ops::PadMode;
use burn::tensor::{Slice, Tensor};

/// How [`conv2d`] convolves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConvAlgorithm {
    /// The backend's convolution op (`burn::nn::conv::Conv2d::forward`).
    Backend,
    /// Shifted views stacked along channels, then one batched matrix product with the weights
    /// reshaped to `[C_out, C_in·k_h·k_w]`. Uses `k_h·k_w` times the input's memory.
    Gemm,
}

thread_local! {
    static ALGORITHM: Cell<ConvAlgorithm> = const { Cell::new(ConvAlgorithm::Backend) };
}

/// Chooses the algorithm of every [`conv2d`] run on the calling thread (default
/// [`ConvAlgorithm::Backend`]); a trainer sets it once before its loop.
pub fn set_conv_algorithm(algorithm: ConvAlgorithm) {
    ALGORITHM.with(|a| a.set(algorithm));
}

/// The algorithm [`conv2d`] uses on the calling thread.
pub fn conv_algorithm() -> ConvAlgorithm {
    ALGORITHM.with(Cell::get)
}

/// `conv.forward(x)` by the calling thread's [`ConvAlgorithm`]. The GEMM form covers what this model
/// uses (groups 1, dilation 1, explicit or no padding, any stride); anything else falls back to
/// the backend's op.
///
/// # Shapes
///
/// - x: `[batch, C_in, height, width]`
/// - output: `[batch, C_out, (height + pad − k_h)/stride + 1, (width + pad − k_w)/stride + 1]`
pub fn conv2d<B: Backend>(conv: &Conv2d<B>, x: Tensor<B, 4>) -> Tensor<B, 4> {
    match gemm_padding(conv) {
        Some(padding) if conv_algorithm() == ConvAlgorithm::Gemm => {
            conv2d_gemm(x, conv.weight.val(), conv.bias.as_ref().map(|b| b.val()), conv.stride, padding)
        }
        _ => conv.forward(x),
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

/// Convolution as a matrix product: out[b] = W · cols[b], where column `(y, x)` of `cols[b]`
/// holds the `C_in·k_h·k_w` input values under the kernel at output pixel `(y, x)`, ordered
/// like the weight's `[C_in, k_h, k_w]` so that the weight only needs a reshape.
///
/// # Shapes
///
/// - x: `[batch, C_in, height, width]`; weight: `[C_out, C_in, k_h, k_w]`; bias: `[C_out]`
/// - padding: `[top, left, bottom, right]`
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
    /// kind of convolution in the model (3×3 padded, 1×1, 3×3 stride 2 with diffusers'
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
            let padding = gemm_padding(&conv).expect("the model's kinds of convolution");
            let got =
                conv2d_gemm(x.clone(), conv.weight.val(), conv.bias.as_ref().map(|b| b.val()), conv.stride, padding);
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

    #[test]
    fn the_per_thread_switch_routes_conv2d() {
        let device = Default::default();
        let same = Conv2dConfig::new([2, 2], [3, 3]).with_padding(PaddingConfig2d::Same).init::<NdArray<f32>>(&device);
        let explicit = Conv2dConfig::new([2, 2], [3, 3])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .init::<NdArray<f32>>(&device);
        let x = Tensor::<NdArray<f32>, 4>::random([1, 2, 5, 5], Distribution::Default, &device);
        assert_eq!(conv_algorithm(), ConvAlgorithm::Backend);
        set_conv_algorithm(ConvAlgorithm::Gemm);
        assert_eq!(conv_algorithm(), ConvAlgorithm::Gemm);
        // `Same` padding is not covered by the GEMM form: the backend's op runs, bit for bit.
        conv2d(&same, x.clone()).to_data().assert_eq(&same.forward(x.clone()).to_data(), true);
        // Explicit padding is: the result differs from the backend's in the last bits only.
        let gemm = conv2d(&explicit, x.clone());
        gemm.to_data().assert_approx_eq::<f32>(&explicit.forward(x.clone()).to_data(), Tolerance::absolute(1e-5));
        // Another thread keeps the default.
        let backend = std::thread::scope(|s| s.spawn(|| conv2d(&explicit, x.clone())).join().unwrap());
        backend.to_data().assert_eq(&explicit.forward(x).to_data(), true);
    }
}
