//! Which model a command loads: `--model`, else `$VQ_DIFFUSION_MODEL`, else the model embedded
//! in the binary ([`crate::embedded`]) — never a path of the checkout the binary was built from,
//! which an installed binary cannot count on.

use std::ffi::OsString;
use std::path::PathBuf;

use crate::args::MODEL_ENV;
use crate::error::CliError;

/// The embedded model's name (its folder's prefix, and what `info` calls it).
pub const EMBEDDED_NAME: &str = "shapes";

/// Where the model to load was named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// `--model`.
    Flag,
    /// `$VQ_DIFFUSION_MODEL`.
    Environment,
    /// Neither: the model embedded in the binary, unpacked to a folder.
    #[cfg_attr(not(shipped_model), allow(dead_code))] // a build without the model never names it
    Embedded,
}

/// The model to load and where it was named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelChoice {
    /// A pipeline folder or a hub repository id, as `VQDiffusionPipeline::from_pretrained` takes it.
    pub model: String,
    /// Where it was named.
    pub origin: Origin,
}

/// The model of `flag` (`--model`), else of `env` (`$VQ_DIFFUSION_MODEL`; empty counts as unset),
/// else the embedded model, unpacked under the first writable folder of `cache_roots`.
pub fn choose(flag: Option<&str>, env: Option<OsString>, cache_roots: &[PathBuf]) -> Result<ModelChoice, CliError> {
    if let Some(model) = flag {
        return Ok(ModelChoice { model: model.to_string(), origin: Origin::Flag });
    }
    if let Some(model) = env.filter(|v| !v.is_empty()) {
        return Ok(ModelChoice { model: model.to_string_lossy().into_owned(), origin: Origin::Environment });
    }
    embedded(cache_roots)
}

/// The model of `--model`, else `$VQ_DIFFUSION_MODEL`, else the embedded one in the user's cache.
pub fn choose_from_env(flag: Option<&str>) -> Result<ModelChoice, CliError> {
    #[cfg(shipped_model)]
    let roots = crate::embedded::cache_roots();
    #[cfg(not(shipped_model))]
    let roots = Vec::new();
    choose(flag, std::env::var_os(MODEL_ENV), &roots)
}

#[cfg(shipped_model)]
fn embedded(cache_roots: &[PathBuf]) -> Result<ModelChoice, CliError> {
    let dir = crate::embedded::unpack_into(cache_roots)?;
    Ok(ModelChoice { model: dir.display().to_string(), origin: Origin::Embedded })
}

#[cfg(not(shipped_model))]
fn embedded(_cache_roots: &[PathBuf]) -> Result<ModelChoice, CliError> {
    Err(CliError::Failure(format!(
        "no --model given and {MODEL_ENV} is not set, and this build has no embedded model (cargo feature \
         `embedded-model` of vq-cli, built from a checkout that has models/shapes): pass --model DIR|REPO_ID"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_wins_then_the_variable() {
        let roots: [PathBuf; 0] = [];
        let choice = choose(Some("a/b"), Some("c/d".into()), &roots).unwrap();
        assert_eq!(choice, ModelChoice { model: "a/b".into(), origin: Origin::Flag });
        let choice = choose(None, Some("c/d".into()), &roots).unwrap();
        assert_eq!(choice, ModelChoice { model: "c/d".into(), origin: Origin::Environment });
    }

    /// No path of the checkout is consulted: the model comes from the binary into the given
    /// cache folder, which lies outside the checkout, and an empty variable counts as unset.
    #[cfg(shipped_model)]
    #[test]
    fn without_flag_or_variable_the_embedded_model_is_unpacked_into_the_cache() {
        let root = std::env::temp_dir().join(format!("vq-cli-model-choice-{}", std::process::id()));
        for env in [None, Some(OsString::new())] {
            let choice = choose(None, env, std::slice::from_ref(&root)).unwrap();
            assert_eq!(choice.origin, Origin::Embedded);
            let dir = std::path::Path::new(&choice.model);
            assert!(dir.starts_with(&root), "{}", dir.display());
            assert!(!choice.model.contains(env!("CARGO_MANIFEST_DIR")), "{}", choice.model);
            assert!(dir.join("model_index.json").is_file());
        }
        std::fs::remove_dir_all(root).ok();
    }

    #[cfg(not(shipped_model))]
    #[test]
    fn without_flag_variable_or_embedded_model_the_error_says_what_to_pass() {
        let error = choose(None, None, &[]).unwrap_err();
        assert_eq!(error.exit_code(), 1);
        assert!(error.to_string().contains("--model DIR|REPO_ID"), "{error}");
    }
}
