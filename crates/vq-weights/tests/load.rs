//! Loading a small module from safetensors files written here: layout conversion, dtype casts,
//! and every error a user can meet.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::backend::NdArray;
use burn::module::Module;
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::{DType, Tensor};
use safetensors::tensor::TensorView;
use safetensors::Dtype;
use vq_weights::{find_weights_file, load_module, read_tensor, KeyMap, WeightsError};

type B = NdArray<f32>;

#[derive(Module, Debug)]
struct Block<B: burn::tensor::backend::Backend> {
    proj: Linear<B>,
    norm: LayerNorm<B>,
}

fn block() -> Block<B> {
    let device = Default::default();
    Block { proj: LinearConfig::new(3, 2).init(&device), norm: LayerNormConfig::new(2).init(&device) }
}

/// Writes `tensors` (name, shape, f32 values) as a safetensors file, in f32 or f16.
fn write(dir: &Path, name: &str, tensors: &[(&str, Vec<usize>, Vec<f32>)], half: bool) -> PathBuf {
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, _, v)| {
            if half {
                v.iter().flat_map(|x| half::f16::from_f32(*x).to_le_bytes()).collect()
            } else {
                v.iter().flat_map(|x| x.to_le_bytes()).collect()
            }
        })
        .collect();
    let dtype = if half { Dtype::F16 } else { Dtype::F32 };
    let views: HashMap<String, TensorView> = tensors
        .iter()
        .zip(&bytes)
        .map(|((n, s, _), b)| (n.to_string(), TensorView::new(dtype, s.clone(), b).unwrap()))
        .collect();
    let path = dir.join(name);
    safetensors::serialize_to_file(views, None, &path).unwrap();
    path
}

fn checkpoint() -> Vec<(&'static str, Vec<usize>, Vec<f32>)> {
    vec![
        // PyTorch layout [out, in].
        ("model.proj.weight", vec![2, 3], vec![1., 2., 3., 4., 5., 6.]),
        ("model.proj.bias", vec![2], vec![0.5, -0.5]),
        ("model.norm.weight", vec![2], vec![1.5, 2.5]),
        ("model.norm.bias", vec![2], vec![0.25, 0.75]),
        ("model.position_ids", vec![1], vec![0.]),
    ]
}

fn keys() -> KeyMap {
    KeyMap::new(&[(r"^model\.", "")]).ignore(&[r"position_ids$"])
}

fn tempdir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vq-weights-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn loads_transposes_renames_and_casts() {
    let dir = tempdir("ok");
    for half in [false, true] {
        let path = write(&dir, "w.safetensors", &checkpoint(), half);
        let b = load_module(block(), &path, &keys(), DType::F32).unwrap();
        assert_eq!(b.proj.weight.val().dtype(), DType::F32);
        // burn's Linear weight is [in, out]: the transpose of the file's [out, in].
        let w = b.proj.weight.val().into_data().to_vec::<f32>().unwrap();
        assert_eq!(w, vec![1., 4., 2., 5., 3., 6.]);
        let gamma = b.norm.gamma.val().into_data().to_vec::<f32>().unwrap();
        assert_eq!(gamma, vec![1.5, 2.5]);
        let beta = b.norm.beta.as_ref().unwrap().val().into_data().to_vec::<f32>().unwrap();
        assert_eq!(beta, vec![0.25, 0.75]);
        // The loaded layer computes x·Wᵀ + b like PyTorch.
        let x = Tensor::<B, 2>::from_floats([[1., 0., -1.]], &Default::default());
        let y = b.proj.forward(x).into_data().to_vec::<f32>().unwrap();
        assert_eq!(y, vec![1. - 3. + 0.5, 4. - 6. - 0.5]);
    }
}

#[test]
fn missing_tensor_is_named_with_its_shape() {
    let dir = tempdir("missing");
    let mut ckpt = checkpoint();
    ckpt.retain(|(n, _, _)| *n != "model.proj.weight");
    let path = write(&dir, "w.safetensors", &ckpt, false);
    let err = load_module(block(), &path, &keys(), DType::F32).unwrap_err();
    assert!(
        matches!(&err, WeightsError::Missing { missing, .. } if missing == &vec![("proj.weight".to_string(), vec![2, 3])])
    );
    let msg = err.to_string();
    assert!(msg.contains("`proj.weight` [2, 3]") && msg.contains("w.safetensors"), "{msg}");
}

#[test]
fn misshapen_tensor_is_named_with_both_shapes() {
    let dir = tempdir("shape");
    let mut ckpt = checkpoint();
    ckpt[0] = ("model.proj.weight", vec![3, 2], vec![1., 2., 3., 4., 5., 6.]);
    let path = write(&dir, "w.safetensors", &ckpt, false);
    let err = load_module(block(), &path, &keys(), DType::F32).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, WeightsError::Shape { ref tensor, ref expected, ref found, .. }
        if tensor == "model.proj.weight" && expected == &vec![2, 3] && found == &vec![3, 2]),
        "{msg}"
    );
}

#[test]
fn unexpected_tensor_is_an_error() {
    let dir = tempdir("extra");
    let mut ckpt = checkpoint();
    ckpt.push(("model.extra.weight", vec![1], vec![1.]));
    let path = write(&dir, "w.safetensors", &ckpt, false);
    let err = load_module(block(), &path, &keys(), DType::F32).unwrap_err();
    assert!(
        matches!(&err, WeightsError::Unexpected { keys, .. } if keys == &vec!["model.extra.weight".to_string()]),
        "{err}"
    );
}

#[test]
fn unreadable_and_corrupt_files_are_errors() {
    let dir = tempdir("corrupt");
    let err = load_module(block(), &dir.join("absent.safetensors"), &keys(), DType::F32).unwrap_err();
    assert!(matches!(err, WeightsError::Io { .. }), "{err}");

    let path = write(&dir, "w.safetensors", &checkpoint(), false);
    let bytes = std::fs::read(&path).unwrap();
    let truncated = dir.join("truncated.safetensors");
    std::fs::write(&truncated, &bytes[..bytes.len() - 7]).unwrap();
    let err = load_module(block(), &truncated, &keys(), DType::F32).unwrap_err();
    assert!(matches!(err, WeightsError::Format { .. }), "{err}");

    let garbage = dir.join("garbage.bin");
    std::fs::write(&garbage, b"not a pickle").unwrap();
    let err = load_module(block(), &garbage, &keys(), DType::F32).unwrap_err();
    assert!(matches!(err, WeightsError::Format { .. }), "{err}");
}

#[test]
fn finds_files_by_diffusers_and_transformers_names() {
    let dir = tempdir("find");
    let err = find_weights_file(&dir, "model", None).unwrap_err();
    assert!(err.to_string().contains("model.safetensors, pytorch_model.bin"), "{err}");
    std::fs::write(dir.join("pytorch_model.bin"), b"").unwrap();
    assert_eq!(find_weights_file(&dir, "model", None).unwrap(), dir.join("pytorch_model.bin"));
    write(&dir, "model.safetensors", &checkpoint(), false);
    assert_eq!(find_weights_file(&dir, "model", None).unwrap(), dir.join("model.safetensors"));
    write(&dir, "model.fp16.safetensors", &checkpoint(), true);
    assert_eq!(find_weights_file(&dir, "model", Some("fp16")).unwrap(), dir.join("model.fp16.safetensors"));

    let t = read_tensor(&dir.join("model.fp16.safetensors"), "model.norm.bias").unwrap();
    assert_eq!(t.dtype, DType::F32);
    assert_eq!(t.to_vec::<f32>().unwrap(), vec![0.25, 0.75]);
    assert!(matches!(read_tensor(&dir.join("model.safetensors"), "nope"), Err(WeightsError::NoTensor { .. })));
}
