//! Weight loading: f16 files, and the errors for missing, misshapen and unexpected tensors
//! (temporary safetensors files derived from the tiny hub checkpoint).

use std::path::{Path, PathBuf};

use burn::tensor::{DType, Element};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use transformer2d::{LoadError, Transformer2DConfig, Transformer2DModel};
use vq_weights::WeightsError;

use crate::common::{device, max_abs_diff, reference, tiny_transformer, B};

/// One checkpoint tensor: dtype, shape, little-endian bytes.
type Entry = (Dtype, Vec<usize>, Vec<u8>);

fn hub_weights() -> PathBuf {
    tiny_transformer("hub").join("diffusion_pytorch_model.safetensors")
}

fn read_entries(path: &Path) -> Vec<(String, Entry)> {
    let bytes = std::fs::read(path).unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let mut entries: Vec<_> = file
        .tensors()
        .into_iter()
        .map(|(name, view)| (name, (view.dtype(), view.shape().to_vec(), view.data().to_vec())))
        .collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    entries
}

/// A temporary file removed on drop.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn write_entries(name: &str, entries: &[(String, Entry)]) -> TempFile {
    let path = std::env::temp_dir().join(format!("transformer2d-{}-{name}.safetensors", std::process::id()));
    let views = entries
        .iter()
        .map(|(key, (dtype, shape, data))| (key.clone(), TensorView::new(*dtype, shape.clone(), data).unwrap()));
    safetensors::serialize_to_file(views, None, &path).unwrap();
    TempFile(path)
}

fn tiny_model() -> Transformer2DModel<B> {
    Transformer2DConfig::from_file(&tiny_transformer("hub").join("config.json")).unwrap().init(&device()).unwrap()
}

/// Loads `path` into the tiny model; every failure here is a weights error.
fn load(path: &Path) -> Result<Transformer2DModel<B>, WeightsError> {
    tiny_model().load_weights(path, DType::F32).map_err(|error| match error {
        LoadError::Weights(error) => error,
        other => panic!("expected a weights error, got {other:?}"),
    })
}

/// A tensor of f32 zeros of `shape` in checkpoint bytes.
fn zeros(shape: &[usize]) -> Entry {
    (Dtype::F32, shape.to_vec(), vec![0; 4 * shape.iter().product::<usize>()])
}

#[test]
fn missing_tensor_is_named_with_its_expected_shape() {
    let mut entries = read_entries(&hub_weights());
    entries.retain(|(k, _)| {
        k != "transformer_blocks.1.norm1.linear.weight" && k != "transformer_blocks.0.ff.net.2.weight"
    });
    let file = write_entries("missing", &entries);
    let err = load(&file.0).unwrap_err();
    let WeightsError::Missing { missing, .. } = &err else { panic!("expected Missing, got {err:?}") };
    let mut missing = missing.clone();
    missing.sort();
    // Expected shapes in the checkpoint's [out, in] layout; paths after the key map.
    assert_eq!(
        missing,
        [
            ("transformer_blocks.0.ff.proj_out.weight".to_string(), vec![24, 96]),
            ("transformer_blocks.1.norm1.linear.weight".to_string(), vec![48, 24]),
        ]
    );
    assert!(err.to_string().contains("`transformer_blocks.1.norm1.linear.weight` [48, 24]"), "{err}");
}

#[test]
fn misshapen_tensor_is_named_with_both_shapes() {
    for (key, bad_shape, expected) in [
        ("transformer_blocks.0.attn2.to_k.weight", vec![24, 15], vec![24, 16]),
        ("latent_image_embedding.emb.weight", vec![31, 24], vec![32, 24]),
    ] {
        let mut entries = read_entries(&hub_weights());
        let entry = entries.iter_mut().find(|(k, _)| k == key).unwrap();
        entry.1 = zeros(&bad_shape);
        let file = write_entries("misshapen", &entries);
        match load(&file.0).unwrap_err() {
            WeightsError::Shape { tensor, expected: e, found, .. } => {
                assert_eq!((tensor.as_str(), e, found), (key, expected, bad_shape));
            }
            other => panic!("{key}: expected Shape, got {other:?}"),
        }
    }
}

/// A checkpoint with a third block does not load into a two-block config.
#[test]
fn unexpected_tensor_is_an_error() {
    let mut entries = read_entries(&hub_weights());
    entries.push(("transformer_blocks.2.norm3.weight".into(), zeros(&[24])));
    let file = write_entries("unexpected", &entries);
    let err = load(&file.0).unwrap_err();
    let WeightsError::Unexpected { keys, .. } = &err else { panic!("expected Unexpected, got {err:?}") };
    assert_eq!(keys, &["transformer_blocks.2.norm3.weight"]);
}

/// An f16 checkpoint loads into an f32 model with each weight equal to its f16 value.
#[test]
fn f16_checkpoint_loads_as_f32() {
    let entries: Vec<_> = read_entries(&hub_weights())
        .into_iter()
        .map(|(key, (dtype, shape, data))| {
            assert_eq!(dtype, Dtype::F32);
            let halves: Vec<u8> = data
                .chunks_exact(4)
                .flat_map(|b| half::f16::from_f32(f32::from_le_bytes(b.try_into().unwrap())).to_le_bytes())
                .collect();
            (key, (Dtype::F16, shape, halves))
        })
        .collect();
    let file = write_entries("f16", &entries);
    let model = load(&file.0).unwrap();

    // `out.weight` is [31, 24] in the file, [24, 31] (transposed) in burn.
    let weight = model.out.weight.val();
    assert_eq!(weight.dtype(), f32::dtype());
    let (_, (_, _, halves)) = entries.iter().find(|(k, _)| k == "out.weight").unwrap();
    let expected: Vec<f32> = halves.chunks_exact(2).map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()).collect();
    let expected = burn::tensor::TensorData::new(expected, [31, 24]);
    assert_eq!(max_abs_diff(&weight.transpose().into_data(), &expected), 0.0);

    // The rounded weights still give the reference log-probs to f16 accuracy.
    let latents = burn::tensor::Tensor::from_data(reference("transformer.in.latents"), &device());
    let text = burn::tensor::Tensor::from_data(reference("encode.prompt_embeds"), &device());
    let log_p = model.forward(latents, text, &transformer2d::Timesteps::Shared(37));
    let err = max_abs_diff(&log_p.into_data(), &reference("transformer.t37.log_p_x_0"));
    eprintln!("f16-rounded weights, t=37: max abs err {err:.3e}");
    assert!(err < 2e-2, "f16 weights moved log-probs by {err}");
}

#[test]
fn from_pretrained_reports_missing_files() {
    let dir = std::env::temp_dir().join(format!("transformer2d-{}-empty", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let no_config = Transformer2DModel::<B>::from_pretrained(&dir, None, &device()).unwrap_err();
    assert!(matches!(no_config, LoadError::Config(transformer2d::ConfigError::Io { .. })), "{no_config:?}");

    std::fs::copy(tiny_transformer("hub").join("config.json"), dir.join("config.json")).unwrap();
    let no_weights = Transformer2DModel::<B>::from_pretrained(&dir, None, &device()).unwrap_err();
    assert!(matches!(no_weights, LoadError::Weights(WeightsError::NotFound { .. })), "{no_weights:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}
