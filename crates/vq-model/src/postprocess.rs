//! Decoder output → image, exactly as `VQDiffusionPipeline` post-processes it
//! (`docs/reference.md`, "VQ decode and the image").

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};

/// `(x / 2 + 0.5).clamp(0, 1)`, then NCHW → NHWC: the pipeline's `output_type="np"` image.
///
/// # Shapes
///
/// - decoded: `[batch, channels, height, width]`
/// - output: `[batch, height, width, channels]`, values in `[0, 1]`
pub fn to_unit_range<B: Backend>(decoded: Tensor<B, 4>) -> Tensor<B, 4> {
    decoded.div_scalar(2.0).add_scalar(0.5).clamp(0.0, 1.0).permute([0, 2, 3, 1])
}

/// 8-bit pixels as diffusers' `numpy_to_pil` makes them: `(x · 255).round()` in f32 with
/// numpy's round-half-to-even, then `uint8`.
///
/// # Shapes
///
/// - unit: `[batch, height, width, channels]` in `[0, 1]` (from [`to_unit_range`])
/// - output: `u8` data of the same shape (NHWC)
pub fn to_rgb8<B: Backend>(unit: Tensor<B, 4>) -> TensorData {
    let shape = unit.dims();
    let values = unit.into_data().convert::<f32>();
    let bytes = values.iter::<f32>().map(unit_to_u8).collect::<Vec<u8>>();
    TensorData::new(bytes, shape)
}

/// `np.uint8(np.round(np.float32(x) * 255))` for `x` in `[0, 1]`: the product is rounded to f32
/// first, and exact halves go to the even neighbour.
fn unit_to_u8(x: f32) -> u8 {
    (x * 255.0).round_ties_even() as u8
}
