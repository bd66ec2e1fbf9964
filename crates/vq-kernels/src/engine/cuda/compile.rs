//! The kernels compiled by NVRTC for the device's architecture, cached on disk as CUBIN so that
//! a second process loads them without starting NVRTC.
//!
//! The cache folder is `$VQ_KERNEL_CACHE` when set (empty: no cache), else
//! `$XDG_CACHE_HOME/vq-diffusion-rs/kernels`, else `~/.cache/vq-diffusion-rs/kernels`. A file is
//! named after a hash of the source, the storage types and the architecture; a file that fails to
//! load is compiled again and replaced.

use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::path::PathBuf;
use std::time::Instant;

use cudarc::driver::{result, sys};
use cudarc::nvrtc;

use super::driver::device_error;
use crate::engine::launch::{KERNELS, SOURCE};
use crate::engine::plan::Elem;
use crate::engine::EngineError;

/// The loaded module and its functions.
pub(super) struct Kernels {
    module: sys::CUmodule,
    functions: HashMap<&'static str, sys::CUfunction>,
    /// How they were obtained, for [`describe`](crate::TransformerEngine::describe).
    pub(super) report: String,
}

// SAFETY: CUDA modules and functions are context-level handles, usable from any thread on which
// the context is current.
unsafe impl Send for Kernels {}
unsafe impl Sync for Kernels {}

impl Kernels {
    /// The function `name`.
    pub(super) fn function(&self, name: &str) -> Result<sys::CUfunction, EngineError> {
        self.functions.get(name).copied().ok_or_else(|| EngineError::Plan(format!("no CUDA kernel `{name}`")))
    }

    /// Loads the kernels for storage types `elem` / `ids` on a device of compute capability
    /// `arch`, from the cache or compiled now. The context must be current.
    pub(super) fn load(elem: Elem, ids: Elem, arch: (i32, i32)) -> Result<Self, EngineError> {
        let defines =
            format!("#define VQ_ELEM_{}\n#define VQ_ID_{}\n", elem.name().to_uppercase(), ids.name().to_uppercase());
        let source = format!("{defines}{SOURCE}");
        let target = format!("sm_{}{}", arch.0, arch.1);
        let name = format!("kernels-{:016x}-{target}.cubin", fnv1a(&[source.as_bytes(), target.as_bytes()]));
        let cached = cache_dir().map(|dir| dir.join(&name));
        let start = Instant::now();
        if let Some(path) = &cached {
            if let Ok(image) = std::fs::read(path) {
                if let Ok(kernels) = Self::from_image(&image, format!("kernels from {}", path.display())) {
                    return Ok(kernels);
                }
            }
        }
        let image = compile(&source, &target)?;
        let seconds = start.elapsed().as_secs_f64();
        let stored = cached.as_ref().and_then(|path| store(path, &image).ok().map(|()| path));
        let report = match stored {
            Some(path) => format!("kernels compiled by NVRTC in {seconds:.2} s, cached in {}", path.display()),
            None => format!("kernels compiled by NVRTC in {seconds:.2} s (not cached)"),
        };
        Self::from_image(&image, report)
    }

    fn from_image(image: &[u8], report: String) -> Result<Self, EngineError> {
        // cuModuleLoadData reads a CUBIN from its ELF header; keep a terminating zero anyway.
        let mut image = image.to_vec();
        image.push(0);
        // SAFETY: `image` is a CUBIN produced by NVRTC (or a cache file, which the driver
        // validates: a corrupt one fails here).
        let module = unsafe { result::module::load_data(image.as_ptr() as *const _) }
            .map_err(|e| device_error("loading the engine's kernels", e))?;
        let mut functions = HashMap::new();
        for name in KERNELS {
            let c_name = CString::new(name).expect("kernel names have no NUL");
            // SAFETY: `module` was just loaded.
            let function = unsafe { result::module::get_function(module, c_name) }
                .map_err(|e| device_error(format!("kernel `{name}`"), e))?;
            functions.insert(name, function);
        }
        Ok(Self { module, functions, report })
    }
}

impl Drop for Kernels {
    fn drop(&mut self) {
        // SAFETY: the module is unloaded once, after the engine's last launch (it synchronises
        // before dropping).
        let _ = unsafe { result::module::unload(self.module) };
    }
}

/// NVRTC: `source` to a CUBIN for `target` (`sm_90`).
fn compile(source: &str, target: &str) -> Result<Vec<u8>, EngineError> {
    // SAFETY: only tries to open the library (cudarc panics on a call into a missing one).
    if !unsafe { nvrtc::sys::is_culib_present() } {
        return Err(EngineError::Unavailable(
            "NVRTC (libnvrtc.so) was not found: add its folder to LD_LIBRARY_PATH".into(),
        ));
    }
    let nvrtc_error = |what: &str, e: &dyn std::fmt::Debug| EngineError::Device(format!("NVRTC {what}: {e:?}"));
    let c_source = CString::new(source).expect("the kernel source has no NUL");
    let program = nvrtc::result::create_program(c_source.as_c_str(), None).map_err(|e| nvrtc_error("program", &e))?;
    let options = [format!("--gpu-architecture={target}"), "--std=c++17".to_string()];
    // SAFETY: `program` is live until destroyed below; the options are NUL-free strings.
    let compiled = unsafe { nvrtc::result::compile_program(program, &options) };
    let result = match compiled {
        Ok(()) => cubin(program).map_err(|e| nvrtc_error("CUBIN", &e)),
        Err(e) => {
            // SAFETY: as above.
            let log = unsafe { nvrtc::result::get_program_log(program) }
                .map(|raw| unsafe { CStr::from_ptr(raw.as_ptr()) }.to_string_lossy().into_owned())
                .unwrap_or_default();
            Err(EngineError::Device(format!("NVRTC could not compile the engine's kernels ({e:?}):\n{log}")))
        }
    };
    // SAFETY: destroyed once.
    let _ = unsafe { nvrtc::result::destroy_program(program) };
    result
}

/// The CUBIN of a compiled program.
fn cubin(program: nvrtc::sys::nvrtcProgram) -> Result<Vec<u8>, nvrtc::result::NvrtcError> {
    let mut size = 0usize;
    // SAFETY: `program` compiled for a real architecture, so it has a CUBIN of `size` bytes.
    unsafe {
        nvrtc::sys::nvrtcGetCUBINSize(program, &mut size).result()?;
        let mut image = vec![0u8; size];
        nvrtc::sys::nvrtcGetCUBIN(program, image.as_mut_ptr() as *mut _).result()?;
        Ok(image)
    }
}

/// The cache folder (see the module documentation), or `None` for no cache.
fn cache_dir() -> Option<PathBuf> {
    match std::env::var_os("VQ_KERNEL_CACHE") {
        Some(dir) if dir.is_empty() => None,
        Some(dir) => Some(PathBuf::from(dir)),
        None => {
            let base = std::env::var_os("XDG_CACHE_HOME")
                .filter(|d| !d.is_empty())
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))?;
            Some(base.join("vq-diffusion-rs").join("kernels"))
        }
    }
}

/// Writes `image` to `path` whole or not at all (a temporary file renamed into place).
fn store(path: &std::path::Path, image: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().expect("cache files are in a folder");
    std::fs::create_dir_all(dir)?;
    let temporary = dir.join(format!(".{}.{}", path.file_name().unwrap().to_string_lossy(), std::process::id()));
    std::fs::write(&temporary, image)?;
    std::fs::rename(&temporary, path)
}

/// 64-bit FNV-1a of the parts, in order: a hash that does not change between Rust versions.
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for byte in parts.iter().flat_map(|part| part.iter().chain(&[0xFF])) {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The source compiles with NVRTC, headers-free, for every storage type on Hopper and Ampere.
    /// Needs NVRTC (no GPU): `LD_LIBRARY_PATH=<dir of libnvrtc.so.13> cargo test -p vq-kernels
    /// --features cuda-engine -- --ignored nvrtc` (NVRTC comes with the CUDA toolkit and as the
    /// `nvidia-cuda-nvrtc` wheel).
    #[test]
    #[ignore]
    fn the_kernels_compile_with_nvrtc() {
        for elem in [Elem::F32, Elem::F16, Elem::BF16] {
            for ids in [Elem::I32, Elem::I64] {
                let source = format!(
                    "#define VQ_ELEM_{}\n#define VQ_ID_{}\n{SOURCE}",
                    elem.name().to_uppercase(),
                    ids.name().to_uppercase()
                );
                for target in ["sm_90", "sm_80"] {
                    let image = compile(&source, target)
                        .unwrap_or_else(|e| panic!("{} {} {target}: {e}", elem.name(), ids.name()));
                    // An ELF image.
                    assert_eq!(&image[..4], b"\x7fELF", "{} {} {target}", elem.name(), ids.name());
                }
            }
        }
    }

    #[test]
    fn cache_names_change_with_the_source_and_the_target() {
        let a = fnv1a(&[b"source", b"sm_90"]);
        assert_ne!(a, fnv1a(&[b"source", b"sm_80"]));
        assert_ne!(a, fnv1a(&[b"sourc", b"esm_90"]), "parts are delimited");
        assert_eq!(a, fnv1a(&[b"source", b"sm_90"]));
    }
}
