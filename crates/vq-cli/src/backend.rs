//! `--backend`: one monomorphised run per backend compiled in (cargo features of vq-cli).

use vq_kernels::KernelBackend;

use crate::args::{BackendKind, GenerateArgs, ServeArgs};
use crate::error::CliError;

/// A subcommand that runs on the backend its `--backend` names.
pub trait OnBackend {
    /// The backend asked for.
    fn backend(&self) -> BackendKind;
    /// Runs on `device` of backend `B`.
    fn run<B: KernelBackend>(&self, device: B::Device) -> Result<(), CliError>;
}

impl OnBackend for GenerateArgs {
    fn backend(&self) -> BackendKind {
        self.backend
    }

    fn run<B: KernelBackend>(&self, device: B::Device) -> Result<(), CliError> {
        crate::generate::run::<B>(device, self)
    }
}

impl OnBackend for ServeArgs {
    fn backend(&self) -> BackendKind {
        self.backend
    }

    fn run<B: KernelBackend>(&self, device: B::Device) -> Result<(), CliError> {
        crate::serve::run::<B>(device, self)
    }
}

#[cfg(not(any(feature = "ndarray", feature = "flex", feature = "wgpu", feature = "cuda")))]
compile_error!("vq-cli needs at least one backend feature: ndarray, flex, wgpu or cuda");

/// Runs `job` on the backend it names, or says that backend is not compiled in.
pub fn dispatch(job: &impl OnBackend) -> Result<(), CliError> {
    match job.backend() {
        #[cfg(feature = "ndarray")]
        BackendKind::Ndarray => job.run::<burn::backend::NdArray>(Default::default()),
        #[cfg(feature = "flex")]
        BackendKind::Flex => job.run::<burn::backend::Flex>(Default::default()),
        #[cfg(feature = "wgpu")]
        BackendKind::Wgpu => job.run::<burn::backend::Wgpu>(device(vq_kernels::setup::wgpu_device())?),
        #[cfg(feature = "wgpu")]
        BackendKind::WgpuGl => job.run::<burn::backend::Wgpu>(device(vq_kernels::setup::wgpu_opengl_device())?),
        #[cfg(feature = "cuda")]
        BackendKind::Cuda => job.run::<burn::backend::Cuda>(Default::default()),
        #[allow(unreachable_patterns)] // every backend compiled in
        other => Err(not_compiled_in(other)),
    }
}

/// A wgpu device set up by `vq_kernels::setup`, or the reason there is none.
#[cfg(feature = "wgpu")]
fn device(
    set_up: Result<burn::backend::wgpu::WgpuDevice, String>,
) -> Result<burn::backend::wgpu::WgpuDevice, CliError> {
    set_up.map_err(|e| CliError::Failure(format!("device: {e}")))
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
