//! The engine's own CUDA objects: a stream on the device's primary context (the one burn's CUDA
//! backend uses), device allocations, and errors turned into [`EngineError`]s.

use std::sync::Arc;

use cudarc::driver::{result, sys, CudaContext, CudaStream};

use crate::engine::EngineError;

/// `Err(EngineError::Device)` naming what failed.
pub(super) fn device_error(what: impl std::fmt::Display, error: impl std::fmt::Debug) -> EngineError {
    EngineError::Device(format!("{what}: {error:?}"))
}

/// The device's primary context and a stream of the engine's own.
pub(super) struct Device {
    pub(super) context: Arc<CudaContext>,
    pub(super) stream: Arc<CudaStream>,
}

impl Device {
    /// The primary context of device `ordinal` (shared with burn's CUDA backend) and a new
    /// non-blocking stream on it.
    pub(super) fn new(ordinal: usize) -> Result<Self, EngineError> {
        let context = CudaContext::new(ordinal).map_err(|e| device_error(format!("CUDA device {ordinal}"), e))?;
        // The engine synchronises its stream itself; cudarc's per-allocation events would make
        // a stream capture fail.
        // SAFETY: this context object is the engine's own; no cudarc allocation of it is in use.
        unsafe { context.disable_event_tracking() };
        let stream = context.new_stream().map_err(|e| device_error("creating a CUDA stream", e))?;
        Ok(Self { context, stream })
    }

    /// Makes the context current on the calling thread.
    pub(super) fn bind(&self) -> Result<(), EngineError> {
        self.context.bind_to_thread().map_err(|e| device_error("binding the CUDA context", e))
    }

    /// The raw stream.
    pub(super) fn cu_stream(&self) -> sys::CUstream {
        self.stream.cu_stream()
    }

    /// Waits for everything queued on the engine's stream.
    pub(super) fn synchronize(&self) -> Result<(), EngineError> {
        self.stream.synchronize().map_err(|e| device_error("CUDA stream", e))
    }

    /// (major, minor) compute capability.
    pub(super) fn compute_capability(&self) -> Result<(i32, i32), EngineError> {
        self.context.compute_capability().map_err(|e| device_error("compute capability", e))
    }
}

/// A device allocation, freed on drop.
pub(super) struct DeviceBuffer {
    pub(super) ptr: sys::CUdeviceptr,
}

impl DeviceBuffer {
    /// `bytes` (at least one) of device memory; the context must be current.
    pub(super) fn new(bytes: usize, what: &str) -> Result<Self, EngineError> {
        // SAFETY: a plain allocation; the memory is only used through this buffer's pointer.
        let ptr = unsafe { result::malloc_sync(bytes.max(1)) }
            .map_err(|e| device_error(format!("allocating {bytes} bytes for the {what}"), e))?;
        Ok(Self { ptr })
    }
}

impl Drop for DeviceBuffer {
    fn drop(&mut self) {
        // SAFETY: `ptr` came from `malloc_sync` and is freed once; the engine synchronises its
        // stream before dropping its buffers.
        let _ = unsafe { result::free_sync(self.ptr) };
    }
}

/// The largest power of two (up to 256) dividing every address of `ptrs`.
pub(super) fn alignment(ptrs: impl IntoIterator<Item = u64>) -> u32 {
    ptrs.into_iter().map(|p| 1u32 << p.trailing_zeros().min(8)).min().unwrap_or(256)
}
