use std::collections::{HashMap, HashSet};
use std::path::Path;

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::backend::Backend;
use burn::tensor::{DType, Tensor};
use burn_store::{ApplyError, ChainAdapter, ModuleSnapshot, PyTorchToBurnAdapter};

use crate::cast::CastAdapter;
use crate::files::read_snapshots;
use crate::{KeyMap, WeightsError};

/// Loads every parameter of `module` from a checkpoint file, strictly.
///
/// `key_map` turns checkpoint keys into module paths; floats are cast to `dtype`. Fails when
/// the file is unreadable, when a parameter is missing or misshapen, or when a checkpoint key
/// maps to no parameter. Shapes in errors are given in the checkpoint's layout.
pub fn load_module<B: Backend, M: Module<B>>(
    mut module: M,
    path: &Path,
    key_map: &KeyMap,
    dtype: DType,
) -> Result<M, WeightsError> {
    let keys = key_map.compile()?;
    let snapshots = read_snapshots(path)?;

    // Module path -> (checkpoint key, shape in the file).
    let mut origin = HashMap::new();
    let mut mapped = Vec::with_capacity(snapshots.len());
    for (key, mut snapshot) in snapshots {
        let Some(module_path) = keys.map(&key) else { continue };
        snapshot.path_stack = Some(module_path.split('.').map(str::to_string).collect());
        origin.insert(module_path, (key, snapshot.shape.to_vec()));
        mapped.push(snapshot);
    }

    // Module path -> shape the parameter needs, in the checkpoint's layout.
    let mut shapes = ParamShapes::default();
    module.visit(&mut shapes);
    let expected = shapes.shapes;

    let adapter = ChainAdapter::new(PyTorchToBurnAdapter, CastAdapter { target: dtype });
    let result = module.apply(mapped, None, Some(Box::new(adapter)), false);

    let path_buf = path.to_path_buf();
    if let Some(error) = result.errors.first() {
        return Err(match error {
            ApplyError::ShapeMismatch { path: module_path, .. } => {
                let (tensor, found) = lookup(&origin, module_path);
                let expected = expected.get(module_path).cloned().unwrap_or_default();
                WeightsError::Shape { path: path_buf, tensor, expected, found }
            }
            other => WeightsError::Format { path: path_buf, message: other.to_string() },
        });
    }
    if !result.missing.is_empty() {
        let missing = result
            .missing
            .iter()
            .map(|(p, _)| (p.clone(), expected.get(p).cloned().unwrap_or_default()))
            .collect();
        return Err(WeightsError::Missing { path: path_buf, missing });
    }
    // burn-store reports norm `weight`/`bias` as unused even when they filled `gamma`/`beta`.
    let applied: HashSet<&str> = result.applied.iter().map(String::as_str).collect();
    let filled_by_alias = |p: &str| {
        let alias = |from: &str, to: &str| p.strip_suffix(from).map(|s| format!("{s}{to}"));
        [alias("weight", "gamma"), alias("bias", "beta")].into_iter().flatten().any(|a| applied.contains(a.as_str()))
    };
    let unused: Vec<&String> = result.unused.iter().filter(|p| !filled_by_alias(p)).collect();
    if !unused.is_empty() {
        let keys = unused.iter().map(|p| lookup(&origin, p).0).collect();
        return Err(WeightsError::Unexpected { path: path_buf, keys });
    }
    Ok(module)
}

/// The checkpoint key and file shape behind a module path. Norm parameters are looked up by
/// their PyTorch names (`gamma` is stored as `weight`, `beta` as `bias`).
fn lookup(origin: &HashMap<String, (String, Vec<usize>)>, module_path: &str) -> (String, Vec<usize>) {
    let alternative = |from: &str, to: &str| module_path.strip_suffix(from).map(|p| format!("{p}{to}"));
    [Some(module_path.to_string()), alternative("gamma", "weight"), alternative("beta", "bias")]
        .into_iter()
        .flatten()
        .find_map(|p| origin.get(&p).cloned())
        .unwrap_or_else(|| (module_path.to_string(), Vec::new()))
}

/// The shape of every float parameter by module path, read without materialising lazily
/// initialised parameters (a full-size model would otherwise be filled with random numbers
/// only to be overwritten). Shapes are given in the checkpoint's layout: burn stores `Linear`
/// weights as `[in, out]`, checkpoints as `[out, in]`.
#[derive(Default)]
struct ParamShapes {
    path: Vec<String>,
    containers: Vec<String>,
    shapes: HashMap<String, Vec<usize>>,
}

impl<B: Backend> ModuleVisitor<B> for ParamShapes {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path.push(name.to_string());
        self.containers.push(container_type.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
        self.containers.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let mut dims = param.lazy_shape().to_vec();
        if self.containers.last().is_some_and(|c| c == "Struct:Linear") && dims.len() == 2 {
            dims.reverse();
        }
        self.shapes.insert(self.path.join("."), dims);
    }
}
