//! The fuzz targets' bodies, one function per target (`fuzz_targets/<name>.rs` only calls it).
//! Here they are compiled once, with every generic they use instantiated once, instead of once
//! per target binary.
//!
//! Every target asserts the same contract: a loader returns `Ok` with a usable result (finite
//! weights, ids inside the vocabulary, a model that can be built) or a typed error. A panic is
//! a crash (libFuzzer aborts on it); memory and time are capped by libFuzzer's `-rss_limit_mb`
//! and `-timeout` (see `run`).

use std::io::{Read, Seek};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use burn::backend::NdArray;
use burn::module::Module;
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::backend::Backend;
use burn::tensor::DType;
use clip_text::tokenizer::MAX_TOKEN_ID;
use clip_text::{CLIPTextConfig, Tokenizer, Truncation};
use transformer2d::Transformer2DConfig;
use vq_model::VQModelConfig;
use vq_scheduler::VQDiffusionSchedulerConfig;
use vq_weights::checkpoint::{Checkpoint, Format};
use vq_weights::{load_module, KeyMap};

/// The backend targets build modules on.
type B = NdArray<f32>;

/// Largest model a config target builds (a few MB of f32).
const MAX_BUILT_PARAMETERS: u64 = 1 << 20;

/// `safetensors`: the index (header + data section) and every tensor read, from bytes.
pub fn safetensors(data: &[u8]) {
    checkpoint(data, Format::Safetensors);
}

/// `pytorch`: the zip archive + pickle index and every tensor read, from bytes.
pub fn pytorch(data: &[u8]) {
    checkpoint(data, Format::PyTorch);
}

/// A parsed file declares no more elements than it has bits (every tensor lies inside the
/// file), and each read returns exactly the tensor's bytes or a typed error.
fn checkpoint(data: &[u8], format: Format) {
    let Ok(mut checkpoint) = Checkpoint::from_bytes(data, format) else { return };
    assert!(checkpoint.total_elements() <= data.len() as u64 * 8, "more elements than bits");
    read_every_tensor(&mut checkpoint);
}

fn read_every_tensor<R: Read + Seek>(checkpoint: &mut Checkpoint<R>) {
    for index in 0..checkpoint.tensors().len() {
        let expected = checkpoint.tensors()[index].num_bytes();
        if let Ok(bytes) = checkpoint.read_bytes(index) {
            assert_eq!(Some(bytes.len()), expected, "read_bytes returned the wrong length");
        }
    }
}

/// `load_module`: end to end, from a file (a zip archive is loaded as `.bin`, anything else as
/// `.safetensors`); `Ok` means every parameter was filled with finite values.
pub fn load(data: &[u8]) {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| scratch("load_module"));
    let name = if data.starts_with(b"PK") { "w.bin" } else { "w.safetensors" };
    let path = dir.join(name);
    std::fs::write(&path, data).expect("scratch file");
    let keys = KeyMap::new(&[(r"^model\.", "")]).ignore(&[r"position_ids$"]);
    if let Ok(block) = load_module(Block::new(), &path, &keys, DType::F32) {
        assert!(block.values().iter().all(|v| v.is_finite()), "a loaded parameter is not finite");
    }
}

/// `clip_config`: a validated config has a countable size, and a small one builds a model of
/// exactly that size (building a validated config never fails).
pub fn clip_config(data: &[u8]) {
    let Some(config) = json(data).and_then(|j| CLIPTextConfig::from_json(j).ok()) else { return };
    let count = config.num_parameters().expect("a validated config's size is countable");
    if count <= MAX_BUILT_PARAMETERS {
        let model = config.init::<B>(&Default::default()).expect("a validated config builds");
        assert_eq!(model.num_params() as u64, count);
    }
}

/// `transformer_config`: as [`clip_config`].
pub fn transformer_config(data: &[u8]) {
    let Some(config) = json(data).and_then(|j| Transformer2DConfig::from_json(j).ok()) else { return };
    let count = config.num_parameters().expect("a validated config's size is countable");
    if count <= MAX_BUILT_PARAMETERS {
        let model = config.init::<B>(&Default::default()).expect("a validated config builds");
        assert_eq!(model.num_params() as u64, count);
    }
}

/// `vqvae_config`: as [`clip_config`].
pub fn vqvae_config(data: &[u8]) {
    let Some(config) = json(data).and_then(|j| VQModelConfig::from_json(j).ok()) else { return };
    let count = config.num_parameters().expect("a validated config's size is countable");
    if count <= MAX_BUILT_PARAMETERS {
        let model = config.init::<B>(&Default::default()).expect("a validated config builds");
        assert_eq!(model.num_params() as u64, count);
    }
}

/// `scheduler_config`: a validated config builds its scheduler or fails with a typed error.
pub fn scheduler_config(data: &[u8]) {
    let Some(config) = json(data).and_then(|j| VQDiffusionSchedulerConfig::from_json(j).ok()) else { return };
    if config.num_vec_classes <= 1 << 16 {
        let _ = config.init::<B>(&Default::default());
    }
}

/// `tokenizer`: the input is split at 0xFF bytes (never part of UTF-8 text) into
/// `tokenizer_config.json`, `special_tokens_map.json`, `vocab.json`, `merges.txt` and, when a
/// fifth part is there, `tokenizer.json`; empty parts are absent files. A loaded tokenizer's
/// largest id fits an i32, and the ids it encodes never exceed it.
pub fn tokenizer(data: &[u8]) {
    const FILES: [&str; 5] =
        ["tokenizer_config.json", "special_tokens_map.json", "vocab.json", "merges.txt", "tokenizer.json"];
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| scratch("tokenizer"));
    let parts: Vec<&[u8]> = data.split(|&b| b == 0xff).collect();
    for (i, name) in FILES.iter().enumerate() {
        let path = dir.join(name);
        std::fs::remove_file(&path).ok();
        if let Some(part) = parts.get(i).filter(|p| !p.is_empty()) {
            std::fs::write(&path, part).expect("scratch file");
        }
    }
    let Ok(tokenizer) = Tokenizer::from_dir(dir) else { return };
    assert!(tokenizer.max_id() <= MAX_TOKEN_ID);
    let text = String::from_utf8_lossy(parts.last().copied().unwrap_or_default()).into_owned();
    for prompt in ["a photo of a cat!", text.as_str()] {
        if let Ok(padded) = tokenizer.encode_padded(prompt, Truncation::KeepEos) {
            assert_eq!(padded.ids.len(), tokenizer.model_max_length());
            assert!(padded.ids.iter().all(|&id| id <= tokenizer.max_id()), "an id beyond max_id");
        }
    }
}

/// `picture`: a picture file as `--init-image` and `--mask` read it. A decoded picture is
/// within the decoding limits, and fitting it to a model's size (as a picture and as a mask)
/// gives exactly that size.
pub fn picture(data: &[u8]) {
    let Ok(picture) = vq_pipeline::decode_picture(data) else { return };
    let side = vq_pipeline::picture::PICTURE_MAX_SIDE;
    assert!(picture.width() <= side && picture.height() <= side, "a picture beyond the side limit decoded");
    let (rgb, luma) = (picture.to_rgb8(), picture.to_luma8());
    for size in [(16, 16), (24, 8)] {
        assert_eq!(vq_pipeline::fit_image(&rgb, size).dimensions(), size);
        assert_eq!(vq_pipeline::fit_image(&luma, size).dimensions(), size);
    }
}

fn json(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

/// A scratch folder of this process (tmpfs when there is one).
fn scratch(target: &str) -> PathBuf {
    let base = if Path::new("/dev/shm").is_dir() { PathBuf::from("/dev/shm") } else { std::env::temp_dir() };
    let dir = base.join(format!("vq-fuzz-{target}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch folder");
    dir
}

/// The module `load_module` fills (that of vq-weights' tests, so their checkpoints are the
/// corpus): a Linear (transposed on load) and a LayerNorm (`weight`/`bias` → `gamma`/`beta`).
#[derive(Module, Debug)]
struct Block<B: Backend> {
    proj: Linear<B>,
    norm: LayerNorm<B>,
}

impl Block<B> {
    fn new() -> Self {
        let device = Default::default();
        Self { proj: LinearConfig::new(3, 2).init(&device), norm: LayerNormConfig::new(2).init(&device) }
    }

    /// Every parameter value.
    fn values(&self) -> Vec<f32> {
        let v = |t: burn::tensor::Tensor<B, 1>| t.into_data().to_vec::<f32>().expect("f32 values");
        let mut out = v(self.proj.weight.val().flatten(0, 1));
        out.extend(v(self.proj.bias.as_ref().expect("bias").val()));
        out.extend(v(self.norm.gamma.val()));
        out.extend(v(self.norm.beta.as_ref().expect("beta").val()));
        out
    }
}
