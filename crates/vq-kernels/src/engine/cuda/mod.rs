//! The transformer engine of burn's CUDA backend: a [`Plan`] run with cuBLASLt products and
//! NVRTC-compiled kernels on a stream of its own, every forward one CUDA graph launch.
//!
//! burn's CUDA backend keeps its stream private, so the engine meets it at the boundaries only:
//! when it is built (weights and text read in place from burn's buffers after a device
//! synchronisation; nothing copied but the text) and around each forward (burn's stream
//! synchronised before the engine reads the ids, the engine's stream before the result is
//! handed back).

mod compile;
mod driver;
mod executor;
mod lt;

use std::any::{Any, TypeId};
use std::collections::BTreeMap;
use std::sync::Arc;

use burn::tensor::backend::Backend;
use burn::tensor::{DType, Int, IntDType, Shape, Tensor, TensorPrimitive};
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::tensor::CubeTensor;
use burn_cubecl::{BoolElement, CubeBackend, CubeRuntime, FloatElement, IntElement};
use cubecl::cuda::CudaRuntime;

use executor::CudaExecutor;

use super::description::{TransformerDescription, WeightTensor};
use super::plan::{Elem, Plan};
use super::{EngineError, StepTime, TransformerEngine};

/// `value` as type `To` when it is of that type (`From` and `To` the same type at run time).
fn cast<From: 'static, To: 'static>(value: From) -> Result<To, From> {
    let boxed: Box<dyn Any> = Box::new(value);
    boxed.downcast::<To>().map(|b| *b).map_err(|b| *b.downcast::<From>().expect("the value's own type"))
}

type Cube<R, F, I, BT> = CubeBackend<R, F, I, BT>;

/// The CUDA tensor of a float primitive, contiguous.
fn cuda_float<R: CubeRuntime>(tensor: CubeTensor<R>) -> Result<CubeTensor<CudaRuntime>, EngineError> {
    let tensor = if tensor.is_contiguous() { tensor } else { into_contiguous(tensor) };
    cast(tensor).map_err(|_| EngineError::Unavailable("not a CUDA tensor".into()))
}

/// The device address of a CUDA tensor's first element.
fn address(tensor: &CubeTensor<CudaRuntime>) -> Result<u64, EngineError> {
    let resource = tensor
        .client
        .get_resource(tensor.handle.clone())
        .map_err(|e| EngineError::Device(format!("reading a burn buffer's address: {e:?}")))?;
    Ok(resource.resource().ptr)
}

/// [`KernelBackend::transformer_engine`](crate::KernelBackend::transformer_engine) of a CubeCL
/// backend: the CUDA engine on the CUDA runtime, `None` on the others.
pub(crate) fn cube_engine<R: CubeRuntime, F: FloatElement, I: IntElement, BT: BoolElement>(
    description: &TransformerDescription<Cube<R, F, I, BT>>,
) -> Result<Option<Box<dyn TransformerEngine<Cube<R, F, I, BT>>>>, EngineError> {
    if TypeId::of::<R>() != TypeId::of::<CudaRuntime>() {
        return Ok(None);
    }
    let dtype = description.validate()?;
    let elem = Elem::of(dtype)
        .filter(|e| e.is_float())
        .ok_or_else(|| EngineError::Unavailable(format!("no CUDA engine for {dtype:?} weights")))?;
    let id_dtype = <I as burn::tensor::Element>::dtype();
    let ids = Elem::of(id_dtype)
        .filter(|e| matches!(e, Elem::I32 | Elem::I64))
        .ok_or_else(|| EngineError::Unavailable(format!("no CUDA engine for {id_dtype:?} ids")))?;
    let plan = Plan::new(&description.sizes, elem, ids)?;

    // Every weight and the text, contiguous and kept alive by the engine.
    let mut tensors = Vec::with_capacity(description.weights.len() + 1);
    let mut weights = BTreeMap::new();
    for (id, tensor) in description.weights.iter() {
        let primitive = match tensor {
            WeightTensor::Matrix(t) => t.clone().into_primitive().tensor(),
            WeightTensor::Vector(t) => t.clone().into_primitive().tensor(),
        };
        let tensor = cuda_float(primitive)?;
        weights.insert(*id, address(&tensor)?);
        tensors.push(tensor);
    }
    let text = cuda_float(description.text.clone().into_primitive().tensor())?;
    let text_address = address(&text)?;
    let device = text.device.clone();
    tensors.push(text);
    Cube::<R, F, I, BT>::sync(&description.text.device())
        .map_err(|e| EngineError::Device(format!("synchronising burn's CUDA stream: {e:?}")))?;
    let executor = CudaExecutor::new(plan, device.index, &weights, text_address)?;
    // The text is in the engine's own memory now; the weights stay in burn's.
    tensors.pop();
    Ok(Some(Box::new(CubeEngine::<R, F, I, BT> {
        executor: Arc::new(executor),
        _weights: tensors,
        id_dtype,
        _backend: std::marker::PhantomData,
    })))
}

/// The CUDA engine behind burn's unfused CubeCL backend type.
struct CubeEngine<R: CubeRuntime, F: FloatElement, I: IntElement, BT: BoolElement> {
    executor: Arc<CudaExecutor>,
    /// burn's weight tensors the executor reads in place.
    _weights: Vec<CubeTensor<CudaRuntime>>,
    id_dtype: DType,
    _backend: std::marker::PhantomData<fn() -> (R, F, I, BT)>,
}

impl<R: CubeRuntime, F: FloatElement, I: IntElement, BT: BoolElement> TransformerEngine<Cube<R, F, I, BT>>
    for CubeEngine<R, F, I, BT>
{
    fn forward(&self, latents: Tensor<Cube<R, F, I, BT>, 2, Int>, timesteps: &[usize]) -> Tensor<Cube<R, F, I, BT>, 3> {
        let sizes = &self.executor.plan().sizes;
        let (batch, pixels, classes) = (sizes.batch, sizes.pixels(), sizes.classes);
        assert_eq!(latents.dims(), [batch, pixels], "the engine was built for [batch, n] = [{batch}, {pixels}]");
        let latents = if latents.dtype() == self.id_dtype {
            latents
        } else {
            latents.cast(if self.id_dtype == DType::I64 { IntDType::I64 } else { IntDType::I32 })
        };
        let device = latents.device();
        let ids = latents.into_primitive();
        let ids = if ids.is_contiguous() { ids } else { into_contiguous(ids) };
        let ids: CubeTensor<CudaRuntime> = cast(ids).unwrap_or_else(|_| unreachable!("the engine exists on CUDA only"));
        let shape = Shape::new([batch, classes, pixels]);
        let out = ids.client.empty(shape.num_elements() * std::mem::size_of::<f32>());
        let out = CubeTensor::new_contiguous(ids.client.clone(), ids.device.clone(), shape, out, DType::F32);
        let run = || -> Result<(), EngineError> {
            let (ids_at, out_at) = (address(&ids)?, address(&out)?);
            Cube::<R, F, I, BT>::sync(&device)
                .map_err(|e| EngineError::Device(format!("synchronising burn's CUDA stream: {e:?}")))?;
            self.executor.forward(ids_at, timesteps, out_at)
        };
        if let Err(error) = run() {
            panic!("{error}");
        }
        let out: CubeTensor<R> = cast(out).unwrap_or_else(|_| unreachable!("the engine exists on CUDA only"));
        Tensor::from_primitive(TensorPrimitive::Float(out))
    }

    fn describe(&self) -> String {
        self.executor.report.clone()
    }

    fn profile(&self, repeats: usize) -> Option<Vec<StepTime>> {
        match self.executor.profile(repeats) {
            Ok(times) => Some(times),
            Err(error) => panic!("{error}"),
        }
    }
}
