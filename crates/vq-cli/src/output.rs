//! The files a run writes: image names, an early writability check, PNG metadata, token JSON.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};

use crate::error::CliError;

/// The image files for a batch of `count`: `output` itself for one image, else
/// `stem-0.ext`, `stem-1.ext`, … (or `name-0`, … without an extension) in batch order.
pub fn image_paths(output: &Path, count: usize) -> Vec<PathBuf> {
    if count == 1 {
        return vec![output.to_path_buf()];
    }
    let stem = output.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    (0..count)
        .map(|i| {
            let name = match output.extension() {
                Some(ext) => format!("{stem}-{i}.{}", ext.to_string_lossy()),
                None => format!("{stem}-{i}"),
            };
            output.with_file_name(name)
        })
        .collect()
}

/// Fails now, before minutes of sampling, if `path` cannot be written: an existing file must
/// open for writing (it is not truncated here); a new one is created and removed again.
pub fn check_writable(path: &Path) -> Result<(), CliError> {
    let error = |message: String| CliError::Failure(format!("cannot write {}: {message}", path.display()));
    if path.is_dir() {
        return Err(error("it is a directory".into()));
    }
    if path.exists() {
        return OpenOptions::new().append(true).open(path).map(drop).map_err(|e| error(e.to_string()));
    }
    OpenOptions::new().write(true).create_new(true).open(path).map_err(|e| error(e.to_string()))?;
    std::fs::remove_file(path).map_err(|e| error(e.to_string()))
}

/// What the PNG text chunks record about a generation (keyword, value).
pub struct Metadata<'a> {
    /// `--model` as given.
    pub model: &'a str,
    /// The seed used (given or drawn).
    pub seed: u64,
    /// `torch` or `device`.
    pub rng: &'static str,
    /// Denoising steps.
    pub steps: usize,
    /// Guidance scale.
    pub guidance_scale: f32,
    /// Truncation rate.
    pub truncation_rate: f32,
    /// `exact` or `device`.
    pub truncation_mode: &'static str,
    /// `posterior`, `reveal` or `purity`.
    pub sampler: &'static str,
    /// The purity prior's weight r (recorded with `purity` only).
    pub purity_weight: Option<f32>,
    /// Backend name.
    pub backend: &'static str,
    /// Precision name.
    pub dtype: &'static str,
}

impl Metadata<'_> {
    /// The text chunks of one image with its `prompt`.
    pub fn chunks(&self, prompt: &str) -> Vec<(&'static str, String)> {
        let mut chunks = vec![
            ("prompt", prompt.to_string()),
            ("seed", self.seed.to_string()),
            ("rng", self.rng.to_string()),
            ("steps", self.steps.to_string()),
            ("guidance_scale", self.guidance_scale.to_string()),
            ("truncation_rate", self.truncation_rate.to_string()),
            ("truncation_mode", self.truncation_mode.to_string()),
            ("sampler", self.sampler.to_string()),
            ("model", self.model.to_string()),
            ("backend", self.backend.to_string()),
            ("dtype", self.dtype.to_string()),
            ("software", concat!("vq-diffusion ", env!("CARGO_PKG_VERSION")).to_string()),
        ];
        if let Some(weight) = self.purity_weight {
            chunks.push(("purity_weight", weight.to_string()));
        }
        chunks
    }
}

/// Writes the token ids as JSON: one array of row-major latent-pixel ids per image.
pub fn write_tokens(path: &Path, tokens: &[Vec<i64>]) -> Result<(), CliError> {
    let mut json = serde_json::to_string(tokens).map_err(|e| CliError::Failure(e.to_string()))?;
    json.push('\n');
    std::fs::write(path, json).map_err(|e| CliError::Failure(format!("cannot write {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_files_are_numbered_before_the_extension() {
        assert_eq!(image_paths(Path::new("out/a.png"), 1), [PathBuf::from("out/a.png")]);
        assert_eq!(
            image_paths(Path::new("out/a.b.png"), 2),
            [PathBuf::from("out/a.b-0.png"), PathBuf::from("out/a.b-1.png")]
        );
        assert_eq!(image_paths(Path::new("img"), 2), [PathBuf::from("img-0"), PathBuf::from("img-1")]);
    }
}
