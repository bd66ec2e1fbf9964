use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::tensor::{DType, TensorData};
use burn_store::{ModuleStore, PytorchStore, SafetensorsStore, TensorSnapshot};

use crate::WeightsError;

/// Every tensor of a checkpoint file, by checkpoint key, read lazily.
pub(crate) fn read_snapshots(path: &Path) -> Result<BTreeMap<String, TensorSnapshot>, WeightsError> {
    std::fs::metadata(path).map_err(|source| WeightsError::Io { path: path.into(), source })?;
    let format = |message: String| WeightsError::Format { path: path.into(), message };
    if is_safetensors(path) {
        // Keys are taken verbatim: diffusers lists such as `ff.net.{0,2}` keep their gaps.
        let mut store = SafetensorsStore::from_file(path).map_indices_contiguous(false);
        store.get_all_snapshots().cloned().map_err(|e| format(e.to_string()))
    } else {
        let mut store = PytorchStore::from_file(path).map_indices_contiguous(false);
        store.get_all_snapshots().cloned().map_err(|e| format(e.to_string()))
    }
}

fn is_safetensors(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "safetensors")
}

/// The checkpoint keys of a safetensors or PyTorch file, sorted.
pub fn tensor_names(path: &Path) -> Result<Vec<String>, WeightsError> {
    Ok(read_snapshots(path)?.into_keys().collect())
}

/// Reads every tensor of a checkpoint file, by checkpoint key (sorted), in the dtype stored.
pub fn read_all_tensors(path: &Path) -> Result<Vec<(String, TensorData)>, WeightsError> {
    read_snapshots(path)?
        .into_iter()
        .map(|(name, snapshot)| {
            let data = snapshot.to_data().map_err(|e| WeightsError::Format {
                path: path.into(),
                message: format!("tensor `{name}`: {e:?}"),
            })?;
            Ok((name, data))
        })
        .collect()
}

/// Reads one tensor of a checkpoint file as [`TensorData`]: floating-point tensors as f32,
/// integer and boolean tensors as i64 (the two types reference fixtures use).
pub fn read_tensor(path: &Path, name: &str) -> Result<TensorData, WeightsError> {
    let snapshots = read_snapshots(path)?;
    let snapshot = snapshots
        .get(name)
        .ok_or_else(|| WeightsError::NoTensor { path: path.into(), name: name.into() })?;
    let data = snapshot
        .to_data()
        .map_err(|e| WeightsError::Format { path: path.into(), message: format!("tensor `{name}`: {e:?}") })?;
    let target = if data.dtype.is_float() { DType::F32 } else { DType::I64 };
    Ok(if data.dtype == target { data } else { data.convert_dtype(target) })
}

/// Finds the weights file of a component folder, as diffusers and transformers name them.
///
/// `stem` is `"diffusion_pytorch_model"` (diffusers models) or `"model"` (transformers models,
/// whose pickles are called `pytorch_model.bin`). With `variant = Some("fp16")` the files
/// `<stem>.fp16.safetensors` / `<…>.fp16.bin` are looked for. Safetensors is preferred.
pub fn find_weights_file(dir: &Path, stem: &str, variant: Option<&str>) -> Result<PathBuf, WeightsError> {
    let bin_stem = if stem == "model" { "pytorch_model" } else { stem };
    let infix = variant.map(|v| format!(".{v}")).unwrap_or_default();
    let candidates = [format!("{stem}{infix}.safetensors"), format!("{bin_stem}{infix}.bin")];
    candidates
        .iter()
        .map(|name| dir.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| WeightsError::NotFound { dir: dir.into(), candidates: candidates.to_vec() })
}
