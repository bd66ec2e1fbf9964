//! `xtask convert`: PyTorch `.bin` checkpoints → safetensors, in the same folder layout.
//!
//! The hub's microsoft/vq-diffusion-ithq has fp32 weights only as pickles; converting once
//! makes later loads memory-mapped and pickle-free. Every other file (configs, tokenizer,
//! existing safetensors) is copied unchanged; with `--fp16` float tensors are stored as f16
//! under the hub's variant names (`model.fp16.safetensors`, `diffusion_pytorch_model.fp16.safetensors`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::tensor::{DType, TensorData};
use safetensors::tensor::TensorView;

/// Arguments of `xtask convert`.
#[derive(clap::Args)]
pub struct Args {
    /// Pipeline folder to read (the hub layout).
    #[arg(long)]
    input: PathBuf,
    /// Folder to write; created if absent, must not be the input.
    #[arg(long)]
    output: PathBuf,
    /// Store floating-point tensors as f16 (variant `fp16`).
    #[arg(long)]
    fp16: bool,
}

pub fn run(args: Args) -> Result<(), String> {
    if args.input.canonicalize().ok() == args.output.canonicalize().ok() {
        return Err("--output must differ from --input".into());
    }
    convert_dir(&args.input, &args.output, args.fp16)
}

fn convert_dir(input: &Path, output: &Path, fp16: bool) -> Result<(), String> {
    std::fs::create_dir_all(output).map_err(|e| format!("cannot create {}: {e}", output.display()))?;
    let entries = std::fs::read_dir(input).map_err(|e| format!("cannot read {}: {e}", input.display()))?;
    for entry in entries {
        let path = entry.map_err(|e| e.to_string())?.path();
        let name = path.file_name().ok_or("bad file name")?.to_string_lossy().into_owned();
        if path.is_dir() {
            convert_dir(&path, &output.join(&name), fp16)?;
        } else if let Some(stem) = name.strip_suffix(".bin") {
            let target = output.join(safetensors_name(stem, fp16));
            eprintln!("{} -> {}", path.display(), target.display());
            convert_file(&path, &target, fp16)?;
        } else {
            std::fs::copy(&path, output.join(&name)).map_err(|e| format!("cannot copy {}: {e}", path.display()))?;
        }
    }
    Ok(())
}

/// `pytorch_model[.v]` → `model[.v].safetensors`; `diffusion_pytorch_model[.v]` keeps its stem.
fn safetensors_name(bin_stem: &str, fp16: bool) -> String {
    let stem = bin_stem.strip_prefix("pytorch_").unwrap_or(bin_stem);
    let stem = stem.strip_suffix(".fp16").unwrap_or(stem);
    if fp16 {
        format!("{stem}.fp16.safetensors")
    } else {
        format!("{stem}.safetensors")
    }
}

fn convert_file(input: &Path, output: &Path, fp16: bool) -> Result<(), String> {
    let tensors = vq_weights::read_all_tensors(input).map_err(|e| e.to_string())?;
    let tensors: Vec<(String, TensorData)> = tensors
        .into_iter()
        .map(|(name, data)| {
            let target = match data.dtype {
                d if d.is_float() && fp16 => DType::F16,
                d if d.is_float() => DType::F32,
                d => d,
            };
            (name, if data.dtype == target { data } else { data.convert_dtype(target) })
        })
        .collect();
    let views = tensors
        .iter()
        .map(|(name, data)| {
            let view = TensorView::new(st_dtype(data.dtype)?, data.shape.to_vec(), data.as_bytes())
                .map_err(|e| format!("{name}: {e}"))?;
            Ok((name.clone(), view))
        })
        .collect::<Result<HashMap<_, _>, String>>()?;
    let metadata = HashMap::from([("format".to_string(), "pt".to_string())]);
    safetensors::serialize_to_file(views, Some(metadata), output).map_err(|e| format!("{}: {e}", output.display()))
}

fn st_dtype(dtype: DType) -> Result<safetensors::Dtype, String> {
    use safetensors::Dtype as S;
    Ok(match dtype {
        DType::F64 => S::F64,
        DType::F32 => S::F32,
        DType::F16 => S::F16,
        DType::BF16 => S::BF16,
        DType::I64 => S::I64,
        DType::I32 => S::I32,
        DType::I16 => S::I16,
        DType::I8 => S::I8,
        DType::U8 => S::U8,
        DType::Bool(_) => S::BOOL,
        other => return Err(format!("unsupported tensor type {other:?}")),
    })
}

#[cfg(test)]
mod tests {
    use super::safetensors_name;

    #[test]
    fn names_follow_the_hub() {
        assert_eq!(safetensors_name("pytorch_model", false), "model.safetensors");
        assert_eq!(safetensors_name("pytorch_model", true), "model.fp16.safetensors");
        assert_eq!(safetensors_name("diffusion_pytorch_model", false), "diffusion_pytorch_model.safetensors");
        assert_eq!(safetensors_name("diffusion_pytorch_model.fp16", true), "diffusion_pytorch_model.fp16.safetensors");
    }
}
