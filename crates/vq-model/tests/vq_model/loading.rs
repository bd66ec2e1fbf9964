//! Weight loading: the three layouts and the fp16 file load the same parameters; broken
//! checkpoints fail with errors naming the tensor.

use std::collections::BTreeMap;
use std::path::Path;

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{DType, Tensor, TensorData};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use vq_model::{LoadError, VQModel, VQModelConfig};
use vq_weights::WeightsError;

use crate::common::{temp_dir, tiny_vqvae, vqvae_dir, B};

/// Every float parameter of a module, in visiting order.
struct Collect(Vec<TensorData>);

impl ModuleVisitor<B> for Collect {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        self.0.push(param.val().into_data());
    }
}

fn parameters(model: &VQModel<B>) -> Vec<TensorData> {
    let mut collect = Collect(Vec::new());
    model.visit(&mut collect);
    collect.0
}

#[test]
fn hub_raw_and_bin_layouts_load_identical_parameters() {
    let hub = parameters(&tiny_vqvae("hub"));
    assert_eq!(hub.len(), hub_tensors().len());
    assert_eq!(parameters(&tiny_vqvae("raw")), hub, "raw (to_q/to_k/to_v/to_out.0) differs from hub");
    assert_eq!(parameters(&tiny_vqvae("bin")), hub, ".bin differs from hub");
}

#[test]
fn fp16_file_loads_as_the_f16_rounding_of_the_f32_weights() {
    let device = Default::default();
    let fp16 = VQModel::<B>::from_pretrained(&vqvae_dir("hub"), Some("fp16"), &device).unwrap();
    let f32_params = parameters(&tiny_vqvae("hub"));
    let f16_params = parameters(&fp16);
    assert_eq!(f16_params.len(), f32_params.len());
    for (loaded, full) in f16_params.into_iter().zip(f32_params) {
        assert_eq!(loaded.dtype, DType::F32);
        assert_eq!(loaded, full.convert_dtype(DType::F16).convert_dtype(DType::F32));
    }
}

/// The tensors of the tiny hub-layout safetensors file, as (dtype, shape, bytes).
fn hub_tensors() -> BTreeMap<String, (Dtype, Vec<usize>, Vec<u8>)> {
    let bytes = std::fs::read(vqvae_dir("hub").join("diffusion_pytorch_model.safetensors")).unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    file.tensors()
        .into_iter()
        .map(|(name, view)| (name, (view.dtype(), view.shape().to_vec(), view.data().to_vec())))
        .collect()
}

fn write(path: &Path, tensors: &BTreeMap<String, (Dtype, Vec<usize>, Vec<u8>)>) {
    let views = tensors
        .iter()
        .map(|(name, (dtype, shape, data))| (name.clone(), TensorView::new(*dtype, shape.clone(), data).unwrap()));
    std::fs::write(path, safetensors::serialize(views, None).unwrap()).unwrap();
}

/// Loads a modified copy of the hub weights into the tiny model.
fn load_modified(name: &str, modify: impl FnOnce(&mut BTreeMap<String, (Dtype, Vec<usize>, Vec<u8>)>)) -> LoadError {
    let mut tensors = hub_tensors();
    modify(&mut tensors);
    let dir = temp_dir(name);
    let path = dir.join("diffusion_pytorch_model.safetensors");
    write(&path, &tensors);
    let result = tiny_config().init::<B>(&Default::default()).unwrap().load_weights(&path, DType::F32);
    std::fs::remove_dir_all(&dir).unwrap();
    result.expect_err("loading should fail")
}

fn tiny_config() -> VQModelConfig {
    VQModelConfig::from_file(&vqvae_dir("hub").join("config.json")).unwrap()
}

fn f32_tensor(shape: Vec<usize>) -> (Dtype, Vec<usize>, Vec<u8>) {
    let n = shape.iter().product::<usize>();
    (Dtype::F32, shape, vec![0; 4 * n])
}

#[test]
fn missing_tensor_is_named_with_its_expected_shape() {
    let error = load_modified("missing", |t| {
        t.remove("decoder.conv_out.weight").unwrap();
    });
    match &error {
        LoadError::Weights(WeightsError::Missing { missing, .. }) => {
            assert_eq!(missing, &[("decoder.conv_out.weight".to_string(), vec![3, 20, 3, 3])]);
        }
        other => panic!("unexpected error {other:?}"),
    }
    assert!(error.to_string().contains("decoder.conv_out.weight"), "{error}");
}

#[test]
fn misshapen_tensor_is_named_with_both_shapes() {
    let error = load_modified("shape", |t| {
        t.insert("quantize.embedding.weight".into(), f32_tensor(vec![30, 7]));
    });
    match error {
        LoadError::Weights(WeightsError::Shape { tensor, expected, found, .. }) => {
            assert_eq!(tensor, "quantize.embedding.weight");
            assert_eq!((expected, found), (vec![31, 7], vec![30, 7]));
        }
        other => panic!("unexpected error {other:?}"),
    }
    // A legacy-named attention weight is reported under its checkpoint key, in torch's [out, in] layout.
    let error = load_modified("shape-legacy", |t| {
        t.insert("decoder.mid_block.attentions.0.query.weight".into(), f32_tensor(vec![28, 27]));
    });
    match error {
        LoadError::Weights(WeightsError::Shape { tensor, expected, found, .. }) => {
            assert_eq!(tensor, "decoder.mid_block.attentions.0.query.weight");
            assert_eq!((expected, found), (vec![28, 28], vec![28, 27]));
        }
        other => panic!("unexpected error {other:?}"),
    }
}

#[test]
fn unexpected_tensor_is_an_error() {
    let error = load_modified("unexpected", |t| {
        t.insert("encoder.down_blocks.0.resnets.2.conv1.bias".into(), f32_tensor(vec![20]));
    });
    match error {
        LoadError::Weights(WeightsError::Unexpected { keys, .. }) => {
            assert_eq!(keys, ["encoder.down_blocks.0.resnets.2.conv1.bias"]);
        }
        other => panic!("unexpected error {other:?}"),
    }
}

#[test]
fn config_without_mid_attention_rejects_a_checkpoint_that_has_it() {
    let mut config = tiny_config();
    config.mid_block_add_attention = false;
    let model = config.init::<B>(&Default::default()).unwrap();
    let error =
        model.load_weights(&vqvae_dir("hub").join("diffusion_pytorch_model.safetensors"), DType::F32).unwrap_err();
    assert!(matches!(error, LoadError::Weights(WeightsError::Unexpected { .. })), "{error:?}");
    assert!(error.to_string().contains("mid_block.attentions.0"), "{error}");
}

#[test]
fn unreadable_and_corrupt_files_are_errors() {
    let model = || tiny_config().init::<B>(&Default::default()).unwrap();
    let dir = temp_dir("corrupt");
    let error = model().load_weights(&dir.join("absent.safetensors"), DType::F32).unwrap_err();
    assert!(matches!(error, LoadError::Weights(WeightsError::Io { .. })), "{error:?}");
    for name in ["corrupt.safetensors", "corrupt.bin"] {
        let path = dir.join(name);
        std::fs::write(&path, b"not a checkpoint").unwrap();
        let error = model().load_weights(&path, DType::F32).unwrap_err();
        assert!(matches!(error, LoadError::Weights(WeightsError::Format { .. })), "{name}: {error:?}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
