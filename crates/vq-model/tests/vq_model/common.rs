//! Shared helpers: the backend, fixture paths and tensor comparisons.

use std::path::{Path, PathBuf};

use burn::tensor::{Int, Tensor, TensorData};
use vq_model::VQModel;

pub type B = burn::backend::NdArray;

/// The repository's `fixtures/` folder.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

/// `fixtures/tiny/<layout>/vqvae`.
pub fn vqvae_dir(layout: &str) -> PathBuf {
    fixtures().join("tiny").join(layout).join("vqvae")
}

/// The tiny pipeline's VQ-VAE in one of the on-disk layouts (`hub`, `raw`, `bin`).
pub fn tiny_vqvae(layout: &str) -> VQModel<B> {
    VQModel::from_pretrained(&vqvae_dir(layout), None, &Default::default())
        .unwrap_or_else(|e| panic!("loading tiny/{layout}/vqvae: {e}"))
}

/// A tensor of the diffusers reference fixture (f32 or i64).
pub fn reference(name: &str) -> TensorData {
    vq_weights::read_tensor(&fixtures().join("reference/tiny.safetensors"), name)
        .unwrap_or_else(|e| panic!("reading fixture tensor {name}: {e}"))
}

pub fn reference_float<const D: usize>(name: &str) -> Tensor<B, D> {
    Tensor::from_data(reference(name), &Default::default())
}

pub fn reference_int<const D: usize>(name: &str) -> Tensor<B, D, Int> {
    Tensor::from_data(reference(name), &Default::default())
}

/// The values of a float tensor.
pub fn values<const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().to_vec::<f32>().unwrap()
}

/// max |a − b| over all elements; the shapes must agree.
pub fn max_abs_diff<const D: usize>(a: Tensor<B, D>, b: Tensor<B, D>) -> f32 {
    assert_eq!(a.dims(), b.dims(), "shapes differ");
    values(a).iter().zip(values(b)).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// A fresh, unique temporary directory (removed by the caller with `remove_dir_all`).
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vq-model-test-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
