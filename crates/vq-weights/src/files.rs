use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use burn::tensor::{DType, TensorData};

use crate::checkpoint::{Checkpoint, Format};
use crate::decode::{first_non_finite, tensor_data};
use crate::input::open_regular_file;
use crate::WeightsError;

/// Opens a checkpoint file (format from the extension) and parses its index: a regular file
/// only, every tensor's declaration checked against the file's real length.
pub fn open_checkpoint(path: &Path) -> Result<Checkpoint<BufReader<File>>, WeightsError> {
    let (file, len) = open_regular_file(path).map_err(|source| WeightsError::Io { path: path.into(), source })?;
    Checkpoint::parse(BufReader::new(file), len, Format::of_path(path)).map_err(|e| WeightsError::from_format(path, e))
}

/// The checkpoint keys of a safetensors or PyTorch file, sorted.
pub fn tensor_names(path: &Path) -> Result<Vec<String>, WeightsError> {
    Ok(open_checkpoint(path)?.tensors().iter().map(|t| t.key.clone()).collect())
}

/// Reads every tensor of a checkpoint file, by checkpoint key (sorted), in the dtype stored.
pub fn read_all_tensors(path: &Path) -> Result<Vec<(String, TensorData)>, WeightsError> {
    let mut checkpoint = open_checkpoint(path)?;
    (0..checkpoint.tensors().len())
        .map(|index| {
            let data = read_data(path, &mut checkpoint, index)?;
            Ok((checkpoint.tensors()[index].key.clone(), data))
        })
        .collect()
}

/// Reads one tensor of a checkpoint file as [`TensorData`]: floating-point tensors as f32,
/// integer and boolean tensors as i64 (the two types reference fixtures use).
pub fn read_tensor(path: &Path, name: &str) -> Result<TensorData, WeightsError> {
    let mut checkpoint = open_checkpoint(path)?;
    let index =
        checkpoint.position(name).ok_or_else(|| WeightsError::NoTensor { path: path.into(), name: name.into() })?;
    let data = read_data(path, &mut checkpoint, index)?;
    let target = if data.dtype.is_float() { DType::F32 } else { DType::I64 };
    Ok(if data.dtype == target { data } else { data.convert_dtype(target) })
}

/// Reads one float tensor as an f32 parameter, as strictly as [`load_module`](crate::load_module)
/// fills a module: the tensor must exist, have a float dtype and `shape` (checked before its
/// data is read), and hold only finite values.
pub fn read_parameter(path: &Path, name: &str, shape: &[usize]) -> Result<TensorData, WeightsError> {
    let mut checkpoint = open_checkpoint(path)?;
    let index =
        checkpoint.position(name).ok_or_else(|| WeightsError::NoTensor { path: path.into(), name: name.into() })?;
    let tensor = &checkpoint.tensors()[index];
    if !tensor.dtype.is_float() {
        return Err(WeightsError::Dtype {
            path: path.into(),
            tensor: name.into(),
            found: tensor.dtype.to_string(),
            expected: "a float type (F32, F16, BF16 or F64)".into(),
        });
    }
    if tensor.shape != shape {
        return Err(WeightsError::Shape {
            path: path.into(),
            tensor: name.into(),
            expected: shape.to_vec(),
            found: tensor.shape.clone(),
        });
    }
    let data = read_data(path, &mut checkpoint, index)?;
    if let Some((index, value)) = first_non_finite(&data) {
        let dtype = format!("{:?}", data.dtype);
        return Err(WeightsError::NonFinite { path: path.into(), tensor: name.into(), index, value, dtype });
    }
    Ok(data.convert_dtype(DType::F32))
}

fn read_data(
    path: &Path,
    checkpoint: &mut Checkpoint<BufReader<File>>,
    index: usize,
) -> Result<TensorData, WeightsError> {
    let bytes = checkpoint.read_bytes(index).map_err(|e| WeightsError::from_format(path, e))?;
    let tensor = &checkpoint.tensors()[index];
    tensor_data(&bytes, tensor.dtype, tensor.shape.clone()).map_err(|message| WeightsError::Tensor {
        path: path.into(),
        tensor: tensor.key.clone(),
        message,
    })
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
