use std::rc::Rc;

use burn::tensor::DType;
use burn_store::{ModuleAdapter, TensorSnapshot};

/// Casts every floating-point tensor to one dtype while loading.
///
/// burn-store keeps the file's dtype for loaded parameters; a model built for f32 (or f16)
/// must get f32 (or f16) parameters whatever precision the checkpoint was saved in.
#[derive(Debug, Clone)]
pub(crate) struct CastAdapter {
    pub(crate) target: DType,
}

impl ModuleAdapter for CastAdapter {
    fn adapt(&self, snapshot: &TensorSnapshot) -> TensorSnapshot {
        let is_float = matches!(snapshot.dtype, DType::F64 | DType::F32 | DType::F16 | DType::BF16);
        if !is_float || snapshot.dtype == self.target {
            return snapshot.clone();
        }
        let data_fn = snapshot.clone_data_fn();
        let target = self.target;
        TensorSnapshot::from_closure(
            Rc::new(move || Ok(data_fn()?.convert_dtype(target))),
            target,
            snapshot.shape.clone(),
            snapshot.path_stack.clone().unwrap_or_default(),
            snapshot.container_stack.clone().unwrap_or_default(),
            snapshot.tensor_id.unwrap_or_default(),
        )
    }

    fn clone_box(&self) -> Box<dyn ModuleAdapter> {
        Box::new(self.clone())
    }
}
