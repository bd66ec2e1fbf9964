//! Data parallelism shared by both stages: the replicas' devices, and one piece of work per
//! replica, each in its own thread on its own device (several replicas on one GPU run on separate
//! CubeCL streams). The stages split their batches with [`HostBatch::shards`]
//! (`crate::train::batches`) and sum the replicas' gradients on the main device.

use burn::module::{AutodiffModule, Module, ModuleMapper, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::backend::{AutodiffBackend, Backend, Device, DeviceId, DeviceOps};
use burn::tensor::{BasicOps, StreamId, Tensor, TensorKind};

/// The devices of `indices` (of `main`'s device type) that share batches of `batch_size`;
/// `main` alone when `indices` is empty. Errors (naming the value) for an index the backend does
/// not have and for a batch that does not split evenly across the devices.
pub fn replica_devices<B: Backend>(
    main: &B::Device,
    indices: &[u16],
    batch_size: usize,
) -> Result<Vec<B::Device>, String> {
    if indices.is_empty() {
        return Ok(vec![main.clone()]);
    }
    let type_id = main.id().type_id;
    let available = B::device_count(type_id);
    if let Some(index) = indices.iter().find(|&&index| usize::from(index) >= available) {
        return Err(format!(
            "device index {index} in {indices:?}: the backend has {available} device(s), 0..{available}"
        ));
    }
    if !batch_size.is_multiple_of(indices.len()) {
        return Err(format!(
            "batch_size {batch_size} does not split evenly across the {} devices {indices:?}",
            indices.len()
        ));
    }
    Ok(indices.iter().map(|&index| B::Device::from_id(DeviceId::new(type_id, index))).collect())
}

/// `work(i, replica)` for every device `i`, with `model` forked to that device, each in its own
/// thread; with one device, inline on `model` itself. Results come back in device order.
///
/// Each replica runs on the stream of [`replica_streams`], the same at every call. CubeCL keys its
/// streams — each with its own memory pool that keeps its pages — by thread, so fresh threads on
/// their own streams would leave a pool behind at every step: on four H100s that filled 80 GB
/// within 20 steps.
///
/// Parameters must be initialised before the call: a lazily initialised parameter would be
/// drawn anew in each fork.
pub fn on_replicas<B, M, T, F>(model: &M, devices: &[B::Device], work: F) -> Vec<T>
where
    B: Backend,
    M: Module<B> + Send,
    T: Send,
    F: Fn(usize, M) -> T + Sync,
{
    match devices {
        [_] => vec![work(0, model.clone())],
        _ => std::thread::scope(|scope| {
            let handles: Vec<_> = devices
                .iter()
                .zip(replica_streams::<B>(devices))
                .enumerate()
                .map(|(i, (device, stream))| {
                    let replica = model.clone().map(&mut ForkViaHost { device });
                    let work = &work;
                    scope.spawn(move || stream.executes(|| work(i, replica)))
                })
                .collect();
            handles.into_iter().map(|handle| handle.join().expect("a replica's thread panicked")).collect()
        }),
    }
}

/// `tensor` on `device`: itself when it is there already, else [`host_copy`].
pub fn via_host<B: Backend, const D: usize, K>(tensor: Tensor<B, D, K>, device: &B::Device) -> Tensor<B, D, K>
where
    K: TensorKind<B> + BasicOps<B>,
{
    if tensor.device() == *device {
        tensor
    } else {
        host_copy(tensor, device)
    }
}

/// A copy of `tensor` on `device`, through host memory.
///
/// Why not `to_device`: between two GPUs, CubeCL 0.10 pairs a send on one device's server with a
/// receive on the other's (its collective path); with the replicas' threads moving gradients at
/// the same time, a three-GPU VQ-VAE run ended in `CUDA_ERROR_ILLEGAL_ADDRESS` at its 20th to 30th
/// step (BENCHMARKS.md). A step moves a few megabytes (the models' weights and
/// gradients), which the host copies in milliseconds.
pub fn host_copy<B: Backend, const D: usize, K>(tensor: Tensor<B, D, K>, device: &B::Device) -> Tensor<B, D, K>
where
    K: TensorKind<B> + BasicOps<B>,
{
    Tensor::from_data(tensor.into_data(), device)
}

/// `grads` of `model`'s parameters, moved to `device` with [`via_host`].
pub fn gradients_via_host<B: AutodiffBackend, M: AutodiffModule<B>>(
    mut grads: GradientsParams,
    model: &M,
    device: &B::Device,
) -> GradientsParams {
    model.visit(&mut GradientsViaHost { grads: &mut grads, device });
    grads
}

struct GradientsViaHost<'a, B: AutodiffBackend> {
    grads: &'a mut GradientsParams,
    device: &'a B::Device,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for GradientsViaHost<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if let Some(grad) = self.grads.remove::<B::InnerBackend, D>(param.id) {
            self.grads.register::<B::InnerBackend, D>(param.id, via_host(grad, self.device));
        }
    }
}

/// `Module::fork` with the parameters copied by [`host_copy`] (also to the same device: replicas
/// on one device then share no storage): same ids, detached, gradients required where the
/// original required them.
struct ForkViaHost<'a, B: Backend> {
    device: &'a B::Device,
}

impl<B: Backend> ModuleMapper<B> for ForkViaHost<'_, B> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        param.map(|tensor| {
            let require_grad = tensor.is_require_grad();
            let tensor = host_copy(tensor.detach(), self.device);
            if require_grad {
                tensor.require_grad()
            } else {
                tensor
            }
        })
    }
}

/// The stream each replica of `devices` runs on: the calling thread's stream, offset by the
/// replica's rank among the replicas on the same device — so replicas on different devices share
/// the caller's stream id (one memory pool per device, the caller's), and replicas on one device
/// get streams of their own, to run side by side.
pub fn replica_streams<B: Backend>(devices: &[B::Device]) -> Vec<StreamId> {
    let caller = StreamId::current().value;
    devices
        .iter()
        .enumerate()
        .map(|(i, device)| {
            let rank = devices[..i].iter().filter(|other| *other == device).count() as u64;
            StreamId { value: caller + rank }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use burn::backend::NdArray;

    use super::*;

    #[test]
    fn replica_devices_name_what_is_wrong() {
        let main = Default::default();
        assert_eq!(replica_devices::<NdArray>(&main, &[], 7).unwrap().len(), 1);
        assert_eq!(replica_devices::<NdArray>(&main, &[0, 0], 8).unwrap().len(), 2);
        // The CPU backend has one device.
        let error = replica_devices::<NdArray>(&main, &[0, 1], 8).unwrap_err();
        assert_eq!(error, "device index 1 in [0, 1]: the backend has 1 device(s), 0..1");
        let error = replica_devices::<NdArray>(&main, &[0, 0], 9).unwrap_err();
        assert_eq!(error, "batch_size 9 does not split evenly across the 2 devices [0, 0]");
    }

    #[test]
    fn a_replica_forked_through_host_memory_keeps_ids_values_and_gradient_tracking() {
        type A = burn::backend::Autodiff<NdArray>;
        let device = Default::default();
        let model = burn::nn::LinearConfig::new(3, 2).init::<A>(&device);
        // Materialise the lazily initialised parameters (as the training loops do before forking).
        let (_, _) = (model.weight.val(), model.bias.as_ref().map(Param::val));
        let replica = model.clone().map(&mut ForkViaHost { device: &device });
        assert_eq!(replica.weight.id, model.weight.id);
        assert_eq!(replica.weight.val().into_data(), model.weight.val().into_data());
        assert!(replica.weight.val().is_require_grad());

        let x = Tensor::<A, 2>::from_data([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], &device);
        let grads = GradientsParams::from_grads(replica.forward(x).sum().backward(), &replica);
        // d(sum)/dW[i][j] = Σ_rows x[row][i] = [5, 7, 9] for each output j.
        let moved = gradients_via_host(grads, &replica, &device);
        let weight_grad = moved.get::<NdArray, 2>(replica.weight.id).expect("weight gradient");
        weight_grad
            .into_data()
            .assert_eq(&burn::tensor::TensorData::from([[5.0f32, 5.0], [7.0, 7.0], [9.0, 9.0]]), false);
    }

    #[test]
    fn replicas_keep_their_streams_from_call_to_call() {
        let device = Default::default();
        let model = burn::nn::LinearConfig::new(2, 2).init::<NdArray>(&device);
        let devices = [device, device, device];
        let streams = || on_replicas(&model, &devices, |_, _| StreamId::current());
        let first = streams();
        // The first replica runs on the caller's stream, the others on streams of their own.
        let caller = StreamId::current();
        assert_eq!(first, vec![caller, StreamId { value: caller.value + 1 }, StreamId { value: caller.value + 2 }]);
        // Fresh threads at every call, the same streams (a new stream is a new memory pool).
        assert_eq!(streams(), first);
        assert_eq!(StreamId::current(), caller);
    }
}
