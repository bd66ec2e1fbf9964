//! A broken checkpoint is rejected with an error naming the tensor and its expected shape.
//! The files are small safetensors written from `tiny/raw/text_encoder/model.safetensors`.

use std::path::{Path, PathBuf};

use burn::tensor::DType;
use clip_text::{CLIPTextConfig, CLIPTextModel, LoadError};
use safetensors::{serialize_to_file, Dtype};
use vq_weights::WeightsError;

use crate::common::{device, fixture, B};

struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Writes `tensors` (f32, row-major) as a safetensors file in the temp directory.
fn write_safetensors(name: &str, tensors: &[(String, Vec<usize>, Vec<f32>)]) -> TempFile {
    let path = std::env::temp_dir().join(format!("clip-text-{}-{name}.safetensors", std::process::id()));
    let bytes: Vec<Vec<u8>> =
        tensors.iter().map(|(_, _, values)| values.iter().flat_map(|v| v.to_le_bytes()).collect()).collect();
    let views = tensors.iter().zip(&bytes).map(|((key, shape, _), data)| {
        let view = safetensors::tensor::TensorView::new(Dtype::F32, shape.clone(), data).unwrap();
        (key.clone(), view)
    });
    serialize_to_file(views, None, &path).unwrap();
    TempFile(path)
}

/// Every tensor of the tiny raw-layout text encoder (keys without `text_model.`).
fn tiny_tensors() -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let path = fixture("tiny/raw/text_encoder/model.safetensors");
    vq_weights::read_all_tensors(&path)
        .unwrap()
        .into_iter()
        .map(|(key, data)| {
            let shape = data.shape.to_vec();
            (key, shape, data.to_vec::<f32>().unwrap())
        })
        .collect()
}

fn load(path: &Path) -> Result<CLIPTextModel<B>, LoadError> {
    let config = CLIPTextConfig::from_file(&fixture("tiny/raw/text_encoder/config.json")).unwrap();
    config.init::<B>(&device()).unwrap().load_weights(path, DType::F32)
}

#[test]
fn unmodified_copy_loads() {
    let file = write_safetensors("ok", &tiny_tensors());
    load(&file.0).unwrap();
}

#[test]
fn missing_tensor_is_named_with_its_shape() {
    let mut tensors = tiny_tensors();
    tensors.retain(|(key, _, _)| key != "encoder.layers.1.mlp.fc1.weight");
    let file = write_safetensors("missing", &tensors);
    let error = load(&file.0).unwrap_err();
    let message = error.to_string();
    match error {
        LoadError::Weights(WeightsError::Missing { missing, .. }) => {
            assert_eq!(missing, [("encoder.layers.1.mlp.fc1.weight".to_string(), vec![37, 16])]);
        }
        other => panic!("unexpected error {other}"),
    }
    assert!(message.contains("encoder.layers.1.mlp.fc1.weight") && message.contains("[37, 16]"), "{message}");
}

#[test]
fn misshapen_tensor_is_named_with_expected_shape() {
    let mut tensors = tiny_tensors();
    let entry = tensors.iter_mut().find(|(key, _, _)| key == "encoder.layers.0.self_attn.q_proj.weight").unwrap();
    entry.1 = vec![8, 32]; // same number of values, wrong shape
    let file = write_safetensors("shape", &tensors);
    let error = load(&file.0).unwrap_err();
    let message = error.to_string();
    match error {
        LoadError::Weights(WeightsError::Shape { tensor, expected, found, .. }) => {
            assert_eq!(tensor, "encoder.layers.0.self_attn.q_proj.weight");
            assert_eq!(expected, [16, 16]);
            assert_eq!(found, [8, 32]);
        }
        other => panic!("unexpected error {other}"),
    }
    assert!(message.contains("q_proj.weight") && message.contains("[16, 16]"), "{message}");
}

/// A checkpoint of a bigger model (an extra layer) is not loaded partially.
#[test]
fn unexpected_tensor_is_an_error() {
    let mut tensors = tiny_tensors();
    tensors.push(("text_projection.weight".into(), vec![16, 16], vec![0.0; 256]));
    let file = write_safetensors("unexpected", &tensors);
    let error = load(&file.0).unwrap_err();
    assert!(
        matches!(&error, LoadError::Weights(WeightsError::Unexpected { keys, .. }) if keys == &["text_projection.weight"]),
        "{error}"
    );
}

#[test]
fn missing_directory_names_the_config() {
    let error =
        CLIPTextModel::<B>::from_pretrained(Path::new("/nonexistent/text_encoder"), None, &device()).unwrap_err();
    assert!(error.to_string().contains("config.json"), "{error}");
}
