//! End to end against diffusers 0.42.1: for every committed case (guidance on and off,
//! learned and empty-prompt negatives, truncation < 1, several prompts and images per
//! prompt, a prompt over 77 tokens, several seeds and step counts) and every layout the case
//! was recorded for, the torch-compatible generator gives exactly diffusers' final tokens
//! and 8-bit pixels, and the float image within 1e-5.

use std::path::{Path, PathBuf};

use burn::backend::NdArray;
use serde_json::Value;
use vq_pipeline::{GenerateRequest, NoiseSource, TruncationMode, VQDiffusionPipeline};

type B = NdArray<f32>;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

fn reference(name: &str) -> burn::tensor::TensorData {
    vq_weights::read_tensor(&fixtures().join("reference/tiny.safetensors"), name).unwrap()
}

/// Float images agree to this; diffusers' CPU kernels and ours round differently in the last bits.
const IMAGE_TOL: f32 = 1e-5;

/// Whether `x · 255` lies so close to a rounding boundary (k + 0.5) that an error within
/// [`IMAGE_TOL`] may round it either way: the only place an 8-bit pixel may differ.
fn rounding_tie(x: f32) -> bool {
    let scaled = x * 255.0;
    (scaled - scaled.floor() - 0.5).abs() <= IMAGE_TOL * 255.0
}

fn cases() -> Vec<Value> {
    let text = std::fs::read_to_string(fixtures().join("reference/cases.json")).unwrap();
    let json: Value = serde_json::from_str(&text).unwrap();
    json["cases"].as_array().unwrap().clone()
}

fn request(case: &Value) -> GenerateRequest {
    let prompts: Vec<String> = match &case["prompt"] {
        Value::String(p) => vec![p.clone()],
        Value::Array(ps) => ps.iter().map(|p| p.as_str().unwrap().to_string()).collect(),
        other => panic!("bad prompt {other}"),
    };
    GenerateRequest::new(prompts)
        .with_steps(case["num_inference_steps"].as_u64().unwrap() as usize)
        .with_guidance_scale(case["guidance_scale"].as_f64().unwrap() as f32)
        .with_truncation_rate(case["truncation_rate"].as_f64().unwrap() as f32)
        .with_images_per_prompt(case["num_images_per_prompt"].as_u64().unwrap() as usize)
        .with_noise(NoiseSource::Torch { seed: case["seed"].as_u64().unwrap() })
}

#[test]
fn every_case_matches_diffusers_in_every_layout() {
    check_cases::<B>(&["hub", "raw", "bin", "nolearn"], 26, &Default::default());
}

/// The same cases on burn's wgpu backend (Vulkan; CI runs it on Mesa's lavapipe, the CPU's Vulkan
/// driver): `cargo test --features wgpu --test pipeline_parity`. One layout: loading does not
/// depend on the backend.
#[cfg(feature = "wgpu")]
#[test]
fn every_case_matches_diffusers_on_wgpu() {
    check_cases::<burn::backend::Wgpu>(&["hub"], 8, &Default::default());
}

/// Every case recorded for one of `layouts` (at least `at_least` of them), generated on `B`:
/// diffusers' tokens, its float image within [`IMAGE_TOL`] and its 8-bit pixels but for rounding ties.
fn check_cases<B: vq_pipeline::KernelBackend>(layouts: &[&str], at_least: usize, device: &B::Device) {
    let mut checked = 0;
    for &layout in layouts {
        let pipeline = VQDiffusionPipeline::<B>::from_dir(&fixtures().join("tiny").join(layout), None, device)
            .unwrap_or_else(|e| panic!("{layout}: {e}"));
        for case in
            cases().iter().filter(|c| c["verified_identical_on"].as_array().unwrap().iter().any(|l| l == layout))
        {
            let name = case["name"].as_str().unwrap();
            let generation = pipeline.generate(&request(case)).unwrap_or_else(|e| panic!("{layout}/{name}: {e}"));

            let tokens: Vec<i64> = generation.token_ids().concat();
            let expected = reference(&format!("e2e.{name}.tokens"));
            assert_eq!(tokens, expected.to_vec::<i64>().unwrap(), "{layout}/{name}: tokens");

            let (image, shape) = generation.image_arrays();
            let expected = reference(&format!("e2e.{name}.image"));
            assert_eq!(shape.to_vec(), expected.shape.to_vec(), "{layout}/{name}: image shape");
            let expected = expected.to_vec::<f32>().unwrap();
            let max_err = image.iter().zip(&expected).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
            assert!(max_err <= IMAGE_TOL, "{layout}/{name}: image max abs error {max_err}");

            let rgb: Vec<i64> = generation.rgb8().iter().flat_map(|im| im.as_raw().iter().map(|&b| b as i64)).collect();
            let expected_rgb = reference(&format!("e2e.{name}.image_u8")).to_vec::<i64>().unwrap();
            for (i, (&a, &b)) in rgb.iter().zip(&expected_rgb).enumerate() {
                assert!(
                    a == b || rounding_tie(expected[i]),
                    "{layout}/{name}: pixel {i} is {a}, diffusers {b} (reference value {})",
                    expected[i]
                );
            }
            checked += 1;
        }
    }
    let recorded = |c: &Value| {
        c["verified_identical_on"].as_array().unwrap().iter().filter(|l| layouts.contains(&l.as_str().unwrap())).count()
    };
    let expected: usize = cases().iter().map(recorded).sum();
    assert_eq!(checked, expected, "cases × layouts checked");
    assert!(checked >= at_least, "{checked} cases for {layouts:?}");
}

/// Truncation on the device (bisection in f32 instead of torch's sorted f64 running sum) draws
/// diffusers' tokens on ≥ 99 % of latent pixels, case by case (the bar for f32 on a GPU), with
/// the same torch noise so that only the truncation differs.
#[test]
fn device_truncation_draws_diffusers_tokens_on_nearly_every_pixel() {
    let device = Default::default();
    let pipeline = VQDiffusionPipeline::<B>::from_dir(&fixtures().join("tiny").join("hub"), None, &device).unwrap();
    let (mut same, mut total, mut truncated_cases) = (0, 0, 0);
    for case in cases().iter().filter(|c| c["verified_identical_on"].as_array().unwrap().iter().any(|l| l == "hub")) {
        let name = case["name"].as_str().unwrap();
        let request = request(case).with_truncation_mode(TruncationMode::Device);
        let tokens: Vec<i64> = pipeline.generate(&request).unwrap().token_ids().concat();
        let expected = reference(&format!("e2e.{name}.tokens")).to_vec::<i64>().unwrap();
        assert_eq!(tokens.len(), expected.len(), "{name}");
        let agree = tokens.iter().zip(&expected).filter(|(a, b)| a == b).count();
        assert!(agree * 100 >= 99 * tokens.len(), "{name}: {agree} of {} tokens agree", tokens.len());
        same += agree;
        total += tokens.len();
        truncated_cases += usize::from(case["truncation_rate"].as_f64().unwrap() < 1.0);
    }
    assert!(truncated_cases >= 2, "the cases include truncation rates below 1");
    eprintln!("device truncation: {same} of {total} tokens as diffusers");
}

/// A model whose scores are NaN (here: the text encoder's zero weights, whose prompt states the L2
/// normalisation turns into NaN) still yields ids of the codebook, and the generation says why its
/// images are meaningless. (On CUDA the NaN scores' argmax was −1 and the next step crashed.)
#[test]
fn nan_scores_are_sampled_at_the_floor_with_a_warning() {
    let device = Default::default();
    let mut pipeline = VQDiffusionPipeline::<B>::from_dir(&fixtures().join("tiny").join("hub"), None, &device).unwrap();
    pipeline.text_encoder = pipeline.configs.text_encoder.init(&device).unwrap();
    let request = GenerateRequest::new(["a red circle"]).with_steps(4).with_noise(NoiseSource::Torch { seed: 0 });
    let generation = pipeline.generate(&request).unwrap();
    let codes = pipeline.configs.vqvae.num_vq_embeddings as i64;
    assert!(generation.token_ids().concat().iter().all(|&id| (0..codes).contains(&id)));
    assert_eq!(generation.warnings.len(), 1, "{:?}", generation.warnings);
    assert!(generation.warnings[0].contains("NaN at 4 of 4 steps"), "{}", generation.warnings[0]);
}
