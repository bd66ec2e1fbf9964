//! `vq-diffusion serve` on one backend: load the model, then serve it over HTTP until Ctrl-C or
//! SIGTERM.

use std::time::Instant;

use vq_kernels::KernelBackend;
use vq_pipeline::{set_precision, LoadOptions, Precision, VQDiffusionPipeline};
use vq_serve::{PipelineEngine, ServeError};

use crate::args::ServeArgs;
use crate::error::CliError;
use crate::report;

/// Serves the model of `args` on `device` of backend `B`.
pub fn run<B: KernelBackend>(device: B::Device, args: &ServeArgs) -> Result<(), CliError> {
    let config = args.config()?;
    let model = args.model()?;
    let failure = |error: ServeError| CliError::Failure(error.to_string());
    // Before the minutes a large model may take to load: an address in use fails at once.
    let listener = vq_serve::bind(&args.addr).map_err(failure)?;
    let addr = listener.local_addr().map_err(|e| failure(e.into()))?;
    // The precision of `generate` without --dtype: the same images for the same seed.
    let precision = Precision::F32;
    set_precision::<B>(&device, precision)?;
    report(&format!("Loading {model} ({} backend, {})…", args.backend.name(), precision.name()));
    let start = Instant::now();
    let pipeline = VQDiffusionPipeline::<B>::from_pretrained(&model, &LoadOptions::default(), &device)?;
    report(&format!("Loaded {} in {:.1} s", pipeline.dir.display(), start.elapsed().as_secs_f32()));
    let engine =
        PipelineEngine::new(pipeline, &model, args.backend.name(), precision.name()).with_engine(args.engine.choice());
    let guarded = if config.api_key.is_some() { ", API key required" } else { "" };
    report(&format!("Serving on http://{addr}/ (batches of up to {} images{guarded}; Ctrl-C stops)", config.max_batch));
    crate::print_line(&format!("http://{addr}/"));
    vq_serve::run(listener, config, engine).map_err(failure)?;
    report("Stopped.");
    Ok(())
}
