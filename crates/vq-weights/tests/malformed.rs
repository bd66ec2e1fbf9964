//! Malformed checkpoints of every kind a stranger could publish: each is rejected with a typed
//! error naming the file, the tensor and what was wrong — and valid PyTorch files load to
//! exactly the values of their safetensors twins.

mod support;

use std::path::{Path, PathBuf};

use burn::backend::NdArray;
use burn::module::Module;
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::DType;
use support::*;
use vq_weights::{load_module, read_all_tensors, KeyMap, WeightsError};

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

fn keys() -> KeyMap {
    KeyMap::new(&[(r"^model\.", "")])
}

/// Writes the named case of [`malformed_cases`] and loads the block from it.
fn load_case(name: &str) -> (PathBuf, WeightsError) {
    let (_, ext, bytes) = malformed_cases().into_iter().find(|(n, _, _)| *n == name).expect("a known case");
    let path = write(&tempdir(name), &format!("{name}.{ext}"), &bytes);
    let err = load_module(block(), &path, &keys(), DType::F32).expect_err(name);
    (path, err)
}

/// The error message names the file and contains every one of `parts`.
fn assert_names(err: &WeightsError, path: &Path, parts: &[&str]) {
    let msg = err.to_string();
    assert!(msg.contains(&path.display().to_string()), "no file name in: {msg}");
    for part in parts {
        assert!(msg.contains(part), "`{part}` missing from: {msg}");
    }
}

fn values(b: &Block<B>) -> Vec<Vec<f32>> {
    let v = |t: burn::tensor::Tensor<B, 1>| t.into_data().to_vec::<f32>().unwrap();
    vec![
        v(b.proj.weight.val().flatten(0, 1)),
        v(b.proj.bias.as_ref().unwrap().val()),
        v(b.norm.gamma.val()),
        v(b.norm.beta.as_ref().unwrap().val()),
    ]
}

#[test]
fn a_valid_bin_loads_exactly_like_its_safetensors_twin() {
    let dir = tempdir("valid-bin");
    let st = write(&dir, "w.safetensors", &block_safetensors(|_| {}));
    let expected = values(&load_module(block(), &st, &keys(), DType::F32).unwrap());
    // burn's Linear weight is the transpose of the file's [out, in].
    assert_eq!(expected[0], vec![1., 4., 2., 5., 3., 6.]);

    let plain = write(&dir, "plain.bin", &block_bin(|_, _| {}));
    assert_eq!(values(&load_module(block(), &plain, &keys(), DType::F32).unwrap()), expected);

    // One shared storage with offsets, and the weight saved as a transposed view.
    let shared = write(&dir, "shared.bin", &shared_storage_bin());
    assert_eq!(values(&load_module(block(), &shared, &keys(), DType::F32).unwrap()), expected);
}

#[test]
fn fixture_pickles_hold_their_safetensors_values_bit_for_bit() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/tiny");
    for (component, stem) in [
        ("text_encoder", "model"),
        ("transformer", "diffusion_pytorch_model"),
        ("vqvae", "diffusion_pytorch_model"),
        ("learned_classifier_free_sampling_embeddings", "diffusion_pytorch_model"),
    ] {
        let bin_stem = if stem == "model" { "pytorch_model" } else { stem };
        let bin = read_all_tensors(&fixtures.join(format!("bin/{component}/{bin_stem}.bin"))).unwrap();
        let st = read_all_tensors(&fixtures.join(format!("hub/{component}/{stem}.safetensors"))).unwrap();
        let names = |v: &[(String, burn::tensor::TensorData)]| v.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
        assert_eq!(names(&bin), names(&st), "{component}");
        for ((key, a), (_, b)) in bin.iter().zip(&st) {
            assert_eq!((a.dtype, &a.shape), (b.dtype, &b.shape), "{component} {key}");
            assert_eq!(a.as_bytes(), b.as_bytes(), "{component} {key}");
        }
        let bin_path = fixtures.join(format!("bin/{component}/{bin_stem}.bin"));
        assert_same_as_burn_store(&bin_path, &bin);
        assert_same_as_burn_store(&fixtures.join(format!("hub/{component}/{stem}.safetensors")), &st);
    }
}

/// What burn-store (the reader this crate used before) reads from a valid file is what is read
/// now, key for key and byte for byte.
fn assert_same_as_burn_store(path: &Path, ours: &[(String, burn::tensor::TensorData)]) {
    use burn_store::{ModuleStore, PytorchStore, SafetensorsStore};
    let snapshots = match path.extension().is_some_and(|e| e == "safetensors") {
        true => SafetensorsStore::from_file(path).map_indices_contiguous(false).get_all_snapshots().cloned().unwrap(),
        false => PytorchStore::from_file(path).map_indices_contiguous(false).get_all_snapshots().cloned().unwrap(),
    };
    assert_eq!(snapshots.len(), ours.len(), "{}", path.display());
    for (key, data) in ours {
        let theirs = snapshots[key].to_data().unwrap();
        assert_eq!((theirs.dtype, &theirs.shape), (data.dtype, &data.shape), "{key}");
        assert_eq!(theirs.as_bytes(), data.as_bytes(), "{}: {key}", path.display());
    }
}

#[test]
fn integer_and_boolean_tensors_are_refused_before_loading() {
    for (case, found) in [
        ("dtype_i8", "I8"),
        ("dtype_u8", "U8"),
        ("dtype_bool", "BOOL"),
        ("dtype_i64", "I64"),
        ("dtype_byte_storage", "U8"),
        ("dtype_long_storage", "I64"),
        ("dtype_bool_storage", "BOOL"),
    ] {
        let (path, err) = load_case(case);
        assert!(
            matches!(&err, WeightsError::Dtype { tensor, found: f, .. } if tensor == "model.proj.weight" && f == found),
            "{case}: {err}"
        );
        assert_names(&err, &path, &["`model.proj.weight`", &format!("dtype {found}"), "expected a float type"]);
    }
}

#[test]
fn deeply_nested_pickles_are_refused() {
    let (path, err) = load_case("deep_nesting");
    assert!(matches!(err, WeightsError::Format { .. }), "{err}");
    assert_names(&err, &path, &["archive/data.pkl", "deeper than 100 levels"]);
    // A million levels: refused as early, no stack overflow.
    let path = write(&tempdir("nesting-1m"), "w.bin", &torch_archive("archive", &nested_lists(1_000_000), &[]));
    let err = load_module(block(), &path, &keys(), DType::F32).unwrap_err();
    assert_names(&err, &path, &["deeper than 100 levels"]);
}

#[test]
fn memo_bombs_are_neither_expanded_nor_followed_without_bound() {
    let (path, err) = load_case("memo_bomb_dicts");
    assert!(matches!(err, WeightsError::Format { .. }), "{err}");
    assert_names(&err, &path, &["more than 262144 entries"]);

    // 10⁹ list elements by reference, next to valid tensors: nothing is copied, the list is
    // no tensor, and the block loads.
    let path = write(&tempdir("memo-lists"), "lists.bin", &shared_lists_bin());
    let loaded = load_module(block(), &path, &keys(), DType::F32).unwrap();
    assert_eq!(values(&loaded)[2], vec![1.5, 2.5]);
}

#[test]
fn huge_shapes_are_refused_before_any_allocation() {
    let (path, err) = load_case("huge_shape_bin");
    assert!(matches!(&err, WeightsError::Tensor { tensor, .. } if tensor == "model.proj.bias"), "{err}");
    assert_names(&err, &path, &["[1000000000000]", "reaches past the end of its storage `data/1` (2 F32 values)"]);

    let (path, err) = load_case("huge_shape_safetensors");
    assert!(matches!(err, WeightsError::Format { .. }), "{err}");
    assert_names(&err, &path, &["invalid header"]);
}

#[test]
fn short_and_missing_storages_are_errors_not_zeros() {
    let (path, err) = load_case("short_storage");
    assert!(matches!(&err, WeightsError::Tensor { tensor, .. } if tensor == "model.proj.weight"), "{err}");
    assert_names(&err, &path, &["storage `data/0` holds 12 bytes, but the pickle declares 6 F32 values (24 bytes)"]);

    let (path, err) = load_case("missing_storage");
    assert!(matches!(&err, WeightsError::Tensor { tensor, .. } if tensor == "model.proj.bias"), "{err}");
    assert_names(&err, &path, &["its storage `data/1` is missing from the archive"]);
}

#[test]
fn offsets_past_the_end_or_overflowing_are_errors() {
    let (path, err) = load_case("offset_past_end");
    assert!(matches!(&err, WeightsError::Tensor { tensor, .. } if tensor == "model.proj.weight"), "{err}");
    assert_names(&err, &path, &["at offset 6 reaches past the end of its storage `data/0` (6 F32 values)"]);

    let (path, err) = load_case("offset_overflow");
    assert!(matches!(&err, WeightsError::Tensor { .. }), "{err}");
    assert_names(&err, &path, &["reaches past the end of its storage"]);

    let (path, err) = load_case("storage_size_overflow");
    assert!(matches!(&err, WeightsError::Tensor { .. }), "{err}");
    assert_names(&err, &path, &["declares 9223372036854775807 F32 values (too many bytes)"]);

    let (path, err) = load_case("header_offsets_overflow");
    assert!(matches!(err, WeightsError::Format { .. }), "{err}");
    assert_names(&err, &path, &["invalid header"]);

    let (path, err) = load_case("header_too_large");
    assert_names(&err, &path, &["the header length field says 1099511627776 bytes, more than the limit"]);
}

#[test]
fn non_finite_weights_are_refused() {
    let (path, err) = load_case("non_finite");
    assert!(matches!(&err, WeightsError::NonFinite { tensor, index: 1, .. } if tensor == "model.proj.weight"), "{err}");
    assert_names(&err, &path, &["holds NaN at element 1"]);

    let path =
        write(&tempdir("inf"), "w.safetensors", &block_safetensors(|e| e[1].3 = f32_bytes(&[0., f32::INFINITY])));
    let err = load_module(block(), &path, &keys(), DType::F32).unwrap_err();
    assert_names(&err, &path, &["`model.proj.bias` holds inf at element 1 (as F32)"]);
}

#[test]
fn a_dtype_the_backend_cannot_hold_is_an_error_not_a_panic() {
    // NdArray has no f16 tensors.
    let path = write(&tempdir("f16"), "w.safetensors", &block_safetensors(|_| {}));
    let err = load_module(block(), &path, &keys(), DType::F16).unwrap_err();
    assert!(matches!(err, WeightsError::Unsupported { .. }), "{err}");
    assert!(err.to_string().contains("the backend cannot hold F16 tensors"), "{err}");
}

#[test]
fn legacy_and_foreign_pickles_are_named() {
    let (path, err) = load_case("legacy_pickle");
    assert_names(&err, &path, &["legacy format of torch < 1.6"]);
    let (path, err) = load_case("unknown_global");
    assert_names(&err, &path, &["global `os.system` is not one this reader accepts"]);
}

#[test]
fn two_keys_for_one_parameter_are_an_error() {
    let bytes = block_safetensors(|e| {
        let mut twin = e[1].clone();
        twin.0 = "proj.bias".into();
        e.push(twin);
    });
    let path = write(&tempdir("duplicate"), "w.safetensors", &bytes);
    let keys = KeyMap::new(&[(r"^model\.", "")]);
    let err = load_module(block(), &path, &keys, DType::F32).unwrap_err();
    assert!(matches!(err, WeightsError::Duplicate { ref parameter, .. } if parameter == "proj.bias"), "{err}");
}

#[test]
fn special_files_are_refused_without_blocking() {
    let dir = tempdir("special");
    let fifo = dir.join("w.safetensors");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    std::fs::remove_file(&fifo).ok();
    // SAFETY: `c` is a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let err = load_module(block(), &fifo, &keys(), DType::F32).unwrap_err();
    assert!(matches!(err, WeightsError::Io { .. }), "{err}");
    assert_names(&err, &fifo, &["is a FIFO (named pipe), not a regular file"]);
}

/// Where each case goes in the fuzz corpus: the format's own target and `load_module`.
fn corpus_files() -> Vec<(PathBuf, Vec<u8>)> {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
    let mut files = Vec::new();
    for (name, ext, bytes) in valid_cases().into_iter().chain(malformed_cases()) {
        let format = if ext == "bin" { "pytorch" } else { "safetensors" };
        for target in [format, "load_module"] {
            files.push((corpus.join(target).join(format!("{name}.{ext}")), bytes.clone()));
        }
    }
    files
}

/// The committed fuzz corpus holds every case of this file, byte for byte (so fuzzing
/// always starts from each of them).
#[test]
fn the_fuzz_corpus_holds_every_case() {
    for (path, bytes) in corpus_files() {
        let committed = std::fs::read(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (regenerate: cargo test -p vq-weights --test malformed -- --ignored write_fuzz_corpus)",
                path.display()
            )
        });
        assert!(committed == bytes, "{} is out of date (regenerate with write_fuzz_corpus)", path.display());
    }
}

/// Writes the cases into the fuzz corpus.
#[test]
#[ignore = "writes into the source tree; run by hand when the cases change"]
fn write_fuzz_corpus() {
    for (path, bytes) in corpus_files() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, bytes).unwrap();
    }
}
