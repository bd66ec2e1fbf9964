//! One repository's folder of the shared Hugging Face cache, in `huggingface_hub`'s layout:
//!
//! ```text
//! models--owner--name/
//!   blobs/<etag>                      file contents, named by their etag
//!   snapshots/<commit>/<file>         relative symlinks to ../../blobs/<etag> (one `..` more per folder)
//!   refs/<revision>                   the commit of a branch or tag, without a newline
//! ```
//!
//! Every name has passed [`crate::hub::names`] before it is joined here. Blobs are written to a
//! temporary file in `blobs/` and renamed into place only once complete and flushed to disk;
//! snapshot links and refs are replaced by a rename too, so a crash or an error leaves either
//! the old state or the new one, never a partial file under a final name.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::hub::names::{check_commit, is_commit};
use crate::hub::HubError;

/// The longest `refs/` file read (a commit hash is 40 bytes).
const MAX_REF: u64 = 1024;

/// A repository's cache folder.
pub(crate) struct RepoCache {
    repo: String,
    root: PathBuf,
}

impl RepoCache {
    /// The folder of `repo` (a valid repository id) in `cache_dir`.
    pub fn new(cache_dir: &Path, repo: &str) -> Self {
        Self { repo: repo.into(), root: cache_dir.join(format!("models--{}", repo.replace('/', "--"))) }
    }

    /// The commit a revision names in the cache: the revision itself when it is a commit hash,
    /// else the content of `refs/<revision>` (`None` when there is no such file).
    pub fn commit_of(&self, revision: &str) -> Result<Option<String>, HubError> {
        if is_commit(revision) {
            return Ok(Some(revision.into()));
        }
        let path = self.root.join("refs").join(revision);
        if !path.is_file() {
            return Ok(None);
        }
        let mut text = String::new();
        File::open(&path)
            .and_then(|f| f.take(MAX_REF).read_to_string(&mut text))
            .map_err(|source| HubError::Cache { path: path.clone(), source })?;
        let commit = text.trim();
        check_commit(&self.repo, Some(&path.display().to_string()), commit)?;
        Ok(Some(commit.into()))
    }

    /// `snapshots/<commit>`.
    pub fn snapshot(&self, commit: &str) -> PathBuf {
        self.root.join("snapshots").join(commit)
    }

    /// Whether the snapshot of `commit` has `file` (a link to an existing blob, or a file).
    pub fn has_file(&self, commit: &str, file: &str) -> bool {
        self.snapshot(commit).join(file).is_file()
    }

    /// `blobs/<etag>`.
    pub fn blob(&self, etag: &str) -> PathBuf {
        self.root.join("blobs").join(etag)
    }

    /// Whether `blobs/<etag>` exists with `size` bytes (e.g. the same file of another commit).
    pub fn has_blob(&self, etag: &str, size: u64) -> bool {
        std::fs::metadata(self.blob(etag)).is_ok_and(|m| m.is_file() && m.len() == size)
    }

    /// A new temporary file in `blobs/` for the blob `etag`, removed again unless persisted.
    pub fn temp_blob(&self, etag: &str) -> Result<TempFile, HubError> {
        let blobs = self.root.join("blobs");
        std::fs::create_dir_all(&blobs).map_err(HubError::cache(&blobs))?;
        TempFile::create(&blobs, etag)
    }

    /// Links `snapshots/<commit>/<file>` to `blobs/<etag>` with a relative symlink, as
    /// `huggingface_hub` does (a copy where the system has no symlinks).
    pub fn link(&self, commit: &str, file: &str, etag: &str) -> Result<(), HubError> {
        let pointer = self.snapshot(commit).join(file);
        let folder = pointer.parent().unwrap_or(&self.root).to_path_buf();
        std::fs::create_dir_all(&folder).map_err(HubError::cache(&folder))?;
        let temp = temp_name(&folder, "link");
        #[cfg(unix)]
        {
            // From snapshots/<commit>/a/b.json up to the repository folder: one `..` per part of
            // the file name, plus one for the commit folder.
            let up = file.split('/').count() + 1;
            let target: PathBuf = std::iter::repeat_n("..", up).collect::<PathBuf>().join("blobs").join(etag);
            std::os::unix::fs::symlink(&target, &temp).map_err(HubError::cache(&temp))?;
        }
        #[cfg(not(unix))]
        std::fs::copy(self.blob(etag), &temp).map_err(HubError::cache(&temp))?;
        std::fs::rename(&temp, &pointer).map_err(|source| {
            let _ = std::fs::remove_file(&temp);
            HubError::Cache { path: pointer.clone(), source }
        })
    }

    /// Writes `refs/<revision>` = `commit` (no newline, as `huggingface_hub` writes it).
    pub fn write_ref(&self, revision: &str, commit: &str) -> Result<(), HubError> {
        let path = self.root.join("refs").join(revision);
        let folder = path.parent().unwrap_or(&self.root).to_path_buf();
        std::fs::create_dir_all(&folder).map_err(HubError::cache(&folder))?;
        let mut temp = TempFile::create(&folder, "ref")?;
        std::io::Write::write_all(temp.file(), commit.as_bytes()).map_err(HubError::cache(temp.path()))?;
        temp.persist(&path)
    }
}

/// A temporary file that is removed on drop unless [`TempFile::persist`]ed.
pub(crate) struct TempFile {
    path: PathBuf,
    file: Option<File>,
}

impl TempFile {
    /// A new file `.<stem>.<pid>.<n>.incomplete` in `folder`.
    fn create(folder: &Path, stem: &str) -> Result<Self, HubError> {
        let path = temp_name(folder, stem);
        let file = File::options().write(true).create_new(true).open(&path).map_err(HubError::cache(&path))?;
        Ok(Self { path, file: Some(file) })
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The open file.
    pub fn file(&mut self) -> &mut File {
        self.file.as_mut().expect("open until persisted")
    }

    /// Flushes the file to disk and renames it to `to`.
    pub fn persist(mut self, to: &Path) -> Result<(), HubError> {
        let file = self.file.take().expect("open until persisted");
        file.sync_all().map_err(HubError::cache(&self.path))?;
        drop(file);
        std::fs::rename(&self.path, to).map_err(HubError::cache(to))?;
        self.path = PathBuf::new();
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            drop(self.file.take());
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// A name in `folder` that no other download of this process or another one uses.
fn temp_name(folder: &Path, stem: &str) -> PathBuf {
    static COUNT: AtomicUsize = AtomicUsize::new(0);
    let n = COUNT.fetch_add(1, Ordering::Relaxed);
    folder.join(format!(".{stem}.{}.{n}.incomplete", std::process::id()))
}
