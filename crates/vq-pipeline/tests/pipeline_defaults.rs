//! A loaded pipeline's own defaults reach the library as they reach the command line:
//! `VQDiffusionPipeline::request` starts from the model's step count and its
//! `sampling_defaults.json`, and `unknown_words` names what its `vocabulary.json` lacks.

use std::path::{Path, PathBuf};

use burn::backend::NdArray;
use vq_pipeline::{GenerateRequest, LoadOptions, NoiseSource, VQDiffusionPipeline};

type B = NdArray<f32>;

fn workspace(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(path)
}

fn load(path: &str) -> VQDiffusionPipeline<B> {
    let dir = workspace(path).display().to_string();
    VQDiffusionPipeline::from_pretrained(&dir, &LoadOptions::default(), &Default::default())
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn the_shipped_model_starts_requests_from_its_own_defaults() {
    let pipeline = load("models/shapes");
    let request = pipeline.request(["a large red circle in the center on a blue background"]);
    assert_eq!(pipeline.default_steps(), 50);
    assert_eq!(
        (request.num_inference_steps, request.guidance_scale, request.truncation_rate),
        (50, 3.0, 0.7),
        "the model's 50 steps and sampling_defaults.json"
    );
    // Everything else is GenerateRequest::new's.
    let diffusers = GenerateRequest::new(["a large red circle in the center on a blue background"]);
    assert_eq!(request, diffusers.clone().with_steps(50).with_guidance_scale(3.0).with_truncation_rate(0.7));
    // diffusers' 100 steps are more than this model has.
    let error = pipeline.generate(&diffusers).unwrap_err().to_string();
    assert!(error.contains("100 is outside 1..=50") && error.contains("VQDiffusionPipeline::request"), "{error}");

    // The request as it comes passes the checks a generation makes first (the next test draws
    // with these defaults; 50 unoptimised steps would take minutes in a test build).
    let (h, w) = pipeline.latent_size();
    let mask_id = pipeline.configs.vqvae.num_vq_embeddings;
    request.validate(pipeline.scheduler_config.num_train_timesteps, h * w, mask_id).expect("the model's own defaults");
}

#[test]
fn the_shipped_defaults_draw_diffusers_tokens_for_diffusers_settings() {
    // fixtures/reference/shapes_cases.json's third case: guidance 3 and truncation 0.7 (the
    // model's defaults), 10 steps, torch seed 0.
    let text = std::fs::read_to_string(workspace("fixtures/reference/shapes_cases.json")).unwrap();
    let cases: serde_json::Value = serde_json::from_str(&text).unwrap();
    let case = &cases[2];
    assert_eq!((case["guidance"].as_f64(), case["truncation"].as_f64()), (Some(3.0), Some(0.7)));
    let pipeline = load("models/shapes");
    let request = pipeline
        .request([case["prompt"].as_str().unwrap()])
        .with_steps(case["steps"].as_u64().unwrap() as usize)
        .with_noise(NoiseSource::Torch { seed: case["seed"].as_u64().unwrap() });
    let expected: Vec<i64> = case["tokens"][0].as_array().unwrap().iter().map(|t| t.as_i64().unwrap()).collect();
    assert_eq!(pipeline.generate(&request).unwrap().token_ids()[0], expected);
}

#[test]
fn a_pipeline_without_recommendations_starts_from_diffusers_defaults() {
    let pipeline = load("fixtures/tiny/hub");
    assert_eq!(pipeline.request(["a cat"]), GenerateRequest::new(["a cat"]));
    assert_eq!(pipeline.unknown_words("a photo of a cat"), Vec::<String>::new(), "no vocabulary.json");
}

#[test]
fn the_shipped_model_names_the_words_it_never_learned() {
    let pipeline = load("models/shapes");
    assert_eq!(pipeline.unknown_words("a photo of a cat"), ["photo", "of", "cat"]);
    assert_eq!(
        pipeline.unknown_words("A small red circle in the top left, on a blue background."),
        Vec::<String>::new()
    );
    assert_eq!(pipeline.unknown_words("two red circles"), ["two", "circles"]);
}
