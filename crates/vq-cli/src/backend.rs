//! `--backend`: one monomorphised [`run`] per backend compiled in (cargo features of vq-cli).

use crate::args::{BackendKind, GenerateArgs};
use crate::error::CliError;
use crate::generate::run;

#[cfg(not(any(feature = "ndarray", feature = "flex", feature = "wgpu", feature = "cuda")))]
compile_error!("vq-cli needs at least one backend feature: ndarray, flex, wgpu or cuda");

/// Runs `args` on the backend it names, or says that backend is not compiled in.
pub fn dispatch(args: &GenerateArgs) -> Result<(), CliError> {
    match args.backend {
        #[cfg(feature = "ndarray")]
        BackendKind::Ndarray => run::<burn::backend::NdArray>(Default::default(), args),
        #[cfg(feature = "flex")]
        BackendKind::Flex => run::<burn::backend::Flex>(Default::default(), args),
        #[cfg(feature = "wgpu")]
        BackendKind::Wgpu => run::<burn::backend::Wgpu>(Default::default(), args),
        #[cfg(feature = "wgpu")]
        BackendKind::WgpuGl => {
            let device = vq_kernels::setup::wgpu_opengl_device().map_err(|e| CliError::Failure(format!("device: {e}")))?;
            run::<burn::backend::Wgpu>(device, args)
        }
        #[cfg(feature = "cuda")]
        BackendKind::Cuda => run::<burn::backend::Cuda>(Default::default(), args),
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
