//! Finding a pipeline folder: a local directory, or a Hugging Face hub repository read through
//! the shared HF cache (the layout `huggingface_hub` and the `hf-hub` crate use), so models
//! downloaded by Python are found by Rust and the other way round.
//!
//! Environment, as `huggingface_hub` reads it: `HF_HUB_CACHE` (the cache folder), else
//! `$HF_HOME/hub`, else `~/.cache/huggingface/hub`; `HF_HUB_OFFLINE=1` never touches the network
//! (the files must already be cached); `HF_ENDPOINT` replaces `https://huggingface.co`;
//! `HF_TOKEN` authenticates (else the token file of `HF_HOME`); `HF_HUB_DOWNLOAD_TIMEOUT`
//! (seconds, default 10) is the longest wait for a connection or for the next bytes of a
//! download.
//!
//! The server is not trusted: every repository id, revision, file name, commit hash and etag is
//! checked before it becomes part of a path ([`NameKind`]), so nothing is written outside the
//! repository's cache folder; stalled transfers time out; a file must be as large as declared and
//! within [`HubOptions::max_file_size`]; and a file appears in the cache only once complete.
//! Downloading follows `huggingface_hub`'s `snapshot_download`: the revision's commit first, then
//! every file at that commit, so a branch that moves meanwhile cannot mix two commits.

mod cache;
mod client;
mod error;
mod names;
mod options;

use std::path::{Path, PathBuf};

pub use error::{HubError, NameKind};
pub use options::{HubOptions, DEFAULT_MAX_FILE_SIZE, DEFAULT_TIMEOUT};

use self::cache::RepoCache;
use self::client::Client;
use crate::{SAMPLING_DEFAULTS_FILE, VOCABULARY_FILE};

/// The local folder of a pipeline given as a folder or a hub repository id.
///
/// For a repository only the files the pipeline reads are fetched: `model_index.json` (and
/// [`SAMPLING_DEFAULTS_FILE`] and [`VOCABULARY_FILE`] where there are), the component configs, the tokenizer, and one
/// weights file per component (the `variant` — e.g. `"fp16"` — when the repository has it, else
/// safetensors, else `.bin`). Files already in the cache for the revision's commit are not
/// fetched again; `refs/<revision>` is written once every file is there.
pub fn resolve_pipeline_dir(model: &str, variant: Option<&str>, options: &HubOptions) -> Result<PathBuf, HubError> {
    let path = Path::new(model);
    if path.is_dir() {
        return Ok(path.to_path_buf());
    }
    if !names::is_repo_id(model) {
        return Err(HubError::NotAModel(model.into()));
    }
    names::check_revision(model, &options.revision)?;
    let cache = RepoCache::new(&options.cache_dir, model);
    match options.offline {
        true => cached_snapshot(model, &cache, options),
        false => download(model, &cache, variant, options),
    }
}

/// The snapshot folder of `options.revision` in the cache, without the network.
fn cached_snapshot(repo: &str, cache: &RepoCache, options: &HubOptions) -> Result<PathBuf, HubError> {
    let not_cached = |missing: &str| HubError::NotCached {
        repo: repo.into(),
        revision: options.revision.clone(),
        cache: options.cache_dir.clone(),
        missing: missing.into(),
    };
    let commit = cache.commit_of(&options.revision)?.ok_or_else(|| not_cached("no ref for this revision"))?;
    match cache.has_file(&commit, "model_index.json") {
        true => Ok(cache.snapshot(&commit)),
        false => Err(not_cached("no model_index.json")),
    }
}

fn download(repo: &str, cache: &RepoCache, variant: Option<&str>, options: &HubOptions) -> Result<PathBuf, HubError> {
    let client = Client::new(repo, options);
    let info = client.info(&options.revision)?;
    let files = pipeline_files(&info.files, variant);
    if !files.iter().any(|f| f == "model_index.json") {
        let message = format!("revision `{}` (commit {}) has no model_index.json", options.revision, info.sha);
        return Err(HubError::Download { repo: repo.into(), message });
    }
    // Every name is checked before anything is written.
    for file in &files {
        names::check_file_name(repo, file)?;
    }
    for file in &files {
        if cache.has_file(&info.sha, file) {
            continue;
        }
        let meta = client.metadata(&info.sha, file)?;
        if !cache.has_blob(&meta.etag, meta.size) {
            let mut temp = cache.temp_blob(&meta.etag)?;
            client.download(file, &meta, &mut temp)?;
            temp.persist(&cache.blob(&meta.etag))?;
        }
        cache.link(&info.sha, file, &meta.etag)?;
    }
    if options.revision != info.sha {
        cache.write_ref(&options.revision, &info.sha)?;
    }
    Ok(cache.snapshot(&info.sha))
}

/// The files of a repository listing that a pipeline needs (see [`resolve_pipeline_dir`]).
pub fn pipeline_files(files: &[String], variant: Option<&str>) -> Vec<String> {
    let mut wanted: Vec<String> = files
        .iter()
        .filter(|f| {
            f.as_str() == "model_index.json"
                || f.as_str() == SAMPLING_DEFAULTS_FILE
                || f.as_str() == VOCABULARY_FILE
                || f.ends_with("/config.json")
                || f.starts_with("scheduler/") && f.ends_with(".json")
                || f.starts_with("tokenizer/")
        })
        .cloned()
        .collect();
    // A set, so that a listing of many files costs no quadratic time.
    let listed: std::collections::HashSet<&str> = files.iter().map(String::as_str).collect();
    let mut folders: Vec<&str> = files.iter().filter_map(|f| f.split_once('/').map(|(d, _)| d)).collect();
    folders.sort();
    folders.dedup();
    let preference = weight_names(variant);
    for folder in folders {
        if let Some(name) = preference.iter().map(|n| format!("{folder}/{n}")).find(|p| listed.contains(p.as_str())) {
            wanted.push(name);
        }
    }
    wanted
}

/// Weight file names in order of preference.
fn weight_names(variant: Option<&str>) -> Vec<String> {
    let plain = [
        "diffusion_pytorch_model.safetensors",
        "model.safetensors",
        "diffusion_pytorch_model.bin",
        "pytorch_model.bin",
    ];
    let mut names = Vec::new();
    if let Some(v) = variant {
        names.extend(plain.iter().map(|n| n.replacen('.', &format!(".{v}."), 1)));
    }
    names.extend(plain.iter().map(|n| n.to_string()));
    names
}
