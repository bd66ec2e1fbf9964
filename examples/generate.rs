//! Generate an image with a chosen backend, seed-for-seed like diffusers, at the pipeline's own
//! defaults (`VQDiffusionPipeline::request`: its step count and `sampling_defaults.json`). Without
//! arguments: the shipped shapes model (`models/shapes`).
//!
//! ```sh
//! cargo run --release --example generate -- [PIPELINE_DIR|REPO_ID] ["a prompt"] [OUT.png]
//! cargo run --release --example generate --no-default-features --features cuda -- …
//! ```

use vq_pipeline::{write_png, KernelBackend, LoadOptions, NoiseSource, VQDiffusionPipeline};

fn generate<B: KernelBackend>(device: B::Device) -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let model = args.next().unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/models/shapes").into());
    let prompt = args.next().unwrap_or_else(|| "a large red circle in the center on a blue background".into());
    let out = args.next().unwrap_or_else(|| "generated.png".into());

    let pipeline = VQDiffusionPipeline::<B>::from_pretrained(&model, &LoadOptions::default(), &device)?;
    for word in pipeline.unknown_words(&prompt) {
        eprintln!("warning: the model never learned {word:?}");
    }
    let request = pipeline.request([prompt.clone()]).with_noise(NoiseSource::Torch { seed: 0 });
    let generation = pipeline.generate_with_callback(&request, |step| {
        eprintln!("step {}/{} (t = {})", step.index + 1, step.total, step.timestep);
    })?;
    let image = &generation.rgb8()[0];
    write_png(out.as_ref(), image, &[("prompt", prompt), ("seed", "0".into())])?;
    println!("wrote {out} on {}", B::name(&device));
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    #[cfg(feature = "cuda")]
    return generate::<burn::backend::Cuda>(Default::default());
    #[cfg(all(feature = "wgpu", not(feature = "cuda")))]
    return generate::<burn::backend::Wgpu>(Default::default());
    #[cfg(not(any(feature = "wgpu", feature = "cuda")))]
    generate::<burn::backend::NdArray>(Default::default())
}
