//! Embeds the shipped shapes model (cargo feature `embedded-model`) where the source tree has it.
//!
//! The model lives in the repository's `models/shapes` (16 MB), outside this crate's folder: a
//! checkout builds a `vq-diffusion` that draws without `--model`, while a packaged crate (crates.io
//! takes at most 10 MB a crate) builds without the model and asks for `--model` or
//! `$VQ_DIFFUSION_MODEL`. The cfg `shipped_model` tells the code which of the two it is.

use std::path::Path;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(shipped_model)");
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/shapes");
    println!("cargo::rerun-if-changed={}", model.display());
    let wanted = std::env::var_os("CARGO_FEATURE_EMBEDDED_MODEL").is_some();
    if wanted && model.join("model_index.json").is_file() {
        println!("cargo::rustc-cfg=shipped_model");
    }
}
