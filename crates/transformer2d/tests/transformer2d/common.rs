//! Shared helpers: backend, fixture paths, error measures.

use std::path::PathBuf;

use burn::tensor::TensorData;

pub type B = burn::backend::NdArray;

pub fn device() -> burn::backend::ndarray::NdArrayDevice {
    Default::default()
}

/// The workspace's `fixtures/` folder.
pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

/// The tiny pipeline's `transformer/` folder in one of the layouts `hub`, `raw`, `bin`.
pub fn tiny_transformer(layout: &str) -> PathBuf {
    fixtures().join("tiny").join(layout).join("transformer")
}

/// A tensor of the tiny reference fixture (f32 or i64).
pub fn reference(name: &str) -> TensorData {
    let path = fixtures().join("reference/tiny.safetensors");
    vq_weights::read_tensor(&path, name).unwrap_or_else(|e| panic!("{e}"))
}

fn values(data: &TensorData) -> Vec<f32> {
    data.clone().convert::<f32>().to_vec::<f32>().expect("float data")
}

/// Maximum absolute difference per slice along axis 0 (per batch row).
pub fn row_max_abs_diff(actual: &TensorData, expected: &TensorData) -> Vec<f32> {
    assert_eq!(actual.shape, expected.shape, "shape mismatch");
    let rows = expected.shape[0];
    let (a, e) = (values(actual), values(expected));
    let per_row = a.len() / rows;
    (0..rows)
        .map(|r| {
            let range = r * per_row..(r + 1) * per_row;
            a[range.clone()].iter().zip(&e[range]).map(|(&x, &y)| abs_diff(x, y)).fold(0.0, f32::max)
        })
        .collect()
}

/// |x − y|, with equal values (infinities included) at 0 and NaN as infinitely far, so that
/// a NaN cannot slip through a `max`.
fn abs_diff(x: f32, y: f32) -> f32 {
    if x == y {
        0.0
    } else if (x - y).is_nan() {
        f32::INFINITY
    } else {
        (x - y).abs()
    }
}

/// Maximum absolute difference over all elements.
pub fn max_abs_diff(actual: &TensorData, expected: &TensorData) -> f32 {
    row_max_abs_diff(actual, expected).into_iter().fold(0.0, f32::max)
}

/// Errors in scientific notation, for test logs.
pub fn sci(errs: &[f32]) -> String {
    let parts: Vec<String> = errs.iter().map(|e| format!("{e:.2e}")).collect();
    format!("[{}]", parts.join(", "))
}
