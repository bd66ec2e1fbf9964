//! `vq-diffusion encode` (picture → token ids, the VQ-VAE's encoder and quantizer) and
//! `vq-diffusion decode` (token ids → pictures, its decoder): what an inpainting keeps is
//! visible in token space, and any `--tokens` file can be drawn again.
//!
//! The token file is `generate --tokens`'s JSON: an array, one per picture, of arrays of
//! row-major latent-pixel codebook ids. `decode` also takes a single flat array.

use std::io::Write;
use std::path::{Path, PathBuf};

use vq_pipeline::{KernelBackend, LoadOptions, VQDiffusionPipeline};

use crate::args::{resolve_model, BackendKind};
use crate::backend::OnBackend;
use crate::edit::read_image;
use crate::error::CliError;
use crate::format::ImageFormat;
use crate::output::{image_path, tokens_json};
use crate::report;
use crate::staging::{plan, Staged};

/// `vq-diffusion encode`.
#[derive(Debug, Clone, clap::Args)]
#[command(
    after_help = "Example:\n  vq-diffusion encode in.png --tokens in.json\n  vq-diffusion decode in.json --output again.png"
)]
pub struct EncodeArgs {
    /// The picture (PNG) to encode; it must have the model's size unless --resize is given.
    #[arg(value_name = "IN.png")]
    pub image: PathBuf,

    /// Where to write the token ids (JSON: one array of row-major latent-pixel ids).
    #[arg(long, value_name = "T.json")]
    pub tokens: PathBuf,

    /// Resize the picture to cover the model's picture size and crop the centre.
    #[arg(long)]
    pub resize: bool,

    /// Pipeline folder or Hugging Face repository id (default as for `generate`).
    #[arg(long, value_name = "DIR|REPO_ID")]
    pub model: Option<String>,

    /// Compute backend (one compiled in).
    #[arg(long, value_enum, value_name = "BACKEND", default_value_t = BackendKind::preferred())]
    pub backend: BackendKind,
}

/// `vq-diffusion decode`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "Example:\n  vq-diffusion decode out.json --output out-again.png")]
pub struct DecodeArgs {
    /// The token ids (JSON, as `generate --tokens` and `encode --tokens` write them).
    #[arg(value_name = "T.json")]
    pub tokens: PathBuf,

    /// The picture file (PNG, JPEG or WebP by its extension, as for `generate`); with several
    /// pictures `-0`, `-1`, … is inserted before the extension.
    #[arg(long, value_name = "X.png")]
    pub output: PathBuf,

    /// Pipeline folder or Hugging Face repository id (default as for `generate`).
    #[arg(long, value_name = "DIR|REPO_ID")]
    pub model: Option<String>,

    /// Compute backend (one compiled in).
    #[arg(long, value_enum, value_name = "BACKEND", default_value_t = BackendKind::preferred())]
    pub backend: BackendKind,
}

fn load<B: KernelBackend>(model: &Option<String>, device: &B::Device) -> Result<VQDiffusionPipeline<B>, CliError> {
    let model = resolve_model(model)?;
    report(&format!("Loading {model}…"));
    Ok(VQDiffusionPipeline::<B>::from_pretrained(&model, &LoadOptions::default(), device)?)
}

impl OnBackend for EncodeArgs {
    fn backend(&self) -> BackendKind {
        self.backend
    }

    fn run<B: KernelBackend>(&self, device: B::Device) -> Result<(), CliError> {
        let picture = read_image(&self.image)?.to_rgb8();
        let targets = plan(&[("--tokens", self.tokens.clone())])?;
        let pipeline = load::<B>(&self.model, &device)?;
        if !pipeline.can_encode() {
            return Err(CliError::Failure(format!(
                "cannot encode {}: {}/vqvae has no encoder weights (this model only decodes)",
                self.image.display(),
                pipeline.dir.display()
            )));
        }
        let size = pipeline.image_size();
        let picture = match (picture.dimensions() == size, self.resize) {
            (true, _) | (_, true) => vq_pipeline::fit_image(&picture, size),
            (false, false) => {
                let (w, h) = picture.dimensions();
                return Err(CliError::Failure(format!(
                    "{} is {w}×{h} pixels, but the model's pictures are {}×{}; pass --resize to resize and crop it",
                    self.image.display(),
                    size.0,
                    size.1
                )));
            }
        };
        let tokens = pipeline
            .encode_images(&[picture])
            .map_err(|e| CliError::Failure(format!("{}: {e}", self.image.display())))?;
        let json = tokens_json(&tokens);
        let mut staged = Staged::default();
        staged.write(&targets[0], |out| out.write_all(json.as_bytes()).map_err(|e| e.to_string()))?;
        staged.commit()
    }
}

impl OnBackend for DecodeArgs {
    fn backend(&self) -> BackendKind {
        self.backend
    }

    fn run<B: KernelBackend>(&self, device: B::Device) -> Result<(), CliError> {
        let rows = read_token_file(&self.tokens)?;
        let format = ImageFormat::of(&self.output)?;
        let outputs: Vec<(&'static str, PathBuf)> =
            (0..rows.len()).map(|i| ("--output", image_path(&self.output, rows.len(), i))).collect();
        let targets = plan(&outputs)?;
        let pipeline = load::<B>(&self.model, &device)?;
        check_tokens(&self.tokens, &rows, &pipeline)?;
        let pictures =
            pipeline.decode_images(&rows).map_err(|e| CliError::Failure(format!("{}: {e}", self.tokens.display())))?;
        let parameters = [("tokens", self.tokens.display().to_string()), ("model", pipeline.dir.display().to_string())];
        let mut staged = Staged::default();
        for (picture, target) in pictures.iter().zip(&targets) {
            // Two short parameters: every format keeps them all.
            staged.write(target, |out| format.encode(picture, &parameters, "", out).map(|_| ()))?;
        }
        staged.commit()
    }
}

/// The rows of a token file: an array of arrays of integers, or one flat array.
fn read_token_file(path: &Path) -> Result<Vec<Vec<i64>>, CliError> {
    let fail = |message: String| CliError::Failure(format!("{} {message}", path.display()));
    let text =
        std::fs::read_to_string(path).map_err(|e| CliError::Failure(format!("cannot read {}: {e}", path.display())))?;
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| fail(format!("is not valid JSON: {e}")))?;
    let not_ids = || fail("must hold an array of token ids, or an array of such arrays (one per picture)".into());
    let row = |value: &serde_json::Value| -> Option<Vec<i64>> {
        value.as_array()?.iter().map(serde_json::Value::as_i64).collect()
    };
    let rows = match json.as_array() {
        Some(items) if items.iter().all(serde_json::Value::is_array) => {
            items.iter().map(row).collect::<Option<Vec<_>>>()
        }
        Some(_) => row(&json).map(|ids| vec![ids]),
        None => None,
    };
    match rows {
        Some(rows) if !rows.is_empty() => Ok(rows),
        Some(_) => Err(fail("holds no picture's tokens".into())),
        None => Err(not_ids()),
    }
}

/// Every row has the model's number of latent pixels, and every id has a codebook entry.
fn check_tokens<B: KernelBackend>(
    path: &Path,
    rows: &[Vec<i64>],
    pipeline: &VQDiffusionPipeline<B>,
) -> Result<(), CliError> {
    let (h, w) = pipeline.latent_size();
    let codes = pipeline.configs.vqvae.num_vq_embeddings as i64;
    for (r, row) in rows.iter().enumerate() {
        if row.len() != h * w {
            return Err(CliError::Failure(format!(
                "{}: picture {r} has {} token ids, but the model's latent grid {h}×{w} has {}",
                path.display(),
                row.len(),
                h * w
            )));
        }
        if let Some((i, id)) = row.iter().enumerate().find(|(_, &id)| !(0..codes).contains(&id)) {
            return Err(CliError::Failure(format!(
                "{}: picture {r}, latent pixel {i}: id {id} is outside the codebook 0..={} (the mask id {codes} \
                 has no picture)",
                path.display(),
                codes - 1
            )));
        }
    }
    Ok(())
}
