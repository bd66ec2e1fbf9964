//! Data parallelism shared by both stages: the replicas' devices, and one piece of work per
//! replica, each in its own thread on its own device (several replicas on one GPU run on separate
//! CubeCL streams, one per thread). The stages split their batches with [`HostBatch::shards`]
//! (`crate::train::batches`) and sum the replicas' gradients on the main device.

use burn::module::Module;
use burn::tensor::backend::{Backend, Device, DeviceId, DeviceOps};

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
}
