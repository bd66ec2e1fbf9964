//! The wgpu backend on OpenGL / OpenGL ES instead of its default graphics API (Vulkan on Linux
//! and Windows, Metal on macOS): for machines without a Vulkan driver, down to Mesa's software
//! rasteriser (`llvmpipe`) on a CPU-only machine, where `xtask parity --backend wgpu-gl`
//! reproduces diffusers' tokens and 8-bit pixels on every fixture case (BENCHMARKS.md).

use burn_wgpu::graphics::OpenGl;
use burn_wgpu::{init_setup, RuntimeOptions, WgpuDevice};

/// The default wgpu device, set up on OpenGL. Call it once, before the device's first tensor
/// (burn then keeps the setup for the process).
///
/// # Panics
/// If no OpenGL adapter can be created (no driver, no display or EGL platform).
pub fn wgpu_opengl_device() -> WgpuDevice {
    let device = WgpuDevice::DefaultDevice;
    init_setup::<OpenGl>(&device, RuntimeOptions::default());
    device
}
