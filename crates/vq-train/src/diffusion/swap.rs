//! Putting a fine-tuned decoder into an exported pipeline.
//!
//! `vq-train vqvae --decoder-only` trains the decoder (and `post_quant_conv`) of a VQ-VAE while its
//! encoder, `quant_conv` and codebook stay frozen, so every image keeps its codes and the
//! transformer trained on those codes stays valid. [`swap_vqvae`] writes a pipeline whose
//! `vqvae/` is the fine-tuned one and everything else the old pipeline's — after checking that
//! the frozen part really is the old pipeline's, since a VQ-VAE with other codes would pair the
//! transformer with a decoder that reads its tokens as something else.

use std::path::Path;
use vq_kernels::KernelBackend;

use burn::tensor::TensorData;
use vq_model::{VQModel, VQModelConfig};

use crate::train::export::{copy_dir, StoreDtype};
use crate::vqvae::write_vqvae_dir;
use crate::TrainError;

/// Checkpoint-key prefixes of the part of a VQ-VAE that decides each image's codes.
const CODE_PREFIXES: [&str; 3] = ["encoder.", "quant_conv.", "quantize."];

/// Writes `out_dir` as `pipeline_dir` with `vqvae_dir` as its `vqvae/`, stored in `dtype`.
/// `out_dir` may be `pipeline_dir` itself (only its `vqvae/` is rewritten).
///
/// # Errors
/// [`TrainError::Model`] naming the config or the first tensor of the encoder, `quant_conv` or
/// codebook that differs from the pipeline's (compared in the pipeline's stored precision);
/// [`TrainError::Io`] for files that cannot be read, copied or written.
pub fn swap_vqvae<B: KernelBackend>(
    pipeline_dir: &Path,
    vqvae_dir: &Path,
    out_dir: &Path,
    dtype: StoreDtype,
    device: &B::Device,
) -> Result<(), TrainError> {
    let old_dir = pipeline_dir.join("vqvae");
    let config = |dir: &Path| {
        VQModelConfig::from_file(&dir.join("config.json")).map_err(|e| TrainError::model("VQ-VAE config", e))
    };
    let new_config = config(vqvae_dir)?;
    if config(&old_dir)? != new_config {
        return Err(TrainError::model(
            format!("{} against {}", vqvae_dir.display(), old_dir.display()),
            "the configs differ: a decoder-only run keeps its --init-from's architecture",
        ));
    }
    check_same_codes(&old_dir, vqvae_dir)?;
    let vqvae = VQModel::<B>::from_config(&new_config, vqvae_dir, None, device)
        .map_err(|e| TrainError::model("loading the VQ-VAE", e))?;

    copy_dir(pipeline_dir, out_dir, &["vqvae"])?;
    write_vqvae_dir(&vqvae, &new_config, &out_dir.join("vqvae"), dtype)
}

/// Fails on the first code-deciding tensor of `new_dir` that differs from `old_dir`'s once
/// rounded to the precision `old_dir` stores it in (a frozen f16 weight trained in f32 comes
/// back bit-identical).
fn check_same_codes(old_dir: &Path, new_dir: &Path) -> Result<(), TrainError> {
    let read = |dir: &Path| -> Result<Vec<(String, TensorData)>, TrainError> {
        let file = vq_weights::find_weights_file(dir, "diffusion_pytorch_model", None)
            .map_err(|e| TrainError::model("VQ-VAE weights", e))?;
        let tensors = vq_weights::read_all_tensors(&file).map_err(|e| TrainError::model("VQ-VAE weights", e))?;
        Ok(tensors.into_iter().filter(|(name, _)| CODE_PREFIXES.iter().any(|p| name.starts_with(p))).collect())
    };
    let (old, new) = (read(old_dir)?, read(new_dir)?);
    let context = format!("{} against {}", new_dir.display(), old_dir.display());
    if old.len() != new.len() || old.iter().zip(&new).any(|((a, _), (b, _))| a != b) {
        return Err(TrainError::model(context, "the encoder, quant_conv and codebook tensors have other names"));
    }
    for ((name, old), (_, new)) in old.iter().zip(new) {
        let new = if new.dtype == old.dtype { new } else { new.convert_dtype(old.dtype) };
        if new.shape != old.shape || new.as_bytes() != old.as_bytes() {
            return Err(TrainError::model(
                context,
                format!("`{name}` differs: its codes are not the pipeline's (train with --decoder-only)"),
            ));
        }
    }
    Ok(())
}
