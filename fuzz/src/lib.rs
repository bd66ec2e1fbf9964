//! What the fuzz targets share: a scratch folder for inputs that loaders read from files, the
//! small module `load_module` fills, and the contract checks.
//!
//! Every target asserts the same contract: a loader returns `Ok` with a usable result (finite
//! weights, ids inside the vocabulary, a model that can be built) or a typed error. A panic is
//! a crash (libFuzzer aborts on it); memory and time are capped by libFuzzer's `-rss_limit_mb`
//! and `-timeout` (see `run`).

use std::path::{Path, PathBuf};

use burn::backend::NdArray;
use burn::module::Module;
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::backend::Backend;

/// The backend targets build modules on.
pub type B = NdArray<f32>;

/// A scratch folder of this process (tmpfs when there is one).
pub fn scratch(target: &str) -> PathBuf {
    let base = if Path::new("/dev/shm").is_dir() { PathBuf::from("/dev/shm") } else { std::env::temp_dir() };
    let dir = base.join(format!("vq-fuzz-{target}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch folder");
    dir
}

/// Writes `bytes` to `dir/name` and returns the path.
pub fn put(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("scratch file");
    path
}

/// The module `load_module` fills (that of vq-weights' tests, so their checkpoints are the
/// corpus): a Linear (transposed on load) and a LayerNorm (`weight`/`bias` → `gamma`/`beta`).
#[derive(Module, Debug)]
pub struct Block<B: Backend> {
    pub proj: Linear<B>,
    pub norm: LayerNorm<B>,
}

impl Block<B> {
    pub fn new() -> Self {
        let device = Default::default();
        Self {
            proj: LinearConfig::new(3, 2).init(&device),
            norm: LayerNormConfig::new(2).init(&device),
        }
    }

    /// Every parameter value.
    pub fn values(&self) -> Vec<f32> {
        let v = |t: burn::tensor::Tensor<B, 1>| t.into_data().to_vec::<f32>().expect("f32 values");
        let mut out = v(self.proj.weight.val().flatten(0, 1));
        out.extend(v(self.proj.bias.as_ref().expect("bias").val()));
        out.extend(v(self.norm.gamma.val()));
        out.extend(v(self.norm.beta.as_ref().expect("beta").val()));
        out
    }
}

impl Default for Block<B> {
    fn default() -> Self {
        Self::new()
    }
}

/// Reads every tensor of a parsed checkpoint; each read is `Ok` with exactly the tensor's
/// bytes, or a typed error.
pub fn read_every_tensor<R: std::io::Read + std::io::Seek>(checkpoint: &mut vq_weights::checkpoint::Checkpoint<R>) {
    for index in 0..checkpoint.tensors().len() {
        let expected = checkpoint.tensors()[index].num_bytes();
        if let Ok(bytes) = checkpoint.read_bytes(index) {
            assert_eq!(Some(bytes.len()), expected, "read_bytes returned the wrong length");
        }
    }
}

/// Largest model a config target builds (a few MB of f32).
pub const MAX_BUILT_PARAMETERS: u64 = 1 << 20;
