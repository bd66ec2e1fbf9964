//! `--backend`: one monomorphised run per backend compiled in (cargo features of vq-cli).

use vq_kernels::KernelBackend;

use crate::args::{BackendKind, GenerateArgs, ServeArgs};
use crate::error::CliError;

#[cfg(not(any(feature = "ndarray", feature = "flex", feature = "wgpu", feature = "cuda")))]
compile_error!("vq-cli needs at least one backend feature: ndarray, flex, wgpu or cuda");

/// A subcommand that runs on any backend.
pub trait OnBackend {
    /// Runs on `device` of backend `B`.
    fn run<B: KernelBackend>(&self, device: B::Device) -> Result<(), CliError>;
}

impl OnBackend for GenerateArgs {
    fn run<B: KernelBackend>(&self, device: B::Device) -> Result<(), CliError> {
        crate::generate::run::<B>(device, self)
    }
}

impl OnBackend for ServeArgs {
    fn run<B: KernelBackend>(&self, device: B::Device) -> Result<(), CliError> {
        crate::serve::run::<B>(device, self)
    }
}

/// Runs `command` on `backend`, or says that backend is not compiled in.
pub fn dispatch(backend: BackendKind, command: &impl OnBackend) -> Result<(), CliError> {
    match backend {
        #[cfg(feature = "ndarray")]
        BackendKind::Ndarray => command.run::<burn::backend::NdArray>(Default::default()),
        #[cfg(feature = "flex")]
        BackendKind::Flex => command.run::<burn::backend::Flex>(Default::default()),
        #[cfg(feature = "wgpu")]
        BackendKind::Wgpu => command.run::<burn::backend::Wgpu>(Default::default()),
        #[cfg(feature = "wgpu")]
        BackendKind::WgpuGl => {
            let device =
                vq_kernels::setup::wgpu_opengl_device().map_err(|e| CliError::Failure(format!("device: {e}")))?;
            command.run::<burn::backend::Wgpu>(device)
        }
        #[cfg(feature = "cuda")]
        BackendKind::Cuda => command.run::<burn::backend::Cuda>(Default::default()),
        #[allow(unreachable_patterns)] // every backend compiled in
        other => Err(not_compiled_in(other)),
    }
}

/// The backends of this build.
pub fn compiled_in() -> Vec<&'static str> {
    [
        (cfg!(feature = "ndarray"), "ndarray"),
        (cfg!(feature = "flex"), "flex"),
        (cfg!(feature = "wgpu"), "wgpu"),
        (cfg!(feature = "wgpu"), "wgpu-gl"),
        (cfg!(feature = "cuda"), "cuda"),
    ]
    .into_iter()
    .filter_map(|(on, name)| on.then_some(name))
    .collect()
}

fn not_compiled_in(backend: BackendKind) -> CliError {
    let feature = match backend {
        BackendKind::WgpuGl => "wgpu",
        other => other.name(),
    };
    CliError::Usage(format!(
        "--backend {0} is not compiled into this build (compiled in: {1}); rebuild with the cargo feature `{2}`, \
         e.g. `cargo install --path crates/vq-cli --features {2}`",
        backend.name(),
        compiled_in().join(", "),
        feature
    ))
}
