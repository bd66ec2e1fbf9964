//! End to end against diffusers 0.42.1: for every committed case (guidance on and off,
//! learned and empty-prompt negatives, truncation < 1, several prompts and images per
//! prompt, a prompt over 77 tokens, several seeds and step counts) and every layout the case
//! was recorded for, the torch-compatible generator gives exactly diffusers' final tokens
//! and 8-bit pixels, and the float image within 1e-5.

use std::path::{Path, PathBuf};

use burn::backend::NdArray;
use serde_json::Value;
use vq_pipeline::{GenerateRequest, NoiseSource, VQDiffusionPipeline};

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
    let device = Default::default();
    let mut checked = 0;
    for layout in ["hub", "raw", "bin", "nolearn"] {
        let pipeline = VQDiffusionPipeline::<B>::from_dir(&fixtures().join("tiny").join(layout), None, &device)
            .unwrap_or_else(|e| panic!("{layout}: {e}"));
        for case in cases().iter().filter(|c| c["verified_identical_on"].as_array().unwrap().iter().any(|l| l == layout)) {
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
    let expected: usize = cases().iter().map(|c| c["verified_identical_on"].as_array().unwrap().len()).sum();
    assert_eq!(checked, expected, "cases × layouts checked");
    assert!(checked >= 26);
}
