//! Output files that appear whole or not at all.
//!
//! Before the model loads, [`plan`] checks every output: its folder exists and is writable, an
//! existing file is a regular file (a FIFO would block the run, a device would be replaced), and
//! no two outputs are the same file under different spellings (`out/a.png` and
//! `out/../out/a.png`, a symlink, a hard link), which would leave one holding the other's bytes.
//! Each file is then written to a temporary file in its own folder ([`Staged::write`]) and flushed
//! to disk; only when every file of the run is written are they renamed into place
//! ([`Staged::commit`]). On any error before that, the temporary files are removed and nothing
//! new is left. An existing file is replaced — the command line has always overwritten — and
//! stderr says so; an output that is a symlink to a file replaces the file it points to.

use std::collections::HashMap;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::error::CliError;

/// One output of the run.
#[derive(Debug, Clone)]
pub struct Target {
    /// The path as the user spelled it (for messages).
    pub path: PathBuf,
    /// Where the file goes: the canonical folder and name, or an existing symlink's target.
    real: PathBuf,
    /// Whether a file is there already (it will be replaced).
    existed: bool,
}

/// Checks `outputs` (flag, path) and returns their targets in the same order. A clash between
/// two outputs is a usage error; a folder that is missing or unwritable, or an existing output
/// that is not a regular file, is a failure.
pub fn plan(outputs: &[(&'static str, PathBuf)]) -> Result<Vec<Target>, CliError> {
    let mut targets: Vec<Target> = Vec::with_capacity(outputs.len());
    let mut by_path: HashMap<PathBuf, usize> = HashMap::new();
    let mut by_inode: HashMap<(u64, u64), usize> = HashMap::new();
    let mut probed: Vec<PathBuf> = Vec::new();
    for (i, (flag, path)) in outputs.iter().enumerate() {
        let (target, inode) = inspect(path)?;
        let earlier = by_path.get(&target.real).or_else(|| inode.and_then(|id| by_inode.get(&id))).copied();
        if let Some(j) = earlier {
            let (other_flag, other) = &outputs[j];
            let other = match *other_flag == *flag {
                true => format!("{}", other.display()),
                false => format!("{other_flag} {}", other.display()),
            };
            return Err(CliError::Usage(format!(
                "{flag} {} is the same file as {other}: give each output its own file",
                path.display()
            )));
        }
        let folder = target.real.parent().unwrap_or(Path::new("/")).to_path_buf();
        if !probed.contains(&folder) {
            probe(&folder).map_err(|e| cannot_write(path, e))?;
            probed.push(folder);
        }
        by_path.insert(target.real.clone(), i);
        if let Some(id) = inode {
            by_inode.insert(id, i);
        }
        targets.push(target);
    }
    Ok(targets)
}

/// Where `path` really goes, and the device and inode of an existing file.
fn inspect(path: &Path) -> Result<(Target, Option<(u64, u64)>), CliError> {
    let fail = |message: &str| Err(cannot_write(path, message));
    match std::fs::metadata(path) {
        Ok(metadata) => {
            let kind = metadata.file_type();
            if kind.is_dir() {
                return fail("it is a directory");
            }
            if !kind.is_file() {
                return fail(&format!("it is {}, not a regular file", special_kind(&kind)));
            }
            let real = path.canonicalize().map_err(|e| cannot_write(path, e))?;
            // Opening a regular file does not block; a read-only file is not replaced.
            File::options().append(true).open(&real).map_err(|e| cannot_write(path, e))?;
            Ok((Target { path: path.into(), real, existed: true }, inode(&metadata)))
        }
        Err(_) if std::fs::symlink_metadata(path).is_ok() => fail("it is a symbolic link to nothing"),
        Err(_) => {
            let Some(name) = path.file_name() else { return fail("it names no file") };
            let folder = match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            let folder = folder
                .canonicalize()
                .map_err(|e| cannot_write(path, format!("its folder {}: {e}", folder.display())))?;
            Ok((Target { path: path.into(), real: folder.join(name), existed: false }, None))
        }
    }
}

#[cfg(unix)]
fn inode(metadata: &std::fs::Metadata) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    Some((metadata.dev(), metadata.ino()))
}

#[cfg(not(unix))]
fn inode(_: &std::fs::Metadata) -> Option<(u64, u64)> {
    None
}

#[cfg(unix)]
fn special_kind(kind: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_char_device() || kind.is_block_device() {
        "a device"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "something"
    }
}

#[cfg(not(unix))]
fn special_kind(_: &std::fs::FileType) -> &'static str {
    "something"
}

/// Whether files can be created in `folder`: creates and removes a temporary one.
fn probe(folder: &Path) -> std::io::Result<()> {
    let path = temp_name(folder, Path::new("probe"));
    File::options().write(true).create_new(true).open(&path)?;
    std::fs::remove_file(&path)
}

fn cannot_write(path: &Path, error: impl std::fmt::Display) -> CliError {
    CliError::Failure(format!("cannot write {}: {error}", path.display()))
}

/// A temporary name next to `real`: hidden, with the process id and a counter.
fn temp_name(folder: &Path, real: &Path) -> PathBuf {
    static COUNT: AtomicUsize = AtomicUsize::new(0);
    let n = COUNT.fetch_add(1, Ordering::Relaxed);
    let name = real.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    folder.join(format!(".{name}.{}.{n}.tmp", std::process::id()))
}

/// The files written so far, under temporary names; removed on drop unless committed.
#[derive(Default)]
pub struct Staged {
    files: Vec<(PathBuf, Target)>,
}

impl Staged {
    /// Writes `target`'s content with `write` into a temporary file next to it, flushed to disk.
    pub fn write(
        &mut self,
        target: &Target,
        write: impl FnOnce(&mut BufWriter<File>) -> Result<(), String>,
    ) -> Result<(), CliError> {
        let folder = target.real.parent().unwrap_or(Path::new("/"));
        let temp = temp_name(folder, &target.real);
        let file =
            File::options().write(true).create_new(true).open(&temp).map_err(|e| cannot_write(&target.path, e))?;
        // Recorded before writing, so that a failure removes it.
        self.files.push((temp, target.clone()));
        let mut out = BufWriter::new(file);
        write(&mut out).map_err(|e| cannot_write(&target.path, e))?;
        let file = out.into_inner().map_err(|e| cannot_write(&target.path, e.error()))?;
        file.sync_all().map_err(|e| cannot_write(&target.path, e))
    }

    /// Renames every file into place, in order, saying on stderr which ones replace a file and
    /// printing each path on stdout. Should a rename fail, the files already renamed that did
    /// not replace anything are removed again.
    pub fn commit(mut self) -> Result<(), CliError> {
        let files = std::mem::take(&mut self.files);
        let mut done: Vec<&Target> = Vec::new();
        for (i, (temp, target)) in files.iter().enumerate() {
            if target.existed {
                crate::report(&format!("overwriting {}", target.path.display()));
            }
            if let Err(e) = std::fs::rename(temp, &target.real) {
                for (temp, _) in &files[i..] {
                    let _ = std::fs::remove_file(temp);
                }
                for target in done.iter().filter(|t| !t.existed) {
                    let _ = std::fs::remove_file(&target.real);
                }
                return Err(cannot_write(&target.path, e));
            }
            done.push(target);
        }
        for target in done {
            crate::print_path(&target.path);
        }
        Ok(())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        for (temp, _) in &self.files {
            let _ = std::fs::remove_file(temp);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn scratch(label: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("vq-cli-staging-{}-{label}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("out")).unwrap();
        dir
    }

    #[test]
    fn two_spellings_of_one_file_are_one_output() {
        let dir = scratch("spellings");
        let a = dir.join("out/a.png");
        let b = dir.join("out/../out/a.png");
        let error = plan(&[("--output", a.clone()), ("--tokens", b.clone())]).unwrap_err();
        assert_eq!(error.exit_code(), 2);
        assert!(error.to_string().contains("is the same file as --output"), "{error}");
        // Hard links: two names, one inode.
        std::fs::write(&a, "x").unwrap();
        std::fs::hard_link(&a, dir.join("out/b.png")).unwrap();
        assert!(plan(&[("--output", a.clone()), ("--tokens", dir.join("out/b.png"))]).is_err());
        // Distinct files are fine, and nothing was created by planning.
        let targets = plan(&[("--output", a.clone()), ("--tokens", dir.join("out/c.json"))]).unwrap();
        assert!(targets[0].existed && !targets[1].existed);
        assert!(!dir.join("out/c.json").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn staged_files_vanish_unless_committed() {
        let dir = scratch("staged");
        let targets = plan(&[("--output", dir.join("out/a.png")), ("--tokens", dir.join("out/t.json"))]).unwrap();
        let mut staged = Staged::default();
        staged.write(&targets[0], |out| out.write_all(b"png").map_err(|e| e.to_string())).unwrap();
        let error = staged.write(&targets[1], |_| Err("disk full".into())).unwrap_err();
        assert!(error.to_string().contains("t.json: disk full"), "{error}");
        drop(staged);
        assert_eq!(std::fs::read_dir(dir.join("out")).unwrap().count(), 0, "nothing left");

        let mut staged = Staged::default();
        for target in &targets {
            staged.write(target, |out| out.write_all(b"whole").map_err(|e| e.to_string())).unwrap();
        }
        staged.commit().unwrap();
        assert_eq!(std::fs::read(dir.join("out/a.png")).unwrap(), b"whole");
        assert_eq!(std::fs::read_dir(dir.join("out")).unwrap().count(), 2, "no temporary file left");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
