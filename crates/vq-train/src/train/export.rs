//! Writing trained modules as diffusers / transformers checkpoints: safetensors files in
//! PyTorch's layout and names, plus the config files.
//!
//! burn-store's `BurnToPyTorchAdapter` transposes Linear weights back to `[out, in]` and
//! renames LayerNorm/GroupNorm `gamma`/`beta` to `weight`/`bias`; the renames below undo each
//! model crate's `keys.rs` table, so the files load in diffusers/transformers and, through
//! those tables, in this workspace.

use std::collections::HashMap;
use std::path::Path;

use burn::module::Module;
use burn::tensor::backend::Backend;
use burn_store::{BurnToPyTorchAdapter, ModuleSnapshot};
use safetensors::tensor::{Dtype, TensorView};

use crate::TrainError;

/// Module path → checkpoint key renames of `vq_model::keys` reversed (save_pretrained's
/// attention names, list indices).
pub const VQ_MODEL_RENAMES: &[(&str, &str)] =
    &[(".to_out.", ".to_out.0."), (".downsampler.", ".downsamplers.0."), (".upsampler.", ".upsamplers.0.")];

/// Module path → checkpoint key renames of `transformer2d::keys` reversed.
pub const TRANSFORMER_RENAMES: &[(&str, &str)] =
    &[(".to_out.", ".to_out.0."), (".ff.proj_in.", ".ff.net.0.proj."), (".ff.proj_out.", ".ff.net.2.")];

/// A tensor ready to write: PyTorch name, shape, f32 values.
pub type NamedTensor = (String, Vec<usize>, Vec<f32>);

/// Storage precision of an exported file or a checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreDtype {
    /// 32-bit floats.
    F32,
    /// IEEE half precision (diffusers and this workspace cast back to f32 on load).
    F16,
}

/// The module's float tensors under PyTorch names: `prefix` + path with `renames` applied,
/// Linear weights `[out, in]`, norms `weight`/`bias`, as f32 values with their shapes.
pub fn pytorch_tensors<B: Backend, M: Module<B> + ModuleSnapshot<B>>(
    module: &M,
    prefix: &str,
    renames: &[(&str, &str)],
) -> Result<Vec<NamedTensor>, TrainError> {
    let mut tensors = Vec::new();
    for snapshot in module.collect(None, Some(Box::new(BurnToPyTorchAdapter)), true) {
        let mut key = snapshot.full_path();
        for (from, to) in renames {
            key = key.replace(from, to);
        }
        let data = snapshot.to_data().map_err(|e| TrainError::model(format!("reading {key}"), format!("{e:?}")))?;
        let shape = data.shape.to_vec();
        let values = data
            .convert::<f32>()
            .into_vec::<f32>()
            .map_err(|e| TrainError::model(format!("reading {key}"), format!("{e:?}")))?;
        tensors.push((format!("{prefix}{key}"), shape, values));
    }
    Ok(tensors)
}

/// Writes `(name, shape, values)` tensors to a safetensors file in `dtype`.
pub fn write_safetensors(path: &Path, tensors: &[NamedTensor], dtype: StoreDtype) -> Result<(), TrainError> {
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, _, values)| match dtype {
            StoreDtype::F32 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            StoreDtype::F16 => values.iter().flat_map(|v| half::f16::from_f32(*v).to_le_bytes()).collect(),
        })
        .collect();
    let st_dtype = match dtype {
        StoreDtype::F32 => Dtype::F32,
        StoreDtype::F16 => Dtype::F16,
    };
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .zip(&bytes)
        .map(|((name, shape, _), data)| {
            let view = TensorView::new(st_dtype, shape.clone(), data).expect("byte length matches the shape");
            (name.clone(), view)
        })
        .collect();
    let metadata = HashMap::from([("format".to_string(), "pt".to_string())]);
    safetensors::serialize_to_file(views, Some(metadata), path).map_err(|e| TrainError::io(path, e))
}

/// Reads a JSON file as `T`.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, TrainError> {
    let text = std::fs::read_to_string(path).map_err(|e| TrainError::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| TrainError::io(path, e))
}

/// Writes pretty JSON.
pub fn write_json(path: &Path, value: &serde_json::Value) -> Result<(), TrainError> {
    let text = serde_json::to_string_pretty(value).expect("JSON values serialize");
    std::fs::write(path, text + "\n").map_err(|e| TrainError::io(path, e))
}

/// Creates a folder and its parents.
pub fn create_dir(path: &Path) -> Result<(), TrainError> {
    std::fs::create_dir_all(path).map_err(|e| TrainError::io(path, e))
}

/// Copies the folder `from` (files and subfolders) to `to`, leaving out the top-level entries
/// named in `skip`. Nothing to do when `to` is `from` (a file copied onto itself is truncated).
pub fn copy_dir(from: &Path, to: &Path, skip: &[&str]) -> Result<(), TrainError> {
    create_dir(to)?;
    if matches!((from.canonicalize(), to.canonicalize()), (Ok(a), Ok(b)) if a == b) {
        return Ok(());
    }
    for entry in std::fs::read_dir(from).map_err(|e| TrainError::io(from, e))? {
        let path = entry.map_err(|e| TrainError::io(from, e))?.path();
        let name = path.file_name().expect("read_dir entries have names");
        if skip.iter().any(|s| name == *s) {
            continue;
        }
        let target = to.join(name);
        if path.is_dir() {
            copy_dir(&path, &target, &[])?;
        } else {
            std::fs::copy(&path, &target).map_err(|e| TrainError::io(&path, e))?;
        }
    }
    Ok(())
}
