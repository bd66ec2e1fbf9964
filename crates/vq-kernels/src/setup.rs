//! Process-wide set-up a program opts into from its `main`, never done by a library behind
//! its user's back.

use std::io::Write;

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

/// The threads whose panics [`exit_on_panic`] turns into the end of the process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PanicExit {
    /// Every thread's: for programs that catch no panic, whose threads wait on each other
    /// (training's replicas and batch workers).
    AnyThread,
    /// Only those of threads a library started. The main thread and threads named `vq-…` are the
    /// program's: their panics are left to the hook set before (the program catches them where it
    /// runs them, and a scope resumes its threads' panics on its caller).
    LibraryThreads,
}

/// Ends the process with one line `error: internal error (a bug, please report it): …` on stderr
/// and exit status 1 when a thread of `threads` panics.
///
/// Why: a library's background thread has someone waiting on it. wgpu's OpenGL back end, for one,
/// panics on CubeCL's polling thread when another OpenGL call holds the context for more than
/// 6 s (Mesa's software rasteriser on a loaded machine); the computation that waits for that poll
/// then never returns, and without this hook the process hangs. The process ends without running
/// the C library's exit handlers, which could wait on the same lock. Call it once in `main`,
/// after setting any hook of the program's own.
pub fn exit_on_panic(threads: PanicExit) {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let thread = std::thread::current();
        let name = thread.name().unwrap_or("");
        if threads == PanicExit::LibraryThreads && (name == "main" || name.starts_with("vq-")) {
            return previous(info);
        }
        let message = panic_message(info.payload());
        let place = info.location().map(|l| format!(" (at {}:{})", l.file(), l.line())).unwrap_or_default();
        let message = message.split_whitespace().collect::<Vec<_>>().join(" ");
        let _ = writeln!(std::io::stderr(), "error: internal error (a bug, please report it): {message}{place}");
        end_process(1);
    }));
}

/// A panic's message (panics carry a `&str` or a `String`), for programs that report panics they
/// catch.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

/// Ends the process at once with `code`, without the C library's exit handlers where it can
/// (standard output writes whole lines as they come, so nothing printed is lost).
fn end_process(code: u8) -> ! {
    #[cfg(unix)]
    // SAFETY: `_exit` ends the process; nothing runs after it.
    unsafe {
        libc::_exit(code.into())
    }
    #[cfg(not(unix))]
    std::process::exit(code.into())
}

/// burn's default wgpu device on the platform's own graphics API (Vulkan on Linux and Windows,
/// Metal on macOS). Call it once, before the device's first tensor (burn keeps a device's set-up
/// for the process).
///
/// # Errors
///
/// When no adapter of that API answers (no driver) — asked before burn's set-up, which panics in
/// that case.
#[cfg(feature = "wgpu")]
pub fn wgpu_device() -> Result<burn_wgpu::WgpuDevice, String> {
    wgpu_device_on::<burn_wgpu::graphics::AutoGraphicsApi>()
}

/// burn's default wgpu device, set up on OpenGL / OpenGL ES instead of its default graphics API:
/// for machines without a Vulkan driver, down to Mesa's software rasteriser on a CPU-only machine.
/// Call it once, before the device's first tensor.
///
/// # Errors
///
/// When no OpenGL adapter answers (no driver, no display or EGL platform).
#[cfg(feature = "wgpu")]
pub fn wgpu_opengl_device() -> Result<burn_wgpu::WgpuDevice, String> {
    wgpu_device_on::<burn_wgpu::graphics::OpenGl>()
}

/// burn's default wgpu device set up on the graphics API `G`, once an adapter of `G` answered.
#[cfg(feature = "wgpu")]
fn wgpu_device_on<G: burn_wgpu::graphics::GraphicsApi>() -> Result<burn_wgpu::WgpuDevice, String> {
    let backend = G::backend();
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
        backends: backend.into(),
        ..wgpu::InstanceDescriptor::new_without_display_handle()
    });
    let adapter = futures_lite::future::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
        power_preference: wgpu::PowerPreference::HighPerformance,
        force_fallback_adapter: false,
        compatible_surface: None,
    }));
    adapter.map_err(|error| format!("wgpu found no {} adapter ({error})", backend.to_str()))?;
    let device = burn_wgpu::WgpuDevice::DefaultDevice;
    burn_wgpu::init_setup::<G>(&device, burn_wgpu::RuntimeOptions::default());
    Ok(device)
}
