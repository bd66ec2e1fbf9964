//! `--backend`: the burn backends compiled into this build (cargo features of vq-train-cli),
//! and the dispatch that runs one command monomorphised for the one named.

use burn::backend::Autodiff;
use vq_kernels::KernelBackend;
use vq_train::TrainBackend;

use crate::error::CliError;

#[cfg(not(any(feature = "ndarray", feature = "flex", feature = "wgpu", feature = "cuda", feature = "cuda-untuned")))]
compile_error!("vq-train-cli needs at least one backend feature: ndarray, flex, wgpu, cuda or cuda-untuned");

/// `--backend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendKind {
    /// CPU on burn-ndarray (pure Rust); cargo feature `ndarray` (default).
    Ndarray,
    /// CPU on burn-flex (gemm-based, multi-threaded); cargo feature `flex` (default).
    Flex,
    /// GPU through wgpu (Vulkan, Metal, DX12); cargo feature `wgpu`.
    Wgpu,
    /// wgpu on OpenGL / OpenGL ES, for machines without Vulkan; cargo feature `wgpu`.
    WgpuGl,
    /// NVIDIA GPU through CUDA; cargo feature `cuda` (fused, autotuned) or `cuda-untuned` (the
    /// training build: no fusion, no autotuning).
    Cuda,
    /// CUDA without burn's fusion layer (far fewer kernels to compile for training graphs);
    /// cargo feature `cuda` or `cuda-untuned`.
    CudaUnfused,
}

impl BackendKind {
    /// The backend used without `--backend`: the faster CPU backend compiled in (flex, else
    /// ndarray), else CUDA, else wgpu.
    pub fn preferred() -> Self {
        if cfg!(feature = "flex") {
            Self::Flex
        } else if cfg!(feature = "ndarray") {
            Self::Ndarray
        } else if cfg!(any(feature = "cuda", feature = "cuda-untuned")) {
            Self::Cuda
        } else {
            Self::Wgpu
        }
    }

    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ndarray => "ndarray",
            Self::Flex => "flex",
            Self::Wgpu => "wgpu",
            Self::WgpuGl => "wgpu-gl",
            Self::Cuda => "cuda",
            Self::CudaUnfused => "cuda-unfused",
        }
    }

    /// The cargo feature that compiles it in.
    fn feature(self) -> &'static str {
        match self {
            Self::WgpuGl => "wgpu",
            Self::CudaUnfused => "cuda",
            other => other.name(),
        }
    }
}

/// The backends of this build.
pub fn compiled_in() -> Vec<&'static str> {
    let cuda = cfg!(any(feature = "cuda", feature = "cuda-untuned"));
    [
        (cfg!(feature = "ndarray"), "ndarray"),
        (cfg!(feature = "flex"), "flex"),
        (cfg!(feature = "wgpu"), "wgpu"),
        (cfg!(feature = "wgpu"), "wgpu-gl"),
        (cuda, "cuda"),
        (cuda, "cuda-unfused"),
    ]
    .into_iter()
    .filter_map(|(on, name)| on.then_some(name))
    .collect()
}

/// burn's CUDA backend without its fusion layer: far fewer kernels to JIT-compile on first use
/// (fusion compiles a kernel per fused graph, and training graphs are many).
#[cfg(any(feature = "cuda", feature = "cuda-untuned"))]
pub type CudaUnfused = burn_cubecl::CubeBackend<cubecl::cuda::CudaRuntime, f32, i32, u8>;

/// A command that runs on any backend the models run on (export, evaluation).
pub trait Job {
    /// Runs on backend `B`'s `device`.
    fn run<B: KernelBackend>(self, device: B::Device) -> Result<(), CliError>;
}

/// A command that trains: it runs on `Autodiff<B>` of the chosen backend.
pub trait TrainJob {
    /// Runs on the training backend `B`'s `device`.
    fn run<B: TrainBackend>(self, device: B::Device) -> Result<(), CliError>;
}

/// Runs `job` on the backend `kind`, or says that backend is not compiled in.
pub fn dispatch(kind: BackendKind, job: impl Job) -> Result<(), CliError> {
    match kind {
        #[cfg(feature = "ndarray")]
        BackendKind::Ndarray => job.run::<burn::backend::NdArray>(Default::default()),
        #[cfg(feature = "flex")]
        BackendKind::Flex => job.run::<burn::backend::Flex>(Default::default()),
        #[cfg(feature = "wgpu")]
        BackendKind::Wgpu => job.run::<burn::backend::Wgpu>(device(vq_kernels::setup::wgpu_device())?),
        #[cfg(feature = "wgpu")]
        BackendKind::WgpuGl => job.run::<burn::backend::Wgpu>(device(vq_kernels::setup::wgpu_opengl_device())?),
        #[cfg(any(feature = "cuda", feature = "cuda-untuned"))]
        BackendKind::Cuda => job.run::<burn::backend::Cuda>(Default::default()),
        #[cfg(any(feature = "cuda", feature = "cuda-untuned"))]
        BackendKind::CudaUnfused => job.run::<CudaUnfused>(Default::default()),
        #[allow(unreachable_patterns)] // every backend compiled in
        other => Err(not_compiled_in(other)),
    }
}

/// Runs `job` on `Autodiff` over the backend `kind`, or says that backend is not compiled in.
pub fn dispatch_training(kind: BackendKind, job: impl TrainJob) -> Result<(), CliError> {
    match kind {
        #[cfg(feature = "ndarray")]
        BackendKind::Ndarray => job.run::<Autodiff<burn::backend::NdArray>>(Default::default()),
        #[cfg(feature = "flex")]
        BackendKind::Flex => job.run::<Autodiff<burn::backend::Flex>>(Default::default()),
        #[cfg(feature = "wgpu")]
        BackendKind::Wgpu => job.run::<Autodiff<burn::backend::Wgpu>>(device(vq_kernels::setup::wgpu_device())?),
        #[cfg(feature = "wgpu")]
        BackendKind::WgpuGl => {
            job.run::<Autodiff<burn::backend::Wgpu>>(device(vq_kernels::setup::wgpu_opengl_device())?)
        }
        #[cfg(any(feature = "cuda", feature = "cuda-untuned"))]
        BackendKind::Cuda => job.run::<Autodiff<burn::backend::Cuda>>(Default::default()),
        #[cfg(any(feature = "cuda", feature = "cuda-untuned"))]
        BackendKind::CudaUnfused => job.run::<Autodiff<CudaUnfused>>(Default::default()),
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

fn not_compiled_in(backend: BackendKind) -> CliError {
    CliError::Usage(format!(
        "--backend {0} is not compiled into this build (compiled in: {1}); rebuild with the cargo feature `{2}`, \
         e.g. `cargo install --path crates/vq-train-cli --features {2}`",
        backend.name(),
        compiled_in().join(", "),
        backend.feature()
    ))
}
