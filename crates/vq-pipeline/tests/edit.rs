//! Editing in token space and strided chains, on the random-weight test pipeline
//! (`fixtures/tiny/raw`: 8 × 8 latent pixels, 31 codes, T = 100) and on the shipped shapes model
//! (`models/shapes`: 16 × 16 latent pixels, 256 codes, T = 50).

use std::path::{Path, PathBuf};

use burn::backend::NdArray;
use vq_pipeline::{
    GenerateRequest, KeptRegion, NoiseSource, PipelineError, Sampler, SkipPosterior, VQDiffusionPipeline,
};

type B = NdArray<f32>;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn tiny() -> VQDiffusionPipeline<B> {
    VQDiffusionPipeline::from_dir(&root().join("fixtures/tiny/raw"), None, &Default::default()).unwrap()
}

fn shapes() -> VQDiffusionPipeline<B> {
    VQDiffusionPipeline::from_dir(&root().join("models/shapes"), None, &Default::default()).unwrap()
}

fn tokens(pipeline: &VQDiffusionPipeline<B>, request: &GenerateRequest) -> Vec<Vec<i64>> {
    pipeline.generate(request).unwrap_or_else(|e| panic!("{e}")).token_ids()
}

/// Deterministic ids in 0..k, `n` of them.
fn ids(n: usize, k: i64, salt: usize) -> Vec<i64> {
    (0..n).map(|i| ((i * 7 + salt * 13) % k as usize) as i64).collect()
}

fn invalid(error: PipelineError) -> (&'static str, String) {
    match error {
        PipelineError::InvalidArgument { name, message } => (name, message),
        other => panic!("expected an invalid argument, got {other}"),
    }
}

#[test]
fn inpainting_keeps_every_kept_token_exactly_on_the_test_pipeline() {
    let pipeline = tiny();
    let init = vec![ids(64, 31, 1), ids(64, 31, 2)];
    // Image 0 redraws its left half, image 1 a centre square.
    let mask = vec![
        (0..64).map(|i| i % 8 < 4).collect::<Vec<_>>(),
        (0..64).map(|i| (2..6).contains(&(i % 8)) && (2..6).contains(&(i / 8))).collect(),
    ];
    for sampler in [Sampler::Posterior, Sampler::Reveal(vq_pipeline::RevealOrder::Uniform)] {
        let (clean, renoised) = (KeptRegion::AsEncoded, KeptRegion::Renoised);
        for (strength, skip, kept) in [(1.0, 0, clean), (0.5, 0, clean), (1.0, 3, clean), (0.5, 3, renoised)] {
            let request = GenerateRequest::new(["a cat", "a dog"])
                .with_steps(12)
                .with_sampler(sampler)
                .with_init_tokens(init.clone())
                .with_mask(mask.clone())
                .with_strength(strength)
                .with_skip(skip)
                .with_kept_region(kept)
                .with_noise(NoiseSource::Torch { seed: 3 });
            let out = tokens(&pipeline, &request);
            for b in 0..2 {
                let mut redrawn = 0;
                for i in 0..64 {
                    if mask[b][i] {
                        redrawn += usize::from(out[b][i] != init[b][i]);
                        assert!((0..31).contains(&out[b][i]));
                    } else {
                        assert_eq!(
                            out[b][i], init[b][i],
                            "{sampler:?} s {strength} skip {skip} {kept:?}: image {b} pixel {i}"
                        );
                    }
                }
                assert!(redrawn > 0, "{sampler:?} s {strength} skip {skip} {kept:?}: image {b} redrew nothing");
            }
        }
    }
}

#[test]
fn strength_1_without_a_mask_is_an_ordinary_generation() {
    let pipeline = tiny();
    let plain = GenerateRequest::new(["a cat"])
        .with_steps(10)
        .with_images_per_prompt(2)
        .with_noise(NoiseSource::Torch { seed: 5 });
    let expected = tokens(&pipeline, &plain);
    let varied = plain.clone().with_init_tokens(vec![ids(64, 31, 4)]).with_strength(1.0);
    assert_eq!(tokens(&pipeline, &varied), expected);
    // An all-true mask draws every pixel anew: the same again.
    let everything = varied.with_mask(vec![vec![true; 64]]);
    assert_eq!(tokens(&pipeline, &everything), expected);
}

#[test]
fn chains_start_at_the_strength_and_stride_by_the_skip() {
    let request = GenerateRequest::new(["a"]).with_steps(50);
    assert_eq!(request.timesteps(50), (0..50).rev().collect::<Vec<_>>());
    let edit = request.clone().with_init_tokens(vec![vec![0; 4]]);
    assert_eq!(edit.clone().with_strength(0.7).start_steps(50), 35, "0.7 of 50, despite f32 rounding");
    assert_eq!(edit.clone().with_strength(0.3).start_steps(50), 15);
    assert_eq!(edit.clone().with_strength(0.001).start_steps(50), 1, "at least one step");
    assert_eq!(edit.clone().with_strength(0.7).with_skip(4).timesteps(50), [34, 29, 24, 19, 14, 9, 4, 0]);
    // The lower start wins: 20 steps asked, strength 0.7 of 50 would start at 34.
    assert_eq!(edit.with_steps(20).with_strength(0.7).start_steps(50), 20);
    assert_eq!(request.with_skip(1).network_calls(50), 26);
}

#[test]
fn skip_0_is_diffusers_chain_and_a_strided_chain_calls_the_network_less() {
    let pipeline = tiny();
    let base = GenerateRequest::new(["a cat"]).with_steps(20).with_noise(NoiseSource::Torch { seed: 2 });
    let plain = tokens(&pipeline, &base);
    for posterior in [SkipPosterior::OneStep, SkipPosterior::Exact] {
        let request = base.clone().with_skip(0).with_skip_posterior(posterior);
        assert_eq!(tokens(&pipeline, &request), plain, "{posterior:?}");
    }
    let mut calls = Vec::new();
    let strided = base.with_skip(4);
    let out = pipeline.generate_with_callback(&strided, |step| calls.push(step.timestep)).unwrap();
    assert_eq!(calls, [19, 14, 9, 4, 0]);
    assert!(out.token_ids()[0].iter().all(|&id| (0..31).contains(&id)));
}

#[test]
fn bad_edits_are_refused_by_name() {
    let pipeline = tiny();
    let base = GenerateRequest::new(["a cat"]).with_steps(2);
    let cases = [
        (base.clone().with_mask(vec![vec![true; 64]]), "mask", "needs init_tokens"),
        (base.clone().with_strength(0.5), "strength", "0.5 needs init_tokens"),
        (base.clone().with_init_tokens(vec![ids(64, 31, 0)]).with_strength(0.0), "strength", "0 is outside (0, 1]"),
        (base.clone().with_init_tokens(vec![ids(64, 31, 0)]).with_strength(1.5), "strength", "1.5 is outside (0, 1]"),
        (base.clone().with_init_tokens(vec![ids(64, 31, 0)]).with_strength(f32::NAN), "strength", "NaN is outside"),
        (base.clone().with_init_tokens(vec![vec![31; 64]]), "init_tokens", "id 31 is outside the codebook 0..=30"),
        (
            base.clone().with_init_tokens(vec![ids(63, 31, 0)]),
            "init_tokens",
            "rows of 64 ids, found rows of lengths [63]",
        ),
        (
            base.clone().with_images_per_prompt(3).with_init_tokens(vec![ids(64, 31, 0); 2]),
            "init_tokens",
            "expected 1 or 3 rows",
        ),
        (
            base.clone().with_init_tokens(vec![ids(64, 31, 0)]).with_mask(vec![vec![false; 64]]),
            "mask",
            "row 0 selects no latent pixel: there is nothing to draw anew",
        ),
        (
            base.clone().with_init_tokens(vec![ids(64, 31, 0)]).with_mask(vec![vec![true; 8]]),
            "mask",
            "rows of 64 latent pixels",
        ),
        (base.with_latents(vec![ids(64, 31, 0)]).with_init_tokens(vec![ids(64, 31, 0)]), "init_tokens", "not both"),
    ];
    for (request, name, message) in cases {
        let (got_name, got) = invalid(pipeline.generate(&request).unwrap_err());
        assert_eq!(got_name, name, "{got}");
        assert!(got.contains(message), "{name}: {got}");
    }
}

#[test]
fn a_latent_pixel_is_redrawn_when_any_pixel_of_its_patch_is_brighter_than_half_grey() {
    let pipeline = tiny();
    assert_eq!(pipeline.image_size(), (16, 16), "8 × 8 latent pixels, downsampling 2");
    let mut mask = image::GrayImage::new(16, 16);
    mask.put_pixel(5, 0, image::Luma([128])); // patch (0, 2)
    mask.put_pixel(0, 15, image::Luma([127])); // half grey and below: kept
    mask.put_pixel(15, 15, image::Luma([255])); // patch (7, 7)
    let latent = pipeline.latent_mask(&mask).unwrap();
    let set: Vec<usize> = (0..64).filter(|&i| latent[i]).collect();
    assert_eq!(set, [2, 63]);
    match pipeline.latent_mask(&image::GrayImage::new(16, 12)).unwrap_err() {
        PipelineError::ImageSize { what, found, expected } => {
            assert_eq!((what, found, expected), ("mask", (16, 12), (16, 16)));
        }
        other => panic!("{other}"),
    }
}

/// A copy of the test pipeline whose VQ-VAE weights lack the encoder (a decoder-only export).
fn decoder_only_copy() -> PathBuf {
    let source = root().join("fixtures/tiny/raw");
    let dir = std::env::temp_dir().join(format!("vq-pipeline-decoder-only-{}", std::process::id()));
    for entry in walk(&source) {
        let target = dir.join(entry.strip_prefix(&source).unwrap());
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(&entry, &target).unwrap();
    }
    let weights = dir.join("vqvae/diffusion_pytorch_model.safetensors");
    let bytes = std::fs::read(&weights).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let kept: Vec<_> = file
        .tensors()
        .into_iter()
        .filter(|(name, _)| !name.starts_with("encoder.") && !name.starts_with("quant_conv."))
        .collect();
    assert!(kept.len() < file.len());
    std::fs::write(&weights, safetensors::serialize(kept, None).unwrap()).unwrap();
    dir
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .flat_map(|entry| {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path)
            } else {
                vec![path]
            }
        })
        .collect()
}

#[test]
fn a_decoder_only_vqvae_draws_but_refuses_to_encode() {
    let dir = decoder_only_copy();
    let pipeline = VQDiffusionPipeline::<B>::from_dir(&dir, None, &Default::default()).unwrap();
    assert!(!pipeline.can_encode());
    assert!(tiny().can_encode());
    let request = GenerateRequest::new(["a cat"]).with_steps(3).with_noise(NoiseSource::Torch { seed: 0 });
    assert_eq!(tokens(&pipeline, &request), tokens(&tiny(), &request), "the decoder and the rest load as before");
    let error = pipeline.encode_images(&[image::RgbImage::new(16, 16)]).unwrap_err();
    assert!(matches!(error, PipelineError::NoEncoder { .. }), "{error}");
    assert!(error.to_string().contains("has no encoder weights"), "{error}");
    // A VQ-VAE missing only part of its encoder is still an error naming the tensors.
    let weights = dir.join("vqvae/diffusion_pytorch_model.safetensors");
    let full = std::fs::read(root().join("fixtures/tiny/raw/vqvae/diffusion_pytorch_model.safetensors")).unwrap();
    let file = safetensors::SafeTensors::deserialize(&full).unwrap();
    let partial: Vec<_> = file.tensors().into_iter().filter(|(name, _)| name != "encoder.conv_in.weight").collect();
    std::fs::write(&weights, safetensors::serialize(partial, None).unwrap()).unwrap();
    let error = VQDiffusionPipeline::<B>::from_dir(&dir, None, &Default::default()).unwrap_err().to_string();
    assert!(error.contains("encoder.conv_in.weight"), "{error}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn encoding_refuses_a_picture_of_another_size() {
    match tiny().encode_images(&[image::RgbImage::new(16, 20)]).unwrap_err() {
        PipelineError::ImageSize { what, found, expected } => {
            assert_eq!((what, found, expected), ("picture", (16, 20), (16, 16)));
        }
        other => panic!("{other}"),
    }
}

/// The shipped model's first committed case (diffusers' tokens for "a large red circle on a
/// blue background").
fn shapes_case_tokens() -> (String, Vec<i64>) {
    let text = std::fs::read_to_string(root().join("fixtures/reference/shapes_cases.json")).unwrap();
    let cases: serde_json::Value = serde_json::from_str(&text).unwrap();
    let case = &cases[0];
    let tokens = case["tokens"][0].as_array().unwrap().iter().map(|t| t.as_i64().unwrap()).collect();
    (case["prompt"].as_str().unwrap().to_string(), tokens)
}

#[test]
fn the_shipped_model_encodes_what_it_decodes() {
    let pipeline = shapes();
    let (_, tokens) = shapes_case_tokens();
    let picture = pipeline.decode_images(&[tokens]).unwrap().remove(0);
    assert_eq!(picture.dimensions(), (64, 64));
    let encoded = pipeline.encode_images(std::slice::from_ref(&picture)).unwrap().remove(0);
    assert_eq!(encoded.len(), 256);
    // The codebook holds several codes for one flat colour, so the ids differ (55 of 256 equal,
    // measured) while the pixels they decode to stay close: measured 4.1 of 255 on average.
    let again = pipeline.decode_images(&[encoded]).unwrap().remove(0);
    let error: f64 = picture.as_raw().iter().zip(again.as_raw()).map(|(&a, &b)| f64::from(a.abs_diff(b))).sum::<f64>()
        / picture.as_raw().len() as f64;
    assert!(error < 6.0, "mean absolute pixel difference {error} of 255");
}

#[test]
fn the_shipped_model_inpaints_without_touching_the_kept_tokens() {
    let pipeline = shapes();
    let (_, tokens) = shapes_case_tokens();
    // Redraw the centre 6 × 6 latent pixels as a green square.
    let mask: Vec<bool> = (0..256).map(|i| (5..11).contains(&(i % 16)) && (5..11).contains(&(i / 16))).collect();
    let request = GenerateRequest::new(["a large green square in the center on a blue background"])
        .with_guidance_scale(3.0)
        .with_truncation_rate(0.7)
        .with_steps(50)
        .with_skip(12)
        .with_init_tokens(vec![tokens.clone()])
        .with_mask(vec![mask.clone()])
        .with_noise(NoiseSource::Torch { seed: 0 });
    let out = pipeline.generate(&request).unwrap().token_ids().remove(0);
    for i in 0..256 {
        if !mask[i] {
            assert_eq!(out[i], tokens[i], "kept latent pixel {i}");
        }
    }
    assert!((0..256).filter(|&i| mask[i] && out[i] != tokens[i]).count() > 0);
}

#[test]
fn the_shipped_model_at_strength_1_draws_the_ordinary_picture() {
    let pipeline = shapes();
    let (prompt, _) = shapes_case_tokens();
    let plain = GenerateRequest::new([prompt])
        .with_guidance_scale(3.0)
        .with_steps(3)
        .with_noise(NoiseSource::Torch { seed: 0 });
    let expected = pipeline.generate(&plain).unwrap().token_ids();
    let varied = plain.with_init_tokens(vec![vec![7; 256]]).with_strength(1.0);
    assert_eq!(pipeline.generate(&varied).unwrap().token_ids(), expected);
}

#[test]
fn a_small_strength_keeps_most_of_the_picture_on_the_shipped_model() {
    let pipeline = shapes();
    let (prompt, tokens) = shapes_case_tokens();
    let request = GenerateRequest::new([prompt])
        .with_guidance_scale(3.0)
        .with_steps(50)
        .with_init_tokens(vec![tokens.clone()])
        .with_strength(0.1)
        .with_noise(NoiseSource::Torch { seed: 4 });
    assert_eq!(request.timesteps(50), [4, 3, 2, 1, 0]);
    let out = pipeline.generate(&request).unwrap().token_ids().remove(0);
    let same = out.iter().zip(&tokens).filter(|(a, b)| a == b).count();
    // Measured: 239 of 256. γ̄_4 masks ≈ 8 % of the tokens at the start; the rest stay unless the
    // last step picks another code for the same colour.
    assert!(same >= 200, "strength 0.1 kept {same} of 256 tokens");
}
