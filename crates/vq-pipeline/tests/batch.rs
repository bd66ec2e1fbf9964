//! Several requests in one batch (`generate_batch`): each request gets exactly the tokens it
//! gets alone — diffusers' tokens for the committed cases — on the tiny fixture pipeline.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use burn::backend::NdArray;
use serde_json::Value;
use vq_pipeline::{
    BatchKey, GenerateRequest, KernelBackend, NoiseSource, PipelineError, RevealOrder, Sampler, VQDiffusionPipeline,
};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

fn pipeline<B: KernelBackend>() -> VQDiffusionPipeline<B> {
    VQDiffusionPipeline::from_dir(&fixtures().join("tiny/hub"), None, &Default::default()).expect("tiny pipeline")
}

/// The committed end-to-end case `name`: its request and diffusers' tokens, one row per image.
fn case(name: &str) -> (GenerateRequest, Vec<Vec<i64>>) {
    let text = std::fs::read_to_string(fixtures().join("reference/cases.json")).expect("cases.json");
    let json: Value = serde_json::from_str(&text).expect("JSON");
    let case = json["cases"].as_array().expect("cases").iter().find(|c| c["name"] == name).expect("case").clone();
    let prompts: Vec<String> = match &case["prompt"] {
        Value::String(p) => vec![p.clone()],
        Value::Array(ps) => ps.iter().map(|p| p.as_str().expect("prompt").to_string()).collect(),
        other => panic!("bad prompt {other}"),
    };
    let request = GenerateRequest::new(prompts)
        .with_steps(case["num_inference_steps"].as_u64().expect("steps") as usize)
        .with_guidance_scale(case["guidance_scale"].as_f64().expect("guidance") as f32)
        .with_truncation_rate(case["truncation_rate"].as_f64().expect("truncation") as f32)
        .with_images_per_prompt(case["num_images_per_prompt"].as_u64().expect("n") as usize)
        .with_noise(NoiseSource::Torch { seed: case["seed"].as_u64().expect("seed") });
    let tokens = vq_weights::read_tensor(&fixtures().join("reference/tiny.safetensors"), &format!("e2e.{name}.tokens"))
        .expect("reference tokens")
        .to_vec::<i64>()
        .expect("i64 tokens");
    let rows = request.batch_size();
    let pixels = tokens.len() / rows;
    (request, tokens.chunks(pixels).map(<[i64]>::to_vec).collect())
}

fn continue_always<B: KernelBackend>(_: &vq_pipeline::StepState<'_, B>) -> ControlFlow<()> {
    ControlFlow::Continue(())
}

/// Guidance 5, truncation 1, 10 steps: one image, two prompts × two images, a prompt over 77
/// tokens (with its warning) and another seed, as one batch of 7 images.
fn batch_of_cases_gives_each_case_diffusers_tokens<B: KernelBackend>() {
    let pipeline = pipeline::<B>();
    let cases: Vec<_> = ["g5_learned", "two_prompts_x2", "long_prompt", "seed42"].into_iter().map(case).collect();
    let requests: Vec<GenerateRequest> = cases.iter().map(|(r, _)| r.clone()).collect();
    let mut steps = Vec::new();
    let generations = pipeline
        .generate_batch(&requests, |step| {
            assert_eq!(step.sample.dims()[0], 7, "one batch of every request's rows");
            steps.push(step.index);
            ControlFlow::Continue(())
        })
        .expect("batch");
    assert_eq!(steps, (0..10).collect::<Vec<_>>());
    assert_eq!(generations.len(), 4);
    for ((request, expected), generation) in cases.iter().zip(&generations) {
        assert_eq!(&generation.token_ids(), expected, "{:?}", request.prompts);
        assert_eq!(generation.images.dims()[0], request.batch_size());
        let alone = pipeline.generate(request).expect("alone");
        assert_eq!(generation.warnings, alone.warnings, "{:?}", request.prompts);
        assert_eq!(generation.rgb8(), alone.rgb8(), "{:?}: pixels", request.prompts);
    }
    assert_eq!(generations[2].warnings.len(), 1, "the long prompt's warning, with its request only");
    assert!(generations[2].warnings[0].contains("CLIP reads the first 77"), "{:?}", generations[2].warnings);
}

#[test]
fn batch_of_cases_gives_each_case_diffusers_tokens_ndarray() {
    batch_of_cases_gives_each_case_diffusers_tokens::<NdArray>();
}

#[cfg(feature = "flex")]
#[test]
fn batch_of_cases_gives_each_case_diffusers_tokens_flex() {
    batch_of_cases_gives_each_case_diffusers_tokens::<burn::backend::Flex>();
}

#[test]
fn truncated_cases_batch_too() {
    let pipeline = pipeline::<NdArray>();
    let cases: Vec<_> = ["trunc086", "seed_2pow32_plus5_trunc086"].into_iter().map(case).collect();
    let requests: Vec<GenerateRequest> = cases.iter().map(|(r, _)| r.clone()).collect();
    let generations = pipeline.generate_batch(&requests, continue_always).expect("batch");
    for ((_, expected), generation) in cases.iter().zip(&generations) {
        assert_eq!(&generation.token_ids(), expected);
    }
}

/// The reveal samplers draw two tensors a step (candidates and reveal keys): both split by rows.
#[test]
fn reveal_samplers_batch_request_by_request() {
    let pipeline = pipeline::<NdArray>();
    for sampler in [Sampler::Reveal(RevealOrder::Uniform), Sampler::Reveal(RevealOrder::Purity { weight: 1.0 })] {
        let requests = [
            GenerateRequest::new(["a red circle", "a blue square"]).with_images_per_prompt(2),
            GenerateRequest::new(["a green triangle"]).with_noise(NoiseSource::Torch { seed: 7 }),
        ]
        .map(|r| r.with_steps(6).with_sampler(sampler));
        let generations = pipeline.generate_batch(&requests, continue_always).expect("batch");
        for (request, generation) in requests.iter().zip(&generations) {
            assert_eq!(generation.token_ids(), pipeline.generate(request).expect("alone").token_ids(), "{sampler:?}");
        }
    }
}

/// Start tokens stay with their request; requests without take all-mask rows.
#[test]
fn start_tokens_stay_with_their_request() {
    let pipeline = pipeline::<NdArray>();
    let start = GenerateRequest::new(["a cat"]).with_steps(4);
    let with_latents = start.clone().with_latents(vec![(0..64).map(|i| i % 31).collect()]);
    let requests = [start.clone().with_noise(NoiseSource::Torch { seed: 3 }), with_latents];
    let generations = pipeline.generate_batch(&requests, continue_always).expect("batch");
    for (request, generation) in requests.iter().zip(&generations) {
        assert_eq!(generation.token_ids(), pipeline.generate(request).expect("alone").token_ids());
    }
}

#[test]
fn requests_that_differ_in_settings_or_draw_device_noise_are_refused() {
    let pipeline = pipeline::<NdArray>();
    let a = GenerateRequest::new(["a cat"]).with_steps(3);
    for (other, name) in [
        (a.clone().with_steps(4), "requests"),
        (a.clone().with_guidance_scale(2.0), "requests"),
        (a.clone().with_truncation_rate(0.5), "requests"),
        (a.clone().with_noise(NoiseSource::Device { seed: Some(1) }), "noise"),
        (a.clone().with_steps(0), "num_inference_steps"),
    ] {
        match pipeline.generate_batch(&[a.clone(), other], continue_always) {
            Err(PipelineError::InvalidArgument { name: found, .. }) => assert_eq!(found, name),
            other => panic!("expected an invalid {name}, got {:?}", other.map(|g| g.len())),
        }
    }
    assert!(pipeline.generate_batch(&[], continue_always).expect("empty").is_empty());
}

#[test]
fn batch_keys_ignore_rows_and_seeds_only() {
    let a = GenerateRequest::new(["a cat"]).with_steps(3);
    let same = GenerateRequest::new(["x", "y"])
        .with_steps(3)
        .with_images_per_prompt(4)
        .with_noise(NoiseSource::Torch { seed: 9 })
        .with_latents(vec![vec![0; 64]; 8]);
    assert_eq!(BatchKey::of(&a), BatchKey::of(&same));
    assert_ne!(BatchKey::of(&a), BatchKey::of(&a.clone().with_callback_steps(2)));
    assert_ne!(BatchKey::of(&a), BatchKey::of(&a.clone().with_sampler(Sampler::Reveal(RevealOrder::Uniform))));
    assert_ne!(BatchKey::of(&a), BatchKey::of(&a.clone().with_noise(NoiseSource::Device { seed: None })));
}

#[test]
fn a_callback_that_breaks_cancels_the_batch() {
    let pipeline = pipeline::<NdArray>();
    let requests = [GenerateRequest::new(["a cat"]).with_steps(5)];
    let result = pipeline.generate_batch(&requests, |step| match step.index {
        2 => ControlFlow::Break(()),
        _ => ControlFlow::Continue(()),
    });
    assert!(matches!(result, Err(PipelineError::Cancelled { step: 2 })), "{:?}", result.map(|g| g.len()));
}
