//! Data parallelism shared by both stages: the replicas' devices, and one piece of work per
//! replica, each in its own thread on its own device (several replicas on one GPU run on separate
//! CubeCL streams, one per thread). The stages split their batches with [`HostBatch::shards`]
//! (`crate::train::batches`) and sum the replicas' gradients on the main device.

use burn::module::Module;
use burn::tensor::backend::{Backend, Device, DeviceId, DeviceOps};

/// The devices of `indices` (of `main`'s device type); `main` alone when `indices` is empty.
pub fn replica_devices<B: Backend>(main: &B::Device, indices: &[u16]) -> Vec<B::Device> {
    match indices.is_empty() {
        true => vec![main.clone()],
        false => {
            let type_id = main.id().type_id;
            indices.iter().map(|&index| B::Device::from_id(DeviceId::new(type_id, index))).collect()
        }
    }
}

/// `work(i, replica)` for every device `i`, with `model` forked to that device, each in its own
/// thread; with one device, inline on `model` itself. Results come back in device order.
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
                .enumerate()
                .map(|(i, device)| {
                    let replica = model.clone().fork(device);
                    let work = &work;
                    scope.spawn(move || work(i, replica))
                })
                .collect();
            handles.into_iter().map(|handle| handle.join().expect("a replica's thread panicked")).collect()
        }),
    }
}

/// The error for a batch that does not split evenly across `indices`, if it does not.
pub fn check_split(batch_size: usize, indices: &[u16]) -> Result<(), String> {
    match batch_size.is_multiple_of(indices.len().max(1)) {
        true => Ok(()),
        false => Err(format!(
            "batch_size {batch_size} does not split evenly across the {} devices {indices:?}",
            indices.len()
        )),
    }
}
