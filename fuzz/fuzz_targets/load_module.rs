//! `load_module` end to end, from a file: `Ok` means every parameter was filled with finite
//! values; anything else must be a typed error. A zip archive is loaded as `.bin`, anything
//! else as `.safetensors`.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use burn::tensor::DType;
use libfuzzer_sys::fuzz_target;
use vq_fuzz::{put, scratch, Block};
use vq_weights::{load_module, KeyMap};

fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| scratch("load_module"))
}

fuzz_target!(|data: &[u8]| {
    let name = if data.starts_with(b"PK") { "w.bin" } else { "w.safetensors" };
    let path = put(dir(), name, data);
    let keys = KeyMap::new(&[(r"^model\.", "")]).ignore(&[r"position_ids$"]);
    if let Ok(block) = load_module(Block::new(), &path, &keys, DType::F32) {
        assert!(block.values().iter().all(|v| v.is_finite()), "a loaded parameter is not finite");
    }
});
