//! `generate`'s editing and fast-sampling flags: `--init-image` with `--mask` (inpainting) or
//! `--strength` (image variations), `--resize`, and `--skip` with `--skip-posterior`.
//!
//! Every input problem is one line naming the file and what is wrong with it.

use std::path::{Path, PathBuf};

use clap::ValueEnum;
use image::{GrayImage, RgbImage};
use vq_pipeline::{fit_image, GenerateRequest, KeptRegion, KernelBackend, SkipPosterior, VQDiffusionPipeline};

use crate::error::CliError;

/// The flags of `generate` that edit a picture or stride over the timesteps.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct EditArgs {
    /// Edit this picture (PNG) instead of drawing from nothing: with --mask its white part is
    /// drawn anew and the rest kept exactly (inpainting); with --strength it is redrawn as a
    /// variation. It must have the model's size (models/shapes: 64×64) unless --resize is given.
    #[arg(long, value_name = "IN.png", help_heading = "Editing a picture")]
    pub init_image: Option<PathBuf>,

    /// Inpainting mask (PNG, the picture's size): white = draw anew, black = keep; grey above
    /// 50 % counts as white. A latent pixel is drawn anew when any pixel of its patch (8×8 for
    /// ITHQ, 4×4 for models/shapes) is white; the kept latent pixels keep their encoded tokens
    /// exactly (see --tokens).
    #[arg(long, value_name = "MASK.png", requires = "init_image", help_heading = "Editing a picture")]
    pub mask: Option<PathBuf>,

    /// How much of the picture is drawn anew, in (0, 1]: its tokens are noised to timestep
    /// ⌊S·T⌋ − 1 and denoised from there under the prompt (with --mask: only inside the mask).
    /// Small values stay close to the picture; 1 (the default) draws from the mask class.
    #[arg(
        long,
        value_name = "S",
        requires = "init_image",
        allow_negative_numbers = true,
        help_heading = "Editing a picture"
    )]
    pub strength: Option<f32>,

    /// Resize --init-image and --mask to cover the model's picture size and crop the centre,
    /// instead of refusing a picture of another size.
    #[arg(long, requires = "init_image", help_heading = "Editing a picture")]
    pub resize: bool,

    /// Fast sampling: skip K timesteps between network calls, which then run at t = T−1,
    /// T−1−(K+1), …, and 0 (K = 1 halves them). 0 (the default) calls the network at every
    /// timestep, as diffusers does.
    #[arg(long, value_name = "K", default_value_t = 0)]
    pub skip: usize,

    /// How --skip jumps from one network call to the next: the original VQ-Diffusion's one-step
    /// posterior (one-step) or the exact posterior of the whole jump (exact).
    #[arg(long, value_enum, value_name = "JUMP", default_value_t = SkipPosteriorArg::OneStep)]
    pub skip_posterior: SkipPosteriorArg,

    /// What the model sees of the kept part of an inpainting before each network call: its
    /// tokens noised to the call's timestep (renoised) or as encoded (as-encoded). Either way
    /// the kept tokens come out exactly as encoded.
    #[arg(
        long,
        value_enum,
        value_name = "HOW",
        default_value_t = KeptRegionArg::Renoised,
        requires = "mask",
        help_heading = "Editing a picture"
    )]
    pub kept_region: KeptRegionArg,
}

/// `--kept-region`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum KeptRegionArg {
    /// Noised forward to the call's timestep, q(x_t | x_0).
    #[default]
    Renoised,
    /// The encoded tokens as they are.
    AsEncoded,
}

impl KeptRegionArg {
    /// The library's choice.
    pub fn region(self) -> KeptRegion {
        match self {
            Self::Renoised => KeptRegion::Renoised,
            Self::AsEncoded => KeptRegion::AsEncoded,
        }
    }

    /// The name used on the command line and in the PNG metadata.
    pub fn name(self) -> &'static str {
        match self {
            Self::Renoised => "renoised",
            Self::AsEncoded => "as-encoded",
        }
    }
}

/// `--skip-posterior`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum SkipPosteriorArg {
    /// The one-step posterior evaluated at the next call's timestep + 1 (the original's fast
    /// inference).
    #[default]
    OneStep,
    /// The exact posterior q(x_s | x_t, x_0) of the jump.
    Exact,
}

impl SkipPosteriorArg {
    /// The library's jump.
    pub fn posterior(self) -> SkipPosterior {
        match self {
            Self::OneStep => SkipPosterior::OneStep,
            Self::Exact => SkipPosterior::Exact,
        }
    }

    /// The name used on the command line and in the PNG metadata.
    pub fn name(self) -> &'static str {
        match self {
            Self::OneStep => "one-step",
            Self::Exact => "exact",
        }
    }
}

/// The pictures read before the model is loaded (so that a bad file fails at once).
pub struct EditInputs {
    picture: Option<(PathBuf, RgbImage)>,
    mask: Option<(PathBuf, GrayImage)>,
}

impl EditArgs {
    /// The range checks that need no file or model.
    pub fn check(&self) -> Result<(), CliError> {
        if let Some(strength) = self.strength {
            vq_pipeline::check_strength(strength).map_err(|e| CliError::Usage(format!("--strength: {e}")))?;
        }
        Ok(())
    }

    /// Reads --init-image and --mask.
    pub fn read_inputs(&self) -> Result<EditInputs, CliError> {
        let picture =
            self.init_image.as_ref().map(|path| read_image(path).map(|image| (path.clone(), image.to_rgb8())));
        let mask = self.mask.as_ref().map(|path| read_image(path).map(|image| (path.clone(), image.to_luma8())));
        Ok(EditInputs { picture: picture.transpose()?, mask: mask.transpose()? })
    }

    /// The PNG text chunks of these flags (only those in use).
    pub fn chunks(&self) -> Vec<(&'static str, String)> {
        let mut chunks = Vec::new();
        if let Some(path) = &self.init_image {
            chunks.push(("init_image", path.display().to_string()));
        }
        if let Some(path) = &self.mask {
            chunks.push(("mask", path.display().to_string()));
            chunks.push(("kept_region", self.kept_region.name().to_string()));
        }
        if self.init_image.is_some() {
            chunks.push(("strength", self.strength.unwrap_or(1.0).to_string()));
        }
        if self.skip > 0 {
            chunks.push(("skip", self.skip.to_string()));
            chunks.push(("skip_posterior", self.skip_posterior.name().to_string()));
        }
        chunks
    }
}

impl EditInputs {
    /// `request` with the schedule of `args` and, given --init-image, the picture's tokens, the
    /// mask and the strength.
    pub fn apply<B: KernelBackend>(
        self,
        args: &EditArgs,
        pipeline: &VQDiffusionPipeline<B>,
        request: GenerateRequest,
    ) -> Result<GenerateRequest, CliError> {
        let request = request.with_skip(args.skip).with_skip_posterior(args.skip_posterior.posterior());
        let Some((path, picture)) = self.picture else {
            return Ok(request);
        };
        if !pipeline.can_encode() {
            return Err(CliError::Failure(format!(
                "--init-image {}: this model cannot encode pictures ({}/vqvae has no encoder weights); \
                 editing needs a VQ-VAE with its encoder",
                path.display(),
                pipeline.dir.display()
            )));
        }
        let size = pipeline.image_size();
        let picture = fit(&path, picture, size, args.resize, None)?;
        let tokens = pipeline.encode_images(&[picture]).map_err(|e| failure(&path, e))?;
        let mut request = request.with_init_tokens(tokens).with_strength(args.strength.unwrap_or(1.0));
        if let Some((mask_path, mask)) = self.mask {
            let mask = fit(&mask_path, mask, size, args.resize, Some(&path))?;
            let latent = pipeline.latent_mask(&mask).map_err(|e| failure(&mask_path, e))?;
            check_mask(&mask_path, &mask, &latent, size.0 / pipeline.latent_size().1 as u32)?;
            request = request.with_mask(vec![latent]).with_kept_region(args.kept_region.region());
        }
        Ok(request)
    }
}

/// A picture (PNG, JPEG or WebP) from `path`, within the pipeline's decoding limits, or an
/// error naming the file.
pub fn read_image(path: &Path) -> Result<image::DynamicImage, CliError> {
    vq_pipeline::read_picture(path).map_err(|e| CliError::Failure(e.to_string()))
}

/// `image` at the model's `size`: as it is, resized and cropped with --resize, or an error
/// naming both sizes. A mask also names its picture.
fn fit<P>(
    path: &Path,
    image: image::ImageBuffer<P, Vec<P::Subpixel>>,
    size: (u32, u32),
    resize: bool,
    picture: Option<&Path>,
) -> Result<image::ImageBuffer<P, Vec<P::Subpixel>>, CliError>
where
    P: image::Pixel + 'static,
    P::Subpixel: 'static,
{
    let found = image.dimensions();
    if found == size || resize {
        return Ok(fit_image(&image, size));
    }
    let of = match picture {
        Some(picture) => format!(" (the size of {} should match)", picture.display()),
        None => String::new(),
    };
    Err(CliError::Failure(format!(
        "{} is {}×{} pixels, but the model's pictures are {}×{}{of}; pass --resize to resize and crop it",
        path.display(),
        found.0,
        found.1,
        size.0,
        size.1
    )))
}

/// A mask must keep something and redraw something.
fn check_mask(path: &Path, mask: &GrayImage, latent: &[bool], patch: u32) -> Result<(), CliError> {
    let white = mask.pixels().filter(|p| p.0[0] >= 128).count();
    let fail = |message: String| Err(CliError::Failure(format!("{} {message}", path.display())));
    if white == 0 {
        return fail("is all black: there is nothing to draw anew (white marks the part to redraw)".into());
    }
    if white == mask.pixels().len() {
        return fail("is all white: nothing would be kept; leave out --mask to redraw the whole picture".into());
    }
    if latent.iter().all(|&redraw| redraw) {
        return fail(format!(
            "touches every {patch}×{patch} patch of the picture, so every latent pixel would be drawn anew and \
             nothing kept; leave black at least one whole patch, or leave out --mask"
        ));
    }
    Ok(())
}

fn failure(path: &Path, error: vq_pipeline::PipelineError) -> CliError {
    CliError::Failure(format!("{}: {error}", path.display()))
}
