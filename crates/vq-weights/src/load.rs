use std::collections::HashMap;
use std::io::{Read, Seek};
use std::path::Path;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::backend::Backend;
use burn::tensor::{Bool, DType, Int, Tensor, TensorData};

use crate::checkpoint::{Checkpoint, TensorInfo};
use crate::decode::{first_non_finite, is_float_target, tensor_data, transpose_2d};
use crate::files::open_checkpoint;
use crate::{KeyMap, WeightsError};

/// Loads every parameter of `module` from a checkpoint file, strictly.
///
/// `key_map` turns checkpoint keys into module paths; floats are cast to `dtype`. Fails when
/// the file is unreadable or malformed, when a parameter is missing, misshapen, not a float
/// tensor, or not finite, when two keys map to one parameter, or when a checkpoint key maps to
/// no parameter. Shapes in errors are given in the checkpoint's layout.
///
/// Every tensor's dtype and shape is checked against the module before any value is read;
/// the values are then read one parameter at a time (the file is never held in memory whole).
pub fn load_module<B: Backend, M: Module<B>>(
    module: M,
    path: &Path,
    key_map: &KeyMap,
    dtype: DType,
) -> Result<M, WeightsError> {
    if !is_float_target(dtype) {
        return Err(WeightsError::Unsupported {
            parameter: format!("{dtype:?}"),
            reason: "parameters can be cast to F64, F32, Flex32, F16 or BF16 only".into(),
        });
    }
    let keys = key_map.compile()?;
    let mut checkpoint = open_checkpoint(path)?;

    let mut params = ParamCollector::default();
    module.visit(&mut params);
    if let Some(parameter) = params.non_float.first() {
        return Err(WeightsError::Unsupported {
            parameter: parameter.clone(),
            reason: "it is an integer or boolean tensor; only float parameters are loaded".into(),
        });
    }
    let plan = plan(path, &checkpoint, &keys, &params.float)?;

    let mut loader = Loader { path, checkpoint: &mut checkpoint, plan, dtype, stack: Vec::new(), error: None };
    let module = module.map(&mut loader);
    match loader.error {
        Some(error) => Err(error),
        None => Ok(module),
    }
}

/// A float parameter of the module.
struct ParamSlot {
    /// Shape in the checkpoint's layout (a Linear weight reversed).
    file_shape: Vec<usize>,
    /// Whether the checkpoint stores it transposed (a PyTorch Linear weight `[out, in]`).
    transposed: bool,
    /// Whether it is a norm's `gamma`/`beta`, which checkpoints call `weight`/`bias`.
    norm: bool,
}

/// Which checkpoint tensor fills each parameter: module path → (position in the checkpoint,
/// whether it is stored transposed).
///
/// Checks, before anything is read: every tensor maps to one parameter (norm `weight`/`bias`
/// fill `gamma`/`beta`), no parameter is filled twice, every parameter is filled by a float
/// tensor of its shape.
fn plan<R>(
    path: &Path,
    checkpoint: &Checkpoint<R>,
    keys: &crate::keymap::CompiledKeyMap,
    params: &HashMap<String, ParamSlot>,
) -> Result<HashMap<String, (usize, bool)>, WeightsError> {
    let mut plan: HashMap<String, usize> = HashMap::new();
    let mut unexpected = Vec::new();
    let tensors = checkpoint.tensors();
    for (index, tensor) in tensors.iter().enumerate() {
        let Some(module_path) = keys.map(&tensor.key) else { continue };
        let Some(target) = resolve(&module_path, params) else {
            unexpected.push(tensor.key.clone());
            continue;
        };
        if let Some(&other) = plan.get(&target) {
            return Err(WeightsError::Duplicate {
                path: path.into(),
                parameter: target,
                first: tensors[other].key.clone(),
                second: tensor.key.clone(),
            });
        }
        plan.insert(target, index);
    }
    // Errors in the order a user fixes them: wrong tensors, then missing ones, then extras.
    let mut planned: Vec<(&String, &usize)> = plan.iter().collect();
    planned.sort();
    for (module_path, &index) in planned {
        check_tensor(path, &tensors[index], &params[module_path])?;
    }
    let mut missing: Vec<(String, Vec<usize>)> = params
        .iter()
        .filter(|(p, _)| !plan.contains_key(*p))
        .map(|(p, slot)| (p.clone(), slot.file_shape.clone()))
        .collect();
    if !missing.is_empty() {
        missing.sort();
        return Err(WeightsError::Missing { path: path.into(), missing });
    }
    if !unexpected.is_empty() {
        return Err(WeightsError::Unexpected { path: path.into(), keys: unexpected });
    }
    Ok(plan.into_iter().map(|(p, index)| (p.clone(), (index, params[&p].transposed))).collect())
}

/// The parameter a mapped key fills: the module path itself, or a norm's `gamma`/`beta` for
/// `weight`/`bias`.
fn resolve(module_path: &str, params: &HashMap<String, ParamSlot>) -> Option<String> {
    if params.contains_key(module_path) {
        return Some(module_path.to_string());
    }
    let alias = |from: &str, to: &str| module_path.strip_suffix(from).map(|p| format!("{p}{to}"));
    [alias("weight", "gamma"), alias("bias", "beta")]
        .into_iter()
        .flatten()
        .find(|p| params.get(p).is_some_and(|slot| slot.norm))
}

fn check_tensor(path: &Path, tensor: &TensorInfo, slot: &ParamSlot) -> Result<(), WeightsError> {
    if !tensor.dtype.is_float() {
        return Err(WeightsError::Dtype {
            path: path.into(),
            tensor: tensor.key.clone(),
            found: tensor.dtype.to_string(),
            expected: "a float type (F32, F16, BF16 or F64)".into(),
        });
    }
    if tensor.shape != slot.file_shape {
        return Err(WeightsError::Shape {
            path: path.into(),
            tensor: tensor.key.clone(),
            expected: slot.file_shape.clone(),
            found: tensor.shape.clone(),
        });
    }
    Ok(())
}

/// The module's parameters by path, read without materialising lazily initialised parameters
/// (a full-size model would otherwise be filled with random numbers only to be overwritten).
#[derive(Default)]
struct ParamCollector {
    path: Vec<String>,
    containers: Vec<String>,
    float: HashMap<String, ParamSlot>,
    non_float: Vec<String>,
}

impl<B: Backend> ModuleVisitor<B> for ParamCollector {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path.push(name.to_string());
        self.containers.push(container_type.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
        self.containers.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let container = self.containers.last().map(String::as_str);
        let name = self.path.last().map(String::as_str);
        let mut file_shape = param.lazy_shape().to_vec();
        let transposed = container == Some("Struct:Linear") && name == Some("weight") && D == 2;
        if transposed {
            file_shape.reverse();
        }
        let norm = matches!(container, Some("Struct:LayerNorm" | "Struct:GroupNorm" | "Struct:BatchNorm"))
            && matches!(name, Some("gamma" | "beta"));
        self.float.insert(self.path.join("."), ParamSlot { file_shape, transposed, norm });
    }

    fn visit_int<const D: usize>(&mut self, _param: &Param<Tensor<B, D, Int>>) {
        self.non_float.push(self.path.join("."));
    }

    fn visit_bool<const D: usize>(&mut self, _param: &Param<Tensor<B, D, Bool>>) {
        self.non_float.push(self.path.join("."));
    }
}

/// Replaces each planned parameter with the checkpoint's values; the first failure is kept and
/// the remaining parameters are left alone (the caller then drops the module).
struct Loader<'a, R> {
    path: &'a Path,
    checkpoint: &'a mut Checkpoint<R>,
    plan: HashMap<String, (usize, bool)>,
    dtype: DType,
    stack: Vec<String>,
    error: Option<WeightsError>,
}

impl<R: Read + Seek> Loader<'_, R> {
    /// The values of checkpoint tensor `index`: cast, checked finite, in burn's layout.
    fn values(&mut self, index: usize, transposed: bool) -> Result<TensorData, WeightsError> {
        let path = self.path;
        let bytes = self.checkpoint.read_bytes(index).map_err(|e| WeightsError::from_format(path, e))?;
        let tensor = &self.checkpoint.tensors()[index];
        let data = tensor_data(&bytes, tensor.dtype, tensor.shape.clone()).map_err(|message| WeightsError::Tensor {
            path: path.into(),
            tensor: tensor.key.clone(),
            message,
        })?;
        drop(bytes);
        // Checked as stored, then after a narrowing cast (an f32 beyond f16's range becomes inf).
        let non_finite = |data: &TensorData| {
            first_non_finite(data).map(|(index, value)| WeightsError::NonFinite {
                path: path.into(),
                tensor: tensor.key.clone(),
                index,
                value,
                dtype: format!("{:?}", data.dtype),
            })
        };
        if let Some(error) = non_finite(&data) {
            return Err(error);
        }
        let data = data.convert_dtype(self.dtype);
        if matches!(self.dtype, DType::F16 | DType::BF16) {
            if let Some(error) = non_finite(&data) {
                return Err(error);
            }
        }
        if !transposed {
            return Ok(data);
        }
        // [out, in] in the file → [in, out] in burn (`plan` checked that the tensor is 2-D).
        let (rows, cols) = (tensor.shape[0], tensor.shape[1]);
        let bytes = transpose_2d(data.as_bytes(), rows, cols, data.dtype.size());
        Ok(TensorData::from_bytes_vec(bytes, [cols, rows], data.dtype))
    }
}

impl<B: Backend, R: Read + Seek> ModuleMapper<B> for Loader<'_, R> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.stack.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.stack.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        if self.error.is_some() {
            return param;
        }
        let Some(&(index, transposed)) = self.plan.get(&self.stack.join(".")) else { return param };
        let device = param.lazy_device();
        // A backend panics on data of a type it cannot hold (NdArray and F16).
        if B::dtype_usage(&device, self.dtype).is_empty() {
            self.error = Some(WeightsError::Unsupported {
                parameter: format!("{:?}", self.dtype),
                reason: format!("the backend cannot hold {:?} tensors", self.dtype),
            });
            return param;
        }
        match self.values(index, transposed) {
            Ok(data) => {
                let id = param.id;
                let tensor = Tensor::from_data(data, (&device, self.dtype));
                param.transform_for_load(tensor, id)
            }
            Err(error) => {
                self.error = Some(error);
                param
            }
        }
    }
}
