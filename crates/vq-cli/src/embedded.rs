//! The shipped shapes model inside the binary (cargo feature `embedded-model`, on by default): the
//! model `vq-diffusion` uses without `--model` and `$VQ_DIFFUSION_MODEL`, wherever the binary was
//! installed and whatever became of the checkout it was built from.
//!
//! The files of `models/shapes` (16 MB) are compiled in with `include_bytes!` and unpacked, at the
//! first run that needs them, to `<cache>/vq-diffusion/models/shapes-<fingerprint>`, where
//! `<cache>` is `$XDG_CACHE_HOME`, else `~/.cache` (`~/Library/Caches` on macOS,
//! `%LOCALAPPDATA%` on Windows), else — when that cannot be written — the temporary folder.
//! Unpacked rather than read from memory because every loader of a pipeline (tokenizer, configs,
//! weights, the hub's layout) reads a folder, and because the folder is then an ordinary
//! `--model` for diffusers or a script. Robust because:
//!
//! - the fingerprint hashes every embedded name and byte, so binaries built with different models
//!   never share a folder;
//! - every run compares each file with the embedded bytes (milliseconds for 16 MB) and rewrites
//!   one that is missing or differs — a damaged or edited cache mends itself;
//! - a file is written under a temporary name and renamed into place, so runs at the same time
//!   write the same bytes and none reads half a file.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::error::CliError;
use crate::model::EMBEDDED_NAME;

/// `(path in the pipeline folder, contents)` of every file of `models/shapes`.
macro_rules! shipped {
    ($($path:literal),* $(,)?) => {
        &[$(($path, include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/shapes/", $path)) as &[u8])),*]
    };
}

/// The embedded files.
pub const FILES: &[(&str, &[u8])] = shipped!(
    "README.md",
    "model_index.json",
    "sampling_defaults.json",
    "vocabulary.json",
    "learned_classifier_free_sampling_embeddings/config.json",
    "learned_classifier_free_sampling_embeddings/diffusion_pytorch_model.safetensors",
    "scheduler/scheduler_config.json",
    "text_encoder/config.json",
    "text_encoder/model.safetensors",
    "tokenizer/merges.txt",
    "tokenizer/special_tokens_map.json",
    "tokenizer/tokenizer_config.json",
    "tokenizer/vocab.json",
    "transformer/config.json",
    "transformer/diffusion_pytorch_model.safetensors",
    "vqvae/config.json",
    "vqvae/diffusion_pytorch_model.safetensors",
);

/// Where the model may be unpacked, in order of preference (see the module docs).
pub fn cache_roots() -> Vec<PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    let user_cache = if cfg!(windows) {
        var("LOCALAPPDATA")
    } else if cfg!(target_os = "macos") {
        var("XDG_CACHE_HOME").or_else(|| var("HOME").map(|home| home.join("Library/Caches")))
    } else {
        var("XDG_CACHE_HOME").or_else(|| var("HOME").map(|home| home.join(".cache")))
    };
    user_cache.into_iter().chain([std::env::temp_dir()]).collect()
}

/// The model's folder under the first root of `roots` where it can be written, or an error
/// naming every folder tried and why it failed.
pub fn unpack_into(roots: &[PathBuf]) -> Result<PathBuf, CliError> {
    let mut failures = Vec::new();
    for root in roots {
        let dir = root.join("vq-diffusion").join("models").join(format!("{EMBEDDED_NAME}-{:016x}", fingerprint()));
        match write_folder(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) => failures.push(format!("{}: {e}", dir.display())),
        }
    }
    Err(CliError::Failure(format!(
        "no --model given, {} is not set, and the embedded model cannot be unpacked: {}",
        crate::args::MODEL_ENV,
        failures.join("; ")
    )))
}

/// FNV-1a over every name and byte, eight bytes at a time (quick also in debug builds).
fn fingerprint() -> u64 {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut mix = |bytes: &[u8]| {
        let chunks = bytes.chunks_exact(8);
        let tail = chunks.remainder();
        for chunk in chunks {
            hash = (hash ^ u64::from_le_bytes(chunk.try_into().expect("8 bytes"))).wrapping_mul(PRIME);
        }
        for &byte in tail {
            hash = (hash ^ u64::from(byte)).wrapping_mul(PRIME);
        }
        // The length separates one name or file from the next.
        hash = (hash ^ bytes.len() as u64).wrapping_mul(PRIME);
    };
    for (name, bytes) in FILES {
        mix(name.as_bytes());
        mix(bytes);
    }
    hash
}

/// Writes every file of [`FILES`] into `dir` that is missing there or differs.
fn write_folder(dir: &Path) -> std::io::Result<()> {
    // Unique temporary names also between threads of one process.
    static WRITES: AtomicUsize = AtomicUsize::new(0);
    for (name, bytes) in FILES {
        let path = dir.join(name);
        if std::fs::read(&path).is_ok_and(|found| found == *bytes) {
            continue;
        }
        let folder = path.parent().expect("a file in a folder");
        std::fs::create_dir_all(folder)?;
        let file_name = path.file_name().expect("a file name").to_string_lossy();
        let n = WRITES.fetch_add(1, Ordering::Relaxed);
        let temp = folder.join(format!(".{file_name}.{}-{n}.tmp", std::process::id()));
        let written = std::fs::write(&temp, bytes).and_then(|()| std::fs::rename(&temp, &path));
        if written.is_err() {
            let _ = std::fs::remove_file(&temp);
        }
        written?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("vq-cli-embedded-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    /// The checkout's model folder, only to compare the embedded copy with (at test time).
    fn checkout_model() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/shapes")
    }

    #[test]
    fn every_file_of_the_shipped_model_is_embedded() {
        let mut on_disk = Vec::new();
        let mut folders = vec![checkout_model()];
        while let Some(folder) = folders.pop() {
            for entry in std::fs::read_dir(&folder).unwrap() {
                let path = entry.unwrap().path();
                match path.is_dir() {
                    true => folders.push(path),
                    false => {
                        on_disk.push(path.strip_prefix(checkout_model()).unwrap().to_string_lossy().replace('\\', "/"))
                    }
                }
            }
        }
        on_disk.sort();
        let mut embedded: Vec<String> = FILES.iter().map(|(name, _)| name.to_string()).collect();
        embedded.sort();
        assert_eq!(embedded, on_disk);
    }

    #[test]
    fn the_model_unpacks_outside_the_checkout_and_loads_without_it() {
        let root = scratch("unpack");
        let dir = unpack_into(std::slice::from_ref(&root)).unwrap();
        assert!(dir.starts_with(&root), "{}", dir.display());
        assert!(!dir.starts_with(Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()));
        for (name, bytes) in FILES {
            assert_eq!(std::fs::read(dir.join(name)).unwrap(), *bytes, "{name}");
        }
        let model = vq_pipeline::ModelDescription::from_dir(&dir).expect("a pipeline folder");
        assert_eq!((model.configs.transformer.sample_size, model.default_steps()), (16, 50));
        assert_eq!(model.vocabulary.expect("vocabulary.json").words.len(), 27);
        std::fs::remove_dir_all(root).ok();
    }

    #[test]
    fn a_damaged_cache_is_mended_and_an_unwritable_root_is_skipped() {
        let root = scratch("mend");
        let dir = unpack_into(std::slice::from_ref(&root)).unwrap();
        let weights = dir.join("transformer/diffusion_pytorch_model.safetensors");
        std::fs::write(&weights, b"truncated").unwrap();
        std::fs::remove_file(dir.join("model_index.json")).unwrap();
        assert_eq!(unpack_into(std::slice::from_ref(&root)).unwrap(), dir);
        for (name, bytes) in FILES {
            assert_eq!(std::fs::read(dir.join(name)).unwrap(), *bytes, "{name}");
        }
        // A root that is a file cannot hold the folder: the next root is used.
        let blocked = scratch("blocked");
        std::fs::write(&blocked, b"a file").unwrap();
        assert_eq!(unpack_into(&[blocked.clone(), root.clone()]).unwrap(), dir);
        let error = unpack_into(std::slice::from_ref(&blocked)).unwrap_err().to_string();
        assert!(error.contains("cannot be unpacked") && error.contains(&blocked.display().to_string()), "{error}");
        assert!(!std::fs::read_dir(dir.join("transformer"))
            .unwrap()
            .any(|e| { e.unwrap().file_name().to_string_lossy().ends_with(".tmp") }));
        std::fs::remove_dir_all(root).ok();
        std::fs::remove_file(blocked).ok();
    }

    #[test]
    fn the_cache_follows_xdg_then_home_and_ends_with_the_temporary_folder() {
        let roots = cache_roots();
        assert_eq!(roots.last(), Some(&std::env::temp_dir()));
        if cfg!(all(unix, not(target_os = "macos"))) {
            let expected =
                std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()).map(PathBuf::from).or_else(|| {
                    std::env::var_os("HOME").filter(|v| !v.is_empty()).map(|h| PathBuf::from(h).join(".cache"))
                });
            assert_eq!(roots.first(), expected.as_ref().or(Some(&std::env::temp_dir())));
        }
    }
}
