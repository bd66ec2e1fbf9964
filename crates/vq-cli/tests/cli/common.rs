//! Running the binary, scratch folders, fixtures and reference tensors.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;

/// What a run of the binary gave.
#[derive(Debug)]
pub struct Run {
    /// Exit status (None when killed by a signal).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// Runs `vq-diffusion` with `args`, without `VQ_DIFFUSION_MODEL` in its environment.
pub fn vq_diffusion<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Run {
    vq_diffusion_with_model_env(args, None)
}

/// Runs `vq-diffusion` with `args` and `VQ_DIFFUSION_MODEL` set to `model` (unset for `None`).
pub fn vq_diffusion_with_model_env<S: AsRef<std::ffi::OsStr>>(args: &[S], model: Option<&str>) -> Run {
    let mut command = vq_diffusion_command(args);
    if let Some(model) = model {
        command.env("VQ_DIFFUSION_MODEL", model);
    }
    Run::of(&mut command)
}

/// The command `vq-diffusion` with `args`, without `VQ_DIFFUSION_MODEL` in its environment, and
/// with the embedded model unpacked into a cache under the temp folder, not the user's.
pub fn vq_diffusion_command<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_vq-diffusion"));
    command.args(args).env_remove("VQ_DIFFUSION_MODEL");
    command.env("XDG_CACHE_HOME", std::env::temp_dir().join("vq-cli-test-cache"));
    command
}

impl Run {
    /// Runs `command` to its end.
    pub fn of(command: &mut Command) -> Self {
        let output = command.output().expect("the binary runs");
        Run {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Asserts a clap usage error: status 2, stderr starting `error:` with every word of `words`.
    pub fn assert_clap_error(&self, words: &[&str]) {
        assert_eq!(self.code, Some(2), "exit status; stderr:\n{}", self.stderr);
        assert!(self.stderr.starts_with("error: "), "stderr:\n{}", self.stderr);
        assert!(!self.stderr.contains("panicked"), "a panic: {}", self.stderr);
        for word in words {
            assert!(self.stderr.contains(word), "{word:?} missing from {}", self.stderr);
        }
    }

    /// Asserts success, showing stderr otherwise.
    pub fn assert_success(&self) {
        assert_eq!(self.code, Some(0), "expected success; stderr:\n{}", self.stderr);
    }

    /// Asserts exit status `code`, no panic output, nothing on stdout, and that the last
    /// stderr line is the only `error: …` line and contains every word of `words`.
    pub fn assert_error(&self, code: i32, words: &[&str]) {
        assert_eq!(self.code, Some(code), "exit status; stderr:\n{}", self.stderr);
        assert!(!self.stderr.contains("panicked"), "a panic: {}", self.stderr);
        assert!(!self.stderr.contains("RUST_BACKTRACE"), "a panic: {}", self.stderr);
        let errors = self.stderr.lines().filter(|l| l.starts_with("error")).count();
        assert_eq!(errors, 1, "exactly one error line expected; stderr:\n{}", self.stderr);
        let line = self.stderr.lines().last().unwrap_or_default();
        assert!(line.starts_with("error: "), "last stderr line {line:?}");
        for word in words {
            assert!(line.contains(word), "{word:?} missing from {line:?}");
        }
        assert!(self.stdout.is_empty(), "nothing on stdout after an error: {}", self.stdout);
    }
}

/// The backend the binary uses without `--backend`: the faster CPU backend of this build.
pub fn default_backend() -> &'static str {
    if cfg!(feature = "flex") {
        "flex"
    } else {
        "ndarray"
    }
}

/// `fixtures/` of the workspace.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

/// A committed tiny pipeline: `hub`, `raw`, `bin` or `nolearn`.
pub fn tiny(layout: &str) -> PathBuf {
    fixtures().join("tiny").join(layout)
}

/// A reference tensor of `fixtures/reference/tiny.safetensors`.
pub fn reference(name: &str) -> burn::tensor::TensorData {
    vq_weights::read_tensor(&fixtures().join("reference/tiny.safetensors"), name).expect("reference tensor")
}

/// The end-to-end case `name` of `fixtures/reference/cases.json`.
pub fn case(name: &str) -> Value {
    let text = std::fs::read_to_string(fixtures().join("reference/cases.json")).expect("cases.json");
    let json: Value = serde_json::from_str(&text).expect("cases.json is JSON");
    json["cases"].as_array().expect("cases").iter().find(|c| c["name"] == name).cloned().expect("the case exists")
}

/// A scratch folder under the system temp dir, removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    /// A new empty folder whose name contains `label`.
    pub fn new(label: &str) -> Self {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let n = COUNT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("vq-cli-test-{}-{n}-{label}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create scratch folder");
        Self(dir)
    }

    /// `path` inside the folder.
    pub fn join(&self, path: &str) -> PathBuf {
        self.0.join(path)
    }

    /// A copy of the tiny pipeline `layout` in this folder.
    pub fn copy_of(&self, layout: &str) -> PathBuf {
        let to = self.join(layout);
        copy_dir(&tiny(layout), &to);
        to
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create folder");
    for entry in std::fs::read_dir(from).expect("read fixture folder") {
        let entry = entry.expect("folder entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy file");
        }
    }
}

/// The text chunks (iTXt and tEXt) of a PNG, in file order.
pub fn png_text(path: &Path) -> Vec<(String, String)> {
    let file = std::io::BufReader::new(std::fs::File::open(path).expect("open PNG"));
    let reader = png::Decoder::new(file).read_info().expect("PNG header");
    let info = reader.info();
    let utf8 = info.utf8_text.iter().map(|c| (c.keyword.clone(), c.get_text().expect("iTXt text")));
    let latin1 = info.uncompressed_latin1_text.iter().map(|c| (c.keyword.clone(), c.text.clone()));
    utf8.chain(latin1).collect()
}

/// The value of text chunk `keyword` (exactly one must exist).
pub fn text_value(chunks: &[(String, String)], keyword: &str) -> String {
    let values: Vec<&String> = chunks.iter().filter(|(k, _)| k == keyword).map(|(_, v)| v).collect();
    assert_eq!(values.len(), 1, "text chunk {keyword:?} in {chunks:?}");
    values[0].clone()
}

/// The `--tokens` JSON: one array of ids per image.
pub fn read_tokens(path: &Path) -> Vec<Vec<i64>> {
    serde_json::from_str(&std::fs::read_to_string(path).expect("tokens file")).expect("tokens JSON")
}

/// The parameters a JPEG or WebP records: the JSON object in the EXIF `UserComment` (a TIFF
/// structure: IFD0 → Exif IFD pointer 0x8769 → tag 0x9286, `ASCII\0\0\0` then the text).
pub fn exif_parameters(path: &Path) -> serde_json::Map<String, Value> {
    use image::ImageDecoder;
    let mut decoder = image::ImageReader::open(path)
        .and_then(|r| r.with_guessed_format())
        .expect("open image")
        .into_decoder()
        .expect("image decoder");
    let exif = decoder.exif_metadata().expect("read EXIF").expect("EXIF present");
    let tiff = exif.strip_prefix(b"Exif\0\0".as_slice()).unwrap_or(&exif);
    assert_eq!(&tiff[..4], b"II*\0", "little-endian TIFF");
    let u16_at = |at: usize| u16::from_le_bytes([tiff[at], tiff[at + 1]]) as usize;
    let u32_at = |at: usize| u32::from_le_bytes([tiff[at], tiff[at + 1], tiff[at + 2], tiff[at + 3]]) as usize;
    // The entry `tag` of the IFD at `ifd`: (count, value or offset).
    let entry = |ifd: usize, tag: usize| {
        (0..u16_at(ifd))
            .map(|i| ifd + 2 + 12 * i)
            .find(|&e| u16_at(e) == tag)
            .map(|e| (u32_at(e + 4), u32_at(e + 8)))
            .unwrap_or_else(|| panic!("tag {tag:#x} in the IFD at {ifd}"))
    };
    let (_, exif_ifd) = entry(u32_at(4), 0x8769);
    let (count, at) = entry(exif_ifd, 0x9286);
    let comment = &tiff[at..at + count];
    let text = comment.strip_prefix(b"ASCII\0\0\0".as_slice()).expect("an ASCII UserComment");
    serde_json::from_slice(text).expect("a JSON object")
}
