//! `export`: a stage-2 checkpoint's weight EMA as a pipeline folder, or another VQ-VAE in a
//! pipeline (its decoder alone fine-tuned, or with other codes that the transformer is moved onto).

use vq_kernels::KernelBackend;
use vq_train::diffusion::{export_checkpoint, retarget_pipeline, swap_vqvae};
use vq_train::train::export::StoreDtype;

use crate::args::ExportArgs;
use crate::backend::{dispatch, Job};
use crate::error::CliError;
use crate::{print_path, report};

/// Exports on `--backend`; prints the written folder's path.
pub fn export(args: &ExportArgs) -> Result<(), CliError> {
    dispatch(args.backend.backend, Export(args))
}

struct Export<'a>(&'a ExportArgs);

impl Job for Export<'_> {
    fn run<B: KernelBackend>(self, device: B::Device) -> Result<(), CliError> {
        let args = self.0;
        let dtype = if args.f32 { StoreDtype::F32 } else { StoreDtype::F16 };
        match (&args.run, &args.pipeline) {
            (Some(run), _) => export_checkpoint::<B>(run, &args.vqvae, &args.out, dtype, &device)?,
            (None, Some(pipeline)) if args.retarget => {
                let (images, progress) = (args.retarget_images, &mut report);
                let matched =
                    retarget_pipeline::<B>(pipeline, &args.vqvae, &args.out, images, dtype, &device, progress)?;
                report(&format!(
                    "codes matched on {images} images: {:.1} % of latent pixels agree, {} of {} new codes unused",
                    100.0 * matched.agreement,
                    matched.unused,
                    matched.old_of_new.len()
                ));
            }
            (None, Some(pipeline)) => swap_vqvae::<B>(pipeline, &args.vqvae, &args.out, dtype, &device)?,
            (None, None) => return Err(CliError::Usage("give --run or --pipeline".into())),
        }
        print_path(&args.out);
        Ok(())
    }
}
