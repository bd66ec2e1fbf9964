//! burn's kernel-fusion wrapper `Fusion<B>` (the default `cuda` and `wgpu` backends).

use std::sync::Arc;

use burn::tensor::{DType, Int, Shape, Tensor, TensorPrimitive};
use burn_fusion::stream::{Operation, OperationStreams};
use burn_fusion::{Fusion, FusionBackend, FusionRuntime};
use burn_ir::{CustomOpIr, HandleContainer, OperationIr, OperationOutput, TensorIr};

use crate::engine::{StepTime, TransformerDescription, TransformerEngine};
use crate::{AttentionOptions, EngineError, KernelBackend};

impl<B: FusionBackend + KernelBackend> KernelBackend for Fusion<B> {
    /// Composed of tensor ops at this level, where the fusion merges the softmax's element-wise
    /// passes.
    fn multi_head_attention(
        q: Tensor<Self, 3>,
        k: Tensor<Self, 3>,
        v: Tensor<Self, 3>,
        options: AttentionOptions<Self>,
    ) -> Tensor<Self, 3> {
        super::cube::gpu_attention(q, k, v, options)
    }

    /// In f32, as without fusion.
    fn class_log_softmax(logits: Tensor<Self, 3>, dim: usize) -> Tensor<Self, 3> {
        super::cube::gpu_class_log_softmax(logits, dim)
    }

    /// The inner backend's engine, on the inner tensors, run as one custom operation of the
    /// fusion stream (burn's recipe for custom operations under fusion): the stream's
    /// operations before it are executed first, and its output is an ordinary fused tensor.
    fn transformer_engine(
        description: &TransformerDescription<Self>,
    ) -> Result<Option<Box<dyn TransformerEngine<Self>>>, EngineError> {
        let inner = TransformerDescription {
            sizes: description.sizes.clone(),
            weights: description.weights.clone().map(resolve::<B, 2>, resolve::<B, 1>),
            text: resolve(description.text.clone()),
        };
        let Some(engine) = B::transformer_engine(&inner)? else {
            return Ok(None);
        };
        let sizes = &description.sizes;
        let shape = [sizes.batch, sizes.classes, sizes.pixels()];
        Ok(Some(Box::new(FusedEngine { inner: Arc::from(engine), shape })))
    }
}

/// The inner backend's tensor of a fused one (its queued operations executed).
fn resolve<B: FusionBackend, const D: usize>(tensor: Tensor<Fusion<B>, D>) -> Tensor<B, D> {
    let fused = tensor.into_primitive().tensor();
    let client = fused.client.clone();
    Tensor::from_primitive(TensorPrimitive::Float(client.resolve_tensor_float::<B>(fused)))
}

/// An inner backend's engine behind `Fusion<B>`.
struct FusedEngine<B: KernelBackend> {
    inner: Arc<dyn TransformerEngine<B>>,
    /// The output's shape `[batch, K, n]`.
    shape: [usize; 3],
}

impl<B: FusionBackend + KernelBackend> TransformerEngine<Fusion<B>> for FusedEngine<B> {
    fn forward(&self, latents: Tensor<Fusion<B>, 2, Int>, timesteps: &[usize]) -> Tensor<Fusion<B>, 3> {
        let ids = latents.into_primitive();
        let client = ids.client.clone();
        let streams = OperationStreams::with_inputs([&ids]);
        let out = TensorIr::uninit(client.create_empty_handle(), Shape::new(self.shape), DType::F32);
        let desc = CustomOpIr::new("vq_transformer_engine", &[ids.into_ir()], &[out]);
        let op = EngineOp::<B> { desc: desc.clone(), engine: self.inner.clone(), timesteps: timesteps.to_vec() };
        let out = client.register(streams, OperationIr::Custom(desc), op).output();
        Tensor::from_primitive(TensorPrimitive::Float(out))
    }

    fn describe(&self) -> String {
        format!("{} (one custom operation of burn's fusion stream)", self.inner.describe())
    }

    fn profile(&self, repeats: usize) -> Option<Vec<StepTime>> {
        self.inner.profile(repeats)
    }
}

/// One engine forward as a fusion-stream operation.
struct EngineOp<B: KernelBackend> {
    desc: CustomOpIr,
    engine: Arc<dyn TransformerEngine<B>>,
    timesteps: Vec<usize>,
}

impl<B: KernelBackend> std::fmt::Debug for EngineOp<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineOp").field("desc", &self.desc).field("timesteps", &self.timesteps).finish()
    }
}

impl<B: FusionBackend + KernelBackend> Operation<B::FusionRuntime> for EngineOp<B> {
    fn execute(&self, handles: &mut HandleContainer<<B::FusionRuntime as FusionRuntime>::FusionHandle>) {
        let ([ids], [out]) = self.desc.as_fixed();
        let ids = Tensor::<B, 2, Int>::from_primitive(handles.get_int_tensor::<B>(ids));
        let log_p = self.engine.forward(ids, &self.timesteps);
        handles.register_float_tensor::<B>(&out.id, log_p.into_primitive().tensor());
    }
}
