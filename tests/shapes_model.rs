//! The shapes model shipped in `models/shapes` against diffusers 0.42.1: for every
//! committed case (`fixtures/reference/shapes_cases.json`, written by
//! `xtask/python/check_export.py --cases-out` from the same folder), the torch-compatible
//! generator draws exactly diffusers' final tokens. This is the promise that diffusers loads the
//! model and draws the same pictures for the same seed, kept in CI.

use std::path::{Path, PathBuf};

use burn::backend::NdArray;
use serde_json::Value;
use vq_pipeline::{GenerateRequest, NoiseSource, VQDiffusionPipeline};

type B = NdArray<f32>;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn cases() -> Vec<Value> {
    let path = root().join("fixtures/reference/shapes_cases.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str::<Value>(&text).unwrap().as_array().expect("a list of cases").clone()
}

#[test]
fn the_shipped_model_draws_diffusers_tokens_for_every_case() {
    let device = Default::default();
    let pipeline = VQDiffusionPipeline::<B>::from_dir(&root().join("models/shapes"), None, &device)
        .unwrap_or_else(|e| panic!("models/shapes: {e}"));
    let cases = cases();
    assert!(cases.len() >= 2, "the reference holds {} case(s)", cases.len());
    for case in cases {
        let prompt = case["prompt"].as_str().unwrap();
        let request = GenerateRequest::new([prompt])
            .with_steps(case["steps"].as_u64().unwrap() as usize)
            .with_guidance_scale(case["guidance"].as_f64().unwrap() as f32)
            .with_truncation_rate(case["truncation"].as_f64().unwrap() as f32)
            .with_noise(NoiseSource::Torch { seed: case["seed"].as_u64().unwrap() });
        let generation = pipeline.generate(&request).unwrap_or_else(|e| panic!("{prompt}: {e}"));
        let ours = generation.tokens.into_data().convert::<i64>().into_vec::<i64>().unwrap();
        let theirs: Vec<i64> = case["tokens"][0].as_array().unwrap().iter().map(|t| t.as_i64().unwrap()).collect();
        assert_eq!(theirs.len(), 256, "{prompt}: 16 × 16 latent pixels");
        assert_eq!(ours, theirs, "{prompt}: tokens differ from diffusers'");
    }
}
