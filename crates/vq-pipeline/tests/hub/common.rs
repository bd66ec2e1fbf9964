//! Helpers shared by the hub tests: a cache in `huggingface_hub`'s layout, options for it, and
//! the files of a folder.

use std::path::{Path, PathBuf};

use vq_pipeline::hub::HubOptions;

/// Writes `files` into `cache` as huggingface_hub does: content-addressed blobs, a ref naming
/// the commit, and a snapshot of relative symlinks.
pub fn build_cache<C: AsRef<[u8]>>(cache: &Path, repo: &str, commit: &str, files: &[(&str, C)]) -> PathBuf {
    let root = cache.join(format!("models--{}", repo.replace('/', "--")));
    std::fs::create_dir_all(root.join("blobs")).unwrap();
    std::fs::create_dir_all(root.join("refs")).unwrap();
    std::fs::write(root.join("refs/main"), commit).unwrap();
    let snapshot = root.join("snapshots").join(commit);
    for (i, (name, content)) in files.iter().enumerate() {
        let blob = format!("blob{i:04}");
        std::fs::write(root.join("blobs").join(&blob), content.as_ref()).unwrap();
        let link = snapshot.join(name);
        std::fs::create_dir_all(link.parent().unwrap()).unwrap();
        let depth = name.matches('/').count() + 2;
        let target: PathBuf = std::iter::repeat_n("..", depth).collect::<PathBuf>().join("blobs").join(&blob);
        std::os::unix::fs::symlink(target, &link).unwrap();
    }
    snapshot
}

/// Options that read `cache` and never the network.
pub fn offline(cache: &Path) -> HubOptions {
    HubOptions::from_vars(|k| match k {
        "HF_HUB_CACHE" => Some(cache.to_string_lossy().into_owned()),
        "HF_HUB_OFFLINE" => Some("1".into()),
        _ => None,
    })
}

/// Every file of a folder, as (path relative to it, bytes).
pub fn files_below(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            files.extend(files_below(&path).into_iter().map(|(p, b)| (format!("{name}/{p}"), b)));
        } else {
            files.push((path.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&path).unwrap()));
        }
    }
    files
}
