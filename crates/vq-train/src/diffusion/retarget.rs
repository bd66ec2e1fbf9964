//! Moving a trained transformer onto a VQ-VAE with other codes.
//!
//! A stage-1 run that trains the encoder or the codebook (not `--decoder-only`) gives every
//! image new codes, and the pipeline's transformer would read them as something else. A new
//! transformer trained from scratch on them costs what the first one did; [`retarget_pipeline`]
//! gives it a start instead. It encodes the same training images with both VQ-VAEs, matches
//! each new code with the old code it most often replaces on the same latent pixel
//! ([`match_codes`]), and writes a pipeline whose transformer has, for each new code, the
//! matched old code's input embedding and output row — the old code's output probability split
//! among the new codes matched to it, in proportion to how often each replaced it. For a
//! codebook that is only permuted this is exact; in general it is where
//! `vq-train transformer --init-from` starts.

use std::path::Path;
use vq_kernels::KernelBackend;

use burn::tensor::TensorData;
use vq_model::{VQModel, VQModelConfig};

use crate::data::{images_to_tensor, Dataset, DatasetConfig, Split};
use crate::train::export::{copy_dir, create_dir, read_json, write_json, write_safetensors, NamedTensor, StoreDtype};
use crate::vqvae::write_vqvae_dir;
use crate::TrainError;

/// The transformer's tensors indexed by code (diffusers' key names): the input embedding
/// `[K + 1, D]` (the mask class last) and the output projection `[K, D]`, `[K]`.
const EMBEDDING: &str = "latent_image_embedding.emb.weight";
const OUT_WEIGHT: &str = "out.weight";
const OUT_BIAS: &str = "out.bias";

/// Images encoded per VQ-VAE call while counting code pairs.
const ENCODE_BATCH: usize = 32;
/// Images between progress lines (2,048 take ≈ 4.6 minutes on a 2-core CPU with burn-ndarray).
pub const PROGRESS_EVERY: usize = 256;

/// Which old code stands in for each new one.
#[derive(Debug, Clone, PartialEq)]
pub struct CodeMatch {
    /// For each new code, the old code whose embedding and output row it takes.
    pub old_of_new: Vec<usize>,
    /// ln of the new code's share of its old code's output probability.
    pub log_share: Vec<f64>,
    /// Fraction of the counted latent pixels whose old code is the match of their new code.
    pub agreement: f64,
    /// New codes no counted pixel used (matched to the most frequent old code, with a share
    /// below any seen frequency).
    pub unused: usize,
}

/// Matches codes from `counts[new · k_old + old]`, how often a latent pixel got code `new` from
/// the new VQ-VAE and `old` from the old one. Each new code takes the old code it co-occurs
/// with most (the lowest on ties); its share is its count over the counts of all new codes
/// matched to the same old code. A new code never seen takes the most frequent old code with a
/// share of 1 / (pixels + 1).
///
/// # Panics
/// If `counts` is not `k_new · k_old` long.
pub fn match_codes(counts: &[u64], k_new: usize, k_old: usize) -> CodeMatch {
    assert_eq!(counts.len(), k_new * k_old, "counts must be [k_new, k_old]");
    let row = |new: usize| &counts[new * k_old..(new + 1) * k_old];
    let drawn = |new: usize| row(new).iter().any(|&c| c > 0);
    let argmax = |values: &mut dyn Iterator<Item = u64>| {
        values.enumerate().fold((0, 0), |best, (i, v)| if v > best.1 { (i, v) } else { best }).0
    };
    let pixels: u64 = counts.iter().sum();
    let most_frequent_old = argmax(&mut (0..k_old).map(|old| (0..k_new).map(|new| row(new)[old]).sum()));
    let old_of_new: Vec<usize> = (0..k_new)
        .map(|new| if drawn(new) { argmax(&mut row(new).iter().copied()) } else { most_frequent_old })
        .collect();
    let mut matched_total = vec![0u64; k_old];
    for (new, &old) in old_of_new.iter().enumerate() {
        matched_total[old] += row(new)[old];
    }
    let log_share = old_of_new
        .iter()
        .enumerate()
        .map(|(new, &old)| match row(new)[old] {
            0 => -((pixels + 1) as f64).ln(),
            count => (count as f64 / matched_total[old] as f64).ln(),
        })
        .collect();
    let agreed: u64 = old_of_new.iter().enumerate().map(|(new, &old)| row(new)[old]).sum();
    CodeMatch {
        unused: (0..k_new).filter(|&new| !drawn(new)).count(),
        agreement: agreed as f64 / pixels.max(1) as f64,
        old_of_new,
        log_share,
    }
}

/// Counts `[new · K_old + old]` over the latent pixels of training images `0..images` of
/// `dataset` encoded by both VQ-VAEs, reporting every [`PROGRESS_EVERY`] images.
pub fn count_code_pairs<B: KernelBackend>(
    old: &VQModel<B>,
    new: &VQModel<B>,
    dataset: &Dataset,
    images: usize,
    device: &B::Device,
    progress: &mut dyn FnMut(&str),
) -> Result<Vec<u64>, TrainError> {
    let (k_old, k_new) = (old.quantize.num_embeddings(), new.quantize.num_embeddings());
    let codes = |vqvae: &VQModel<B>, x| -> Result<Vec<i64>, TrainError> {
        let latents = vqvae.encode(x).map_err(|e| TrainError::model("VQ-VAE encode", e))?;
        let indices = vqvae.quantize(latents).map_err(|e| TrainError::model("VQ-VAE quantize", e))?.indices;
        indices.into_data().convert::<i64>().into_vec::<i64>().map_err(|e| TrainError::model("codes", format!("{e:?}")))
    };
    let mut counts = vec![0u64; k_new * k_old];
    for start in (0..images).step_by(ENCODE_BATCH) {
        let samples: Vec<_> =
            (start..images.min(start + ENCODE_BATCH)).map(|i| dataset.sample(Split::Train, i as u64)).collect();
        let pictures: Vec<&image::RgbImage> = samples.iter().map(|s| &s.image).collect();
        let x = images_to_tensor::<B>(&pictures, device);
        let (old_codes, new_codes) = (codes(old, x.clone())?, codes(new, x)?);
        if old_codes.len() != new_codes.len() {
            return Err(TrainError::model(
                "retargeting",
                format!("the VQ-VAEs' latent grids differ ({} and {} pixels)", old_codes.len(), new_codes.len()),
            ));
        }
        for (old, new) in old_codes.into_iter().zip(new_codes) {
            counts[new as usize * k_old + old as usize] += 1;
        }
        let done = images.min(start + ENCODE_BATCH);
        if done.is_multiple_of(PROGRESS_EVERY) || done == images {
            progress(&format!("encoded {done} of {images} images with both VQ-VAEs"));
        }
    }
    Ok(counts)
}

/// Writes `out_dir` as `pipeline_dir` with `vqvae_dir` as its VQ-VAE and the transformer's
/// code-indexed tensors rearranged for its codes (see the module doc), matched on `images`
/// training images; the transformer and scheduler configs get the new `K + 1` classes. Weights
/// are stored in `dtype`; `out_dir` may be `pipeline_dir`. The encoding reports through `progress`.
///
/// # Errors
/// [`TrainError::Model`] when `images` is 0, the VQ-VAEs' image or latent sizes differ, or the transformer
/// lacks a code-indexed tensor or has it in another shape; [`TrainError::Io`] for files.
pub fn retarget_pipeline<B: KernelBackend>(
    pipeline_dir: &Path,
    vqvae_dir: &Path,
    out_dir: &Path,
    images: usize,
    dtype: StoreDtype,
    device: &B::Device,
    progress: &mut dyn FnMut(&str),
) -> Result<CodeMatch, TrainError> {
    let load = |dir: &Path| -> Result<(VQModelConfig, VQModel<B>), TrainError> {
        let context = || format!("loading {}", dir.display());
        let config = VQModelConfig::from_file(&dir.join("config.json")).map_err(|e| TrainError::model(context(), e))?;
        let model = VQModel::from_config(&config, dir, None, device).map_err(|e| TrainError::model(context(), e))?;
        Ok((config, model))
    };
    if images == 0 {
        return Err(TrainError::model("retargeting", "codes are matched on at least one image (0 given)"));
    }
    let (old_config, old) = load(&pipeline_dir.join("vqvae"))?;
    let (new_config, new) = load(vqvae_dir)?;
    if old_config.sample_size != new_config.sample_size {
        return Err(TrainError::model(
            "retargeting",
            format!(
                "sample_size {} of the new VQ-VAE against the pipeline's {}",
                new_config.sample_size, old_config.sample_size
            ),
        ));
    }
    let dataset_config = DatasetConfig { image_size: new_config.sample_size as u32, ..DatasetConfig::default() };
    let dataset = Dataset::new(dataset_config, 0)?;
    let counts = count_code_pairs(&old, &new, &dataset, images, device, progress)?;
    let (k_old, k_new) = (old.quantize.num_embeddings(), new.quantize.num_embeddings());
    let matched = match_codes(&counts, k_new, k_old);

    let weights = vq_weights::find_weights_file(&pipeline_dir.join("transformer"), "diffusion_pytorch_model", None)
        .map_err(|e| TrainError::model("transformer weights", e))?;
    let tensors = vq_weights::read_all_tensors(&weights).map_err(|e| TrainError::model("transformer weights", e))?;
    let tensors = retarget_tensors(tensors, &matched, k_old)
        .map_err(|message| TrainError::model(weights.display().to_string(), message))?;
    let mut transformer_config: serde_json::Value = read_json(&pipeline_dir.join("transformer/config.json"))?;
    transformer_config["num_vector_embeds"] = (k_new + 1).into();
    let mut scheduler_config: serde_json::Value = read_json(&pipeline_dir.join("scheduler/scheduler_config.json"))?;
    scheduler_config["num_vec_classes"] = (k_new + 1).into();

    // Everything is read: `out_dir` may be `pipeline_dir`.
    copy_dir(pipeline_dir, out_dir, &["vqvae", "transformer", "scheduler"])?;
    for dir in ["transformer", "scheduler"] {
        create_dir(&out_dir.join(dir))?;
    }
    write_json(&out_dir.join("transformer/config.json"), &transformer_config)?;
    write_safetensors(&out_dir.join("transformer/diffusion_pytorch_model.safetensors"), &tensors, dtype)?;
    write_json(&out_dir.join("scheduler/scheduler_config.json"), &scheduler_config)?;
    write_vqvae_dir(&new, &new_config, &out_dir.join("vqvae"), dtype)?;
    Ok(matched)
}

/// The transformer's tensors with the code-indexed rows rearranged by `matched`; the others as
/// they were (in f32).
fn retarget_tensors(
    tensors: Vec<(String, TensorData)>,
    matched: &CodeMatch,
    k_old: usize,
) -> Result<Vec<NamedTensor>, String> {
    let mut seen = 0;
    let converted = tensors.into_iter().map(|(name, data)| {
        let shape = data.shape.to_vec();
        let values = data.convert::<f32>().into_vec::<f32>().map_err(|e| format!("`{name}`: {e:?}"))?;
        let (rows, extra_rows) = match name.as_str() {
            EMBEDDING => (k_old + 1, 1),
            OUT_WEIGHT | OUT_BIAS => (k_old, 0),
            _ => return Ok((name, shape, values)),
        };
        seen += 1;
        if shape.first() != Some(&rows) {
            return Err(format!(
                "`{name}` has shape {shape:?}: {rows} rows expected (K = {k_old} of the pipeline's VQ-VAE)"
            ));
        }
        let width = values.len() / rows;
        let row = |old: usize| values[old * width..(old + 1) * width].iter().copied();
        let mut out: Vec<f32> = matched.old_of_new.iter().flat_map(|&old| row(old)).collect();
        if name == OUT_BIAS {
            out.iter_mut().zip(&matched.log_share).for_each(|(bias, share)| *bias += *share as f32);
        }
        // The mask class stays last.
        out.extend((k_old..k_old + extra_rows).flat_map(row));
        let mut new_shape = shape;
        new_shape[0] = matched.old_of_new.len() + extra_rows;
        Ok((name, new_shape, out))
    });
    let converted: Vec<NamedTensor> = converted.collect::<Result<_, String>>()?;
    if seen != 3 {
        return Err(format!("`{EMBEDDING}`, `{OUT_WEIGHT}` and `{OUT_BIAS}` expected: not a discrete transformer"));
    }
    Ok(converted)
}
