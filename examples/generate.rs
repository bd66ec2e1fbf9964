//! Generate an image with a chosen backend, seed-for-seed like diffusers.
//!
//! ```sh
//! cargo run --release --example generate -- [PIPELINE_DIR|REPO_ID] ["a prompt"] [OUT.png]
//! cargo run --release --example generate --no-default-features --features cuda -- …
//! ```

use vq_pipeline::{write_png, GenerateRequest, KernelBackend, LoadOptions, NoiseSource, VQDiffusionPipeline};

fn generate<B: KernelBackend>(device: B::Device) -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let model = args.next().unwrap_or_else(|| "fixtures/tiny/hub".into());
    let prompt = args.next().unwrap_or_else(|| "teddy bear playing in the pool".into());
    let out = args.next().unwrap_or_else(|| "generated.png".into());

    let pipeline = VQDiffusionPipeline::<B>::from_pretrained(&model, &LoadOptions::default(), &device)?;
    let request = GenerateRequest::new([prompt.clone()]).with_steps(10).with_noise(NoiseSource::Torch { seed: 0 });
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
