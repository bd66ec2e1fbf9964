//! Finding a pipeline folder: a local directory, or a Hugging Face hub repository read through
//! the shared HF cache (the layout `huggingface_hub` and the `hf-hub` crate use), so models
//! downloaded by Python are found by Rust and the other way round.
//!
//! Environment, as `huggingface_hub` reads it: `HF_HUB_CACHE` (the cache folder), else
//! `$HF_HOME/hub`, else `~/.cache/huggingface/hub`; `HF_HUB_OFFLINE=1` never touches the network
//! (the files must already be cached); `HF_ENDPOINT` replaces `https://huggingface.co`;
//! `HF_TOKEN` authenticates (else the token file of `HF_HOME`).

use std::path::{Path, PathBuf};

use hf_hub::api::sync::ApiBuilder;
use hf_hub::{Cache, Repo, RepoType};

use crate::SAMPLING_DEFAULTS_FILE;

/// Why a model could not be found or downloaded.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// The argument is neither an existing folder nor a hub repository id.
    #[error("`{0}` is not a folder, and not a hub repository id of the form `owner/name`")]
    NotAModel(String),
    /// Offline mode and the repository is not (completely) in the cache.
    #[error("`{repo}` (revision `{revision}`) is not in the Hugging Face cache {cache} and HF_HUB_OFFLINE is set: {missing}")]
    NotCached {
        /// The repository id.
        repo: String,
        /// The revision asked for.
        revision: String,
        /// The cache folder searched.
        cache: PathBuf,
        /// What is missing.
        missing: String,
    },
    /// The hub could not be reached or refused a request.
    #[error("cannot download `{repo}` from the hub: {message}")]
    Download {
        /// The repository id.
        repo: String,
        /// The client's error.
        message: String,
    },
}

/// Where and how to look for hub repositories.
#[derive(Debug, Clone, PartialEq)]
pub struct HubOptions {
    /// The cache folder (`…/huggingface/hub`).
    pub cache_dir: PathBuf,
    /// Never use the network.
    pub offline: bool,
    /// Replacement for `https://huggingface.co`.
    pub endpoint: Option<String>,
    /// Access token.
    pub token: Option<String>,
    /// Branch, tag or commit.
    pub revision: String,
}

impl HubOptions {
    /// Options from the process environment (see the module docs).
    pub fn from_env() -> Self {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// Options from any variable lookup (the environment in [`HubOptions::from_env`]).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Self {
        let home = var("HF_HOME").map(PathBuf::from).unwrap_or_else(|| {
            let user_home = var("HOME").map(PathBuf::from).unwrap_or_default();
            user_home.join(".cache").join("huggingface")
        });
        let cache_dir = var("HF_HUB_CACHE").map(PathBuf::from).unwrap_or_else(|| home.join("hub"));
        let offline = var("HF_HUB_OFFLINE")
            .is_some_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on"));
        let token = var("HF_TOKEN").or_else(|| std::fs::read_to_string(home.join("token")).ok());
        let token = token.map(|t| t.trim().to_string()).filter(|t| !t.is_empty());
        Self { cache_dir, offline, endpoint: var("HF_ENDPOINT"), token, revision: "main".into() }
    }

    /// The same options for another revision.
    pub fn with_revision(mut self, revision: impl Into<String>) -> Self {
        self.revision = revision.into();
        self
    }
}

/// The local folder of a pipeline given as a folder or a hub repository id.
///
/// For a repository only the files the pipeline reads are fetched: `model_index.json` (and
/// [`SAMPLING_DEFAULTS_FILE`] where there is one), the component configs, the tokenizer, and one
/// weights file per component (the `variant` — e.g. `"fp16"` — when the repository has it, else
/// safetensors, else `.bin`).
pub fn resolve_pipeline_dir(model: &str, variant: Option<&str>, options: &HubOptions) -> Result<PathBuf, HubError> {
    let path = Path::new(model);
    if path.is_dir() {
        return Ok(path.to_path_buf());
    }
    if !is_repo_id(model) {
        return Err(HubError::NotAModel(model.into()));
    }
    let repo = Repo::with_revision(model.into(), RepoType::Model, options.revision.clone());
    if options.offline {
        let cached = Cache::new(options.cache_dir.clone()).repo(repo).get("model_index.json");
        let not_cached = |missing: &str| HubError::NotCached {
            repo: model.into(),
            revision: options.revision.clone(),
            cache: options.cache_dir.clone(),
            missing: missing.into(),
        };
        let index = cached.ok_or_else(|| not_cached("no model_index.json"))?;
        return index.parent().map(Path::to_path_buf).ok_or_else(|| not_cached("bad snapshot path"));
    }
    download(model, repo, variant, options)
}

fn download(model: &str, repo: Repo, variant: Option<&str>, options: &HubOptions) -> Result<PathBuf, HubError> {
    let error = |e: hf_hub::api::sync::ApiError| HubError::Download { repo: model.into(), message: e.to_string() };
    let mut builder = ApiBuilder::from_cache(Cache::new(options.cache_dir.clone()))
        .with_progress(true)
        .with_token(options.token.clone());
    if let Some(endpoint) = &options.endpoint {
        builder = builder.with_endpoint(endpoint.clone());
    }
    let api = builder.build().map_err(error)?.repo(repo);
    let files: Vec<String> = api.info().map_err(error)?.siblings.into_iter().map(|s| s.rfilename).collect();
    let mut index = None;
    for file in pipeline_files(&files, variant) {
        let local = api.get(&file).map_err(error)?;
        if file == "model_index.json" {
            index = local.parent().map(Path::to_path_buf);
        }
    }
    index.ok_or_else(|| HubError::Download { repo: model.into(), message: "the repository has no model_index.json".into() })
}

/// `owner/name` with the characters the hub allows.
fn is_repo_id(s: &str) -> bool {
    let valid = |part: &str| {
        !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    matches!(s.split('/').collect::<Vec<_>>().as_slice(), [owner, name] if valid(owner) && valid(name))
}

/// The files of a repository listing that a pipeline needs (see [`resolve_pipeline_dir`]).
pub fn pipeline_files(files: &[String], variant: Option<&str>) -> Vec<String> {
    let mut wanted: Vec<String> = files
        .iter()
        .filter(|f| {
            f.as_str() == "model_index.json"
                || f.as_str() == SAMPLING_DEFAULTS_FILE
                || f.ends_with("/config.json")
                || f.starts_with("scheduler/") && f.ends_with(".json")
                || f.starts_with("tokenizer/")
        })
        .cloned()
        .collect();
    let mut folders: Vec<&str> = files.iter().filter_map(|f| f.split_once('/').map(|(d, _)| d)).collect();
    folders.sort();
    folders.dedup();
    for folder in folders {
        let preference = weight_names(variant);
        if let Some(name) = preference.iter().map(|n| format!("{folder}/{n}")).find(|p| files.contains(p)) {
            wanted.push(name);
        }
    }
    wanted
}

/// Weight file names in order of preference.
fn weight_names(variant: Option<&str>) -> Vec<String> {
    let plain = ["diffusion_pytorch_model.safetensors", "model.safetensors", "diffusion_pytorch_model.bin", "pytorch_model.bin"];
    let mut names = Vec::new();
    if let Some(v) = variant {
        names.extend(plain.iter().map(|n| n.replacen('.', &format!(".{v}."), 1)));
    }
    names.extend(plain.iter().map(|n| n.to_string()));
    names
}
