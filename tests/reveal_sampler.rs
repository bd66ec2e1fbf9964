//! Improved VQ-Diffusion's reveal sampler (`Sampler::Reveal`) in the whole pipeline, on the
//! random-weight test pipeline. diffusers has no such sampler, so no reference draws its tokens:
//! these tests check what it promises. Each step at t ≥ 1 reveals ⌈m / t⌉ of the m masked pixels
//! of every image and leaves every other pixel as it was (start tokens included); nothing is
//! masked after t = 1; the t = 0 step gives codebook ids; the same seed gives the same tokens.

use std::path::Path;

use burn::backend::NdArray;
use burn::tensor::{Int, Tensor};
use vq_pipeline::{GenerateRequest, NoiseSource, RevealOrder, Sampler, VQDiffusionPipeline};
use vq_scheduler::reveal_count;

type B = NdArray<f32>;

fn pipeline() -> VQDiffusionPipeline<B> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/tiny/hub");
    VQDiffusionPipeline::<B>::from_dir(&dir, None, &Default::default()).unwrap()
}

/// Latent pixels per image, the mask id and the codebook size.
struct Sizes {
    pixels: usize,
    mask: i64,
    codes: i64,
}

fn sizes(pipeline: &VQDiffusionPipeline<B>) -> Sizes {
    let (h, w) = pipeline.latent_size();
    Sizes {
        pixels: h * w,
        mask: (pipeline.scheduler_config.num_vec_classes - 1) as i64,
        codes: pipeline.configs.vqvae.num_vq_embeddings as i64,
    }
}

fn ids(sample: &Tensor<B, 2, Int>) -> Vec<i64> {
    sample.clone().into_data().convert::<i64>().into_vec::<i64>().unwrap()
}

/// The tokens after every step, as (timestep, ids); the final ids.
fn chain(pipeline: &VQDiffusionPipeline<B>, request: &GenerateRequest) -> (Vec<(usize, Vec<i64>)>, Vec<i64>) {
    let mut states = Vec::new();
    let generation =
        pipeline.generate_with_callback(request, |step| states.push((step.timestep, ids(step.sample)))).unwrap();
    (states, generation.token_ids().concat())
}

/// Checks the promise of every step at t ≥ 1 from `start` on, row by row.
fn check_reveal_steps(states: &[(usize, Vec<i64>)], start: Vec<i64>, pixels: usize, mask: i64, what: &str) {
    let mut before = start;
    for (t, after) in states.iter().filter(|(t, _)| *t >= 1) {
        for (row, (b, a)) in before.chunks(pixels).zip(after.chunks(pixels)).enumerate() {
            let masked = b.iter().filter(|&&id| id == mask).count();
            let still = a.iter().filter(|&&id| id == mask).count();
            assert_eq!(masked - still, reveal_count(masked, *t), "{what}, image {row}, t = {t}");
            let changed = b.iter().zip(a).filter(|(x, y)| **x != mask && x != y).count();
            assert_eq!(changed, 0, "{what}, image {row}, t = {t}: revealed pixels changed");
        }
        before = after.clone();
    }
    assert!(!before.contains(&mask), "{what}: masked pixels left after t = 1");
}

#[test]
fn each_step_reveals_its_share_and_keeps_what_was_revealed() {
    let pipeline = pipeline();
    let Sizes { pixels, mask, codes } = sizes(&pipeline);
    for order in [RevealOrder::Uniform, RevealOrder::Purity { weight: 1.0 }] {
        // Two prompts × two images, guided, truncated.
        let request = GenerateRequest::new(["a red car", "a cat on a mat"])
            .with_steps(8)
            .with_guidance_scale(4.0)
            .with_truncation_rate(0.9)
            .with_images_per_prompt(2)
            .with_sampler(Sampler::Reveal(order))
            .with_noise(NoiseSource::Torch { seed: 3 });
        let (states, tokens) = chain(&pipeline, &request);
        assert_eq!(states.len(), 8);
        check_reveal_steps(&states, vec![mask; 4 * pixels], pixels, mask, &format!("{order:?}"));
        assert!(tokens.iter().all(|id| (0..codes).contains(id)), "{order:?}: final ids outside the codebook");
        assert_eq!(chain(&pipeline, &request).1, tokens, "{order:?}: the same seed drew other tokens");
    }
}

#[test]
fn start_tokens_stay_until_the_last_step() {
    let pipeline = pipeline();
    let Sizes { pixels, mask, codes } = sizes(&pipeline);
    // Every third pixel given, the rest masked.
    let start: Vec<i64> = (0..pixels).map(|i| if i % 3 == 0 { i as i64 % codes } else { mask }).collect();
    let request = GenerateRequest::new(["a blue square"])
        .with_steps(5)
        .with_latents(vec![start.clone()])
        .with_sampler(Sampler::Reveal(RevealOrder::Purity { weight: 0.5 }))
        .with_noise(NoiseSource::Torch { seed: 11 });
    let (states, _) = chain(&pipeline, &request);
    check_reveal_steps(&states, start.clone(), pixels, mask, "start tokens");
    let before_last = &states[states.len() - 2].1;
    for (i, &id) in start.iter().enumerate().filter(|(_, &id)| id != mask) {
        assert_eq!(before_last[i], id, "start token at pixel {i} changed before t = 0");
    }
}

#[test]
fn a_negative_purity_weight_is_refused_by_name() {
    let request = GenerateRequest::new(["a cat"]).with_sampler(Sampler::Reveal(RevealOrder::Purity { weight: -1.0 }));
    let error = pipeline().generate(&request).expect_err("a negative weight is refused").to_string();
    assert!(error.contains("purity_weight") && error.contains("-1"), "{error}");
}
