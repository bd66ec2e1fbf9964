//! Process-wide set-up a program opts into from its `main`, never done by a library behind
//! its user's back.

/// Makes glibc's `malloc` keep freed memory for reuse: no `mmap` for large blocks and no trimming
/// of a heap's top below 2 GiB.
///
/// Why: a CPU forward allocates and frees buffers of tens of megabytes per layer (an ITHQ
/// feed-forward activation is 46 MB). glibc serves blocks above its mmap threshold with fresh
/// `mmap`s and returns them on `free`, so every such buffer is faulted in and zeroed by the
/// kernel again on each layer; kept, a forward is 10–20 % faster on a 2-core Xeon
/// (docs/performance.md). Memory the process freed stays counted in its resident size (up to its
/// peak). Call it once at the start of `main`, before other threads start. Does nothing on other
/// platforms and C libraries.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; called before other threads allocate.
    unsafe {
        libc::mallopt(libc::M_MMAP_MAX, 0);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
    }
}

/// burn's default wgpu device, set up on OpenGL / OpenGL ES instead of its default graphics API
/// (Vulkan on Linux and Windows, Metal on macOS): for machines without a Vulkan driver, down to
/// Mesa's software rasteriser on a CPU-only machine. Call it once, before the device's first
/// tensor (burn keeps a device's set-up for the process).
///
/// # Errors
///
/// When no OpenGL adapter answers (no driver, no display or EGL platform) — asked before burn's
/// set-up, which panics in that case.
#[cfg(feature = "wgpu")]
pub fn wgpu_opengl_device() -> Result<burn_wgpu::WgpuDevice, String> {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
        backends: wgpu::Backends::GL,
        ..wgpu::InstanceDescriptor::new_without_display_handle()
    });
    let adapter = futures_lite::future::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
        power_preference: wgpu::PowerPreference::HighPerformance,
        force_fallback_adapter: false,
        compatible_surface: None,
    }));
    adapter.map_err(|error| format!("wgpu found no OpenGL adapter ({error})"))?;
    let device = burn_wgpu::WgpuDevice::DefaultDevice;
    burn_wgpu::init_setup::<burn_wgpu::graphics::OpenGl>(&device, burn_wgpu::RuntimeOptions::default());
    Ok(device)
}
