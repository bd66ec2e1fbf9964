//! Opening input files safely: regular files only, and small files read with a size cap.
//!
//! Every file a model folder holds (configs, tokenizer files, weights) comes from whoever
//! published the folder. A FIFO in place of a config would block a plain `read` forever, a
//! link to `/dev/zero` would be read until memory runs out, a directory gives an obscure error.
//! The functions here refuse anything but a regular file before reading a byte — the type is
//! checked on the opened handle, and the file is opened non-blocking, so a file swapped for a
//! FIFO between the check and the open cannot block either — and never read more than a cap.
//!
//! The errors are [`std::io::Error`]s with a message that says what was wrong; callers wrap
//! them with the path (every crate of the workspace has an `Io { path, source }` error).

use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, Read};
use std::path::Path;

/// Cap for a JSON config (`config.json`, `model_index.json`, `scheduler_config.json`, …):
/// 4 MiB, a thousand times the largest diffusers config.
pub const CONFIG_MAX_BYTES: u64 = 4 << 20;

/// Cap for a tokenizer file (`tokenizer.json`, `vocab.json`, `merges.txt`,
/// `tokenizer_config.json`, `special_tokens_map.json`): 64 MiB. CLIP's `tokenizer.json` is
/// 3.6 MB; the largest tokenizers of big language models are about 30 MB.
pub const TOKENIZER_MAX_BYTES: u64 = 64 << 20;

/// Opens `path` for reading if it is a regular file (symbolic links are followed), and
/// returns it with its size.
///
/// FIFOs, sockets, devices and directories are refused with an error of kind
/// [`io::ErrorKind::InvalidInput`] that names the file type; opening never blocks.
pub fn open_regular_file(path: &Path) -> io::Result<(File, u64)> {
    // A first check by path gives a clear error without opening a device at all.
    check_regular(&std::fs::metadata(path)?)?;
    let file = open_nonblocking(path)?;
    // The check that counts: the handle's own type.
    let metadata = file.metadata()?;
    check_regular(&metadata)?;
    Ok((file, metadata.len()))
}

/// Reads a whole regular file of at most `max_bytes` bytes.
///
/// Refuses what [`open_regular_file`] refuses, and a file larger than `max_bytes` (also one
/// that grows past it while being read) with an error of kind [`io::ErrorKind::InvalidData`].
pub fn read_file_capped(path: &Path, max_bytes: u64) -> io::Result<Vec<u8>> {
    let (file, len) = open_regular_file(path)?;
    if len > max_bytes {
        return Err(too_large(len, max_bytes));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(max_bytes.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max_bytes {
        return Err(too_large(bytes.len() as u64, max_bytes));
    }
    Ok(bytes)
}

/// [`read_file_capped`] for a UTF-8 text file; invalid UTF-8 is an error of kind
/// [`io::ErrorKind::InvalidData`] that gives the byte offset.
pub fn read_text_capped(path: &Path, max_bytes: u64) -> io::Result<String> {
    String::from_utf8(read_file_capped(path, max_bytes)?).map_err(|e| {
        io::Error::new(io::ErrorKind::InvalidData, format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to()))
    })
}

fn too_large(len: u64, max_bytes: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("the file is larger than the {max_bytes}-byte limit for this kind of file (at least {len} bytes)"),
    )
}

fn check_regular(metadata: &Metadata) -> io::Result<()> {
    let kind = file_kind(metadata);
    match kind {
        "regular file" => Ok(()),
        _ => Err(io::Error::new(io::ErrorKind::InvalidInput, format!("is a {kind}, not a regular file"))),
    }
}

#[cfg(unix)]
fn file_kind(metadata: &Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = metadata.file_type();
    if t.is_file() {
        "regular file"
    } else if t.is_dir() {
        "directory"
    } else if t.is_fifo() {
        "FIFO (named pipe)"
    } else if t.is_socket() {
        "socket"
    } else if t.is_char_device() {
        "character device"
    } else if t.is_block_device() {
        "block device"
    } else {
        "special file"
    }
}

#[cfg(not(unix))]
fn file_kind(metadata: &Metadata) -> &'static str {
    let t = metadata.file_type();
    if t.is_file() {
        "regular file"
    } else if t.is_dir() {
        "directory"
    } else {
        "special file"
    }
}

#[cfg(unix)]
fn open_nonblocking(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    // O_NONBLOCK: opening a FIFO without a writer returns at once instead of waiting; on a
    // regular file the flag changes nothing.
    OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path)
}

#[cfg(not(unix))]
fn open_nonblocking(path: &Path) -> io::Result<File> {
    OpenOptions::new().read(true).open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tempdir(tag: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("vq-weights-input-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn reads_a_regular_file_up_to_the_cap() {
        let dir = tempdir("cap");
        let path = dir.join("a.json");
        std::fs::write(&path, b"{\"a\": 1}").unwrap();
        assert_eq!(read_text_capped(&path, 8).unwrap(), "{\"a\": 1}");
        let err = read_text_capped(&path, 7).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("7-byte limit"), "{err}");
    }

    #[test]
    fn refuses_directories_devices_and_fifos() {
        let dir = tempdir("kinds");
        let err = read_file_capped(&dir, 100).unwrap_err();
        assert!(err.to_string().contains("is a directory"), "{err}");
        let err = read_file_capped(Path::new("/dev/zero"), 100).unwrap_err();
        assert!(err.to_string().contains("is a character device"), "{err}");
        #[cfg(unix)]
        {
            let fifo = dir.join("fifo");
            let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
            // SAFETY: `c` is a valid NUL-terminated path.
            assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
            let err = read_file_capped(&fifo, 100).unwrap_err();
            assert!(err.to_string().contains("is a FIFO"), "{err}");
        }
    }

    #[test]
    fn invalid_utf8_is_an_error_with_its_offset() {
        let dir = tempdir("utf8");
        let path = dir.join("t.txt");
        std::fs::write(&path, b"ab\xffcd").unwrap();
        let err = read_text_capped(&path, 100).unwrap_err();
        assert!(err.to_string().contains("byte 2"), "{err}");
    }
}
