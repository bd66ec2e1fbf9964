//! The wgpu backend on OpenGL / OpenGL ES instead of its default graphics API (Vulkan on Linux
//! and Windows, Metal on macOS): for machines without a Vulkan driver, down to Mesa's software
//! rasteriser (`llvmpipe`) on a CPU-only machine, where `xtask parity --backend wgpu-gl`
//! reproduces diffusers' tokens and 8-bit pixels on every fixture case (BENCHMARKS.md).

use std::panic::{catch_unwind, AssertUnwindSafe};

use burn_wgpu::graphics::OpenGl;
use burn_wgpu::{init_setup, RuntimeOptions, WgpuDevice};

use crate::PipelineError;

/// The default wgpu device, set up on OpenGL. Call it once, before the device's first tensor
/// (burn then keeps the setup for the process).
///
/// # Errors
/// [`PipelineError::Device`] if no OpenGL adapter answers (no driver, no display or EGL
/// platform). cubecl-wgpu 0.10 has no fallible setup — it panics then — so the panic is caught
/// here: a machine without OpenGL is a user's situation, not a bug.
pub fn wgpu_opengl_device() -> Result<WgpuDevice, PipelineError> {
    let device = WgpuDevice::DefaultDevice;
    catch_unwind(AssertUnwindSafe(|| init_setup::<OpenGl>(&device, RuntimeOptions::default()))).map_err(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        PipelineError::Device(format!("wgpu found no OpenGL adapter ({message})"))
    })?;
    Ok(device)
}
