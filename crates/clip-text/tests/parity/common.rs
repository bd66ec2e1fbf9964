//! Shared helpers: fixture paths, reference tensors, error measures.

use std::path::PathBuf;

use burn::backend::ndarray::NdArrayDevice;
use burn::backend::NdArray;
use burn::tensor::{Int, Tensor, TensorData};

pub type B = NdArray<f32>;

pub fn device() -> NdArrayDevice {
    Default::default()
}

/// `fixtures/<rel>` of the workspace.
pub fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures").join(rel)
}

/// A reference tensor of `fixtures/reference/<file>` as burn data (f32 or i64).
pub fn reference(file: &str, name: &str) -> TensorData {
    let path = fixture(&format!("reference/{file}"));
    vq_weights::read_tensor(&path, name).unwrap_or_else(|e| panic!("reading `{name}` from {}: {e}", path.display()))
}

pub fn int_tensor<const D: usize>(data: TensorData) -> Tensor<B, D, Int> {
    Tensor::from_data(data, &device())
}

/// Largest |a − b| over two tensors of the same shape.
pub fn max_abs_diff<const D: usize>(actual: Tensor<B, D>, expected: &TensorData) -> f32 {
    assert_eq!(actual.shape().to_vec(), expected.shape.to_vec(), "shape mismatch");
    let actual = actual.into_data().to_vec::<f32>().unwrap();
    let expected = expected.to_vec::<f32>().unwrap();
    actual
        .iter()
        .zip(&expected)
        .map(|(a, b)| {
            assert!(a.is_finite(), "non-finite output {a}");
            (a - b).abs()
        })
        .fold(0.0, f32::max)
}

/// The metadata string `fixture` of a safetensors file, parsed as JSON.
pub fn fixture_metadata(file: &str) -> serde_json::Value {
    let bytes = std::fs::read(fixture(&format!("reference/{file}"))).unwrap();
    let (_, metadata) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let text = metadata.metadata().as_ref().and_then(|m| m.get("fixture")).expect("metadata key `fixture`").clone();
    serde_json::from_str(&text).unwrap()
}
