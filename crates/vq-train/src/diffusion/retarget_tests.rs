//! Retargeting a pipeline onto a VQ-VAE with other codes, and stage 2 started from a pipeline.

use std::path::{Path, PathBuf};

use burn::backend::Autodiff;
use proptest::prelude::*;
use vq_pipeline::VQDiffusionPipeline;
use vq_scheduler::VQDiffusionSchedulerConfig;

use super::tests::{assert_same, random_vqvae, rewritten_vqvae, tiny_export, tiny_model_config, toy_vq_config, B};
use super::{match_codes, retarget_pipeline, train_diffusion, write_pipeline, DiffusionTrainConfig, TextToTokens};
use crate::data::DatasetConfig;
use crate::text::{caption_words, write_trimmed_tokenizer};
use crate::train::export::{read_json, StoreDtype, TRANSFORMER_RENAMES};
use crate::train::test_support::temp_dir;
use crate::train::RunConfig;

fn tensor(file: &Path, name: &str) -> (Vec<usize>, Vec<f32>) {
    let data = vq_weights::read_tensor(file, name).unwrap();
    (data.shape.to_vec(), data.convert::<f32>().into_vec::<f32>().unwrap())
}

fn row(values: &[f32], width: usize, index: usize) -> &[f32] {
    &values[index * width..(index + 1) * width]
}

#[test]
fn codes_are_matched_to_their_most_frequent_old_code_and_share_its_probability() {
    // counts[new][old], K_new = 4, K_old = 3: new 0 and 1 both replace old 2 (30 and 10 times),
    // new 2 replaces old 0 (5) and once old 1, new 3 is never drawn.
    let counts = [0, 0, 30, 1, 0, 10, 5, 1, 0, 0, 0, 0];
    let matched = match_codes(&counts, 4, 3);
    assert_eq!(matched.old_of_new, [2, 2, 0, 2], "an unused code takes the most frequent old code (2)");
    let expected = [0.75f64.ln(), 0.25f64.ln(), 0.0, -(48f64.ln())];
    for (share, expected) in matched.log_share.iter().zip(expected) {
        assert!((share - expected).abs() < 1e-12, "{:?}", matched.log_share);
    }
    assert_eq!(matched.unused, 1);
    assert!((matched.agreement - 45.0 / 47.0).abs() < 1e-12);

    // A permutation is matched exactly.
    let permutation = [2, 0, 3, 1];
    let counts: Vec<u64> = (0..16).map(|i| if permutation[i / 4] == i % 4 { 7 } else { 0 }).collect();
    let matched = match_codes(&counts, 4, 4);
    assert_eq!(matched.old_of_new, permutation);
    assert_eq!(matched.log_share, [0.0; 4]);
    assert_eq!(matched.agreement, 1.0);
}

proptest! {
    /// Each old code's probability is split without loss among the drawn new codes matched to
    /// it, and every drawn new code takes an old code it co-occurs with most.
    #[test]
    fn shares_of_an_old_code_sum_to_one(k_new in 1usize..6, k_old in 1usize..6, seed in any::<u64>()) {
        let mut rng = crate::rng::SplitMix64::new(seed);
        let counts: Vec<u64> = (0..k_new * k_old).map(|_| if rng.bernoulli(0.4) { rng.below(20) as u64 } else { 0 }).collect();
        let matched = match_codes(&counts, k_new, k_old);
        let drawn = |new: usize| counts[new * k_old..(new + 1) * k_old].iter().any(|&c| c > 0);
        for old in 0..k_old {
            let total: f64 = (0..k_new)
                .filter(|&new| drawn(new) && matched.old_of_new[new] == old)
                .map(|new| matched.log_share[new].exp())
                .sum();
            let used = (0..k_new).any(|new| drawn(new) && matched.old_of_new[new] == old);
            prop_assert!(!used || (total - 1.0).abs() < 1e-9, "old {old}: shares sum to {total}");
        }
        for new in (0..k_new).filter(|&new| drawn(new)) {
            let row = &counts[new * k_old..(new + 1) * k_old];
            prop_assert_eq!(row[matched.old_of_new[new]], *row.iter().max().unwrap());
        }
        prop_assert!((0.0..=1.0).contains(&matched.agreement));
    }
}

#[test]
fn a_permuted_codebook_gets_the_transformer_rows_of_the_codes_it_replaces() {
    let dir = temp_dir("retarget-permuted");
    let device = Default::default();
    tiny_export(&dir, StoreDtype::F32);
    let pipeline = dir.join("pipeline");
    // New code j is old code source[j] (5 is coprime with 16).
    let source: Vec<usize> = (0..16).map(|j| (5 * j + 3) % 16).collect();
    rewritten_vqvae(&pipeline.join("vqvae"), &dir.join("permuted"), |name, shape, values| {
        if name != "quantize.embedding.weight" {
            return values;
        }
        let width = shape[1];
        source.iter().flat_map(|&old| row(&values, width, old).to_vec()).collect()
    });
    let out = dir.join("out");
    let matched =
        retarget_pipeline::<B>(&pipeline, &dir.join("permuted"), &out, 16, StoreDtype::F32, &device, &mut |_| {})
            .unwrap();
    assert_eq!(matched.agreement, 1.0);
    // How many codes a random VQ-VAE draws depends on its initialisation (burn's unseeded global
    // RNG, shared by tests running in parallel): 10 of 16 on 16 images in one run, fewer in another.
    // Every drawn one is checked.
    assert!(matched.unused < 16, "no code drawn");

    let file = |dir: &Path| dir.join("transformer/diffusion_pytorch_model.safetensors");
    let (old_embedding, new_embedding) = (
        tensor(&file(&pipeline), "latent_image_embedding.emb.weight"),
        tensor(&file(&out), "latent_image_embedding.emb.weight"),
    );
    let (old_out, new_out) = (tensor(&file(&pipeline), "out.weight"), tensor(&file(&out), "out.weight"));
    let (old_bias, new_bias) = (tensor(&file(&pipeline), "out.bias"), tensor(&file(&out), "out.bias"));
    assert_eq!(new_embedding.0, old_embedding.0);
    let width = old_embedding.0[1];
    let mut drawn = 0;
    for (new, &old) in matched.old_of_new.iter().enumerate() {
        if matched.log_share[new] != 0.0 {
            continue; // never drawn in the counted images
        }
        drawn += 1;
        assert_eq!(old, source[new], "new code {new}");
        assert_eq!(row(&new_embedding.1, width, new), row(&old_embedding.1, width, old));
        assert_eq!(row(&new_out.1, width, new), row(&old_out.1, width, old));
        assert_eq!(new_bias.1[new], old_bias.1[old]);
    }
    assert_eq!(drawn, 16 - matched.unused);
    assert_eq!(row(&new_embedding.1, width, 16), row(&old_embedding.1, width, 16), "the mask class stays last");
    VQDiffusionPipeline::<B>::from_dir(&out, None, &device).expect("the retargeted pipeline loads");
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn a_codebook_of_another_size_resizes_the_transformer_and_the_scheduler() {
    let dir = temp_dir("retarget-resized");
    let device = Default::default();
    tiny_export(&dir, StoreDtype::F16);
    let pipeline = dir.join("pipeline");
    let vq_config = vq_model::VQModelConfig { num_vq_embeddings: 32, ..toy_vq_config(32) };
    random_vqvae(&vq_config, &dir.join("k32"));
    let error =
        retarget_pipeline::<B>(&pipeline, &dir.join("k32"), &pipeline, 0, StoreDtype::F16, &device, &mut |_| {});
    assert!(error.unwrap_err().to_string().contains("at least one image"));
    // In place: the pipeline folder is rewritten.
    let mut heard = Vec::new();
    let matched =
        retarget_pipeline::<B>(&pipeline, &dir.join("k32"), &pipeline, 8, StoreDtype::F16, &device, &mut |l| {
            heard.push(l.to_string())
        })
        .unwrap();
    assert_eq!(heard, ["encoded 8 of 8 images with both VQ-VAEs"]);
    assert_eq!(matched.old_of_new.len(), 32);
    let json = |path: &str| read_json::<serde_json::Value>(&pipeline.join(path)).unwrap();
    assert_eq!(json("transformer/config.json")["num_vector_embeds"], 33);
    assert_eq!(json("scheduler/scheduler_config.json")["num_vec_classes"], 33);
    let file = pipeline.join("transformer/diffusion_pytorch_model.safetensors");
    assert_eq!(tensor(&file, "latent_image_embedding.emb.weight").0, [33, 16]);
    assert_eq!(tensor(&file, "out.weight").0, [32, 16]);
    assert_eq!(tensor(&file, "out.bias").0, [32]);

    let loaded = VQDiffusionPipeline::<B>::from_dir(&pipeline, None, &device).expect("the retargeted pipeline loads");
    let request = vq_pipeline::GenerateRequest::new(["a red circle"]).with_steps(10).with_guidance_scale(3.0);
    let tokens = loaded.generate(&request).expect("generates").token_ids();
    assert!(tokens.iter().flatten().all(|&t| (0..32).contains(&t)), "{tokens:?}");
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn a_pipeline_loads_back_as_the_model_it_was_exported_from() {
    let dir = temp_dir("init-load");
    let device = Default::default();
    let (model, config) = tiny_export(&dir, StoreDtype::F32);
    let pipeline = dir.join("pipeline");
    let (loaded_config, loaded) = TextToTokens::<B>::from_pipeline(&pipeline, &device).unwrap();
    assert_eq!(loaded_config, config);
    assert_same(&model.transformer, &loaded.transformer, TRANSFORMER_RENAMES, 0.0);
    assert_same(&model.text_encoder, &loaded.text_encoder, &[], 0.0);
    loaded.null_embedding.val().into_data().assert_eq(&model.null_embedding.val().into_data(), true);
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn stage_two_starts_from_a_pipeline_and_refuses_one_with_other_codes() {
    let dir = temp_dir("init-train");
    let device = Default::default();
    // The data's VQ-VAE: 24-pixel images, 12 × 12 tokens of K = 16; a pipeline of that size.
    let vq_config = toy_vq_config(24);
    random_vqvae(&vq_config, &dir.join("vqvae"));
    let clip = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/tiny/hub/tokenizer");
    let vocab_size = write_trimmed_tokenizer(&clip, &dir.join("tok"), &caption_words(), 32).unwrap();
    let model_config = tiny_model_config(12, vocab_size);
    let mut scheduler = VQDiffusionSchedulerConfig::new(17);
    scheduler.num_train_timesteps = 10;
    let start = dir.join("start");
    let model = model_config.init::<B>(&device).unwrap();
    write_pipeline(&model, &model_config, &dir.join("vqvae"), &dir.join("tok"), &scheduler, &start, StoreDtype::F16)
        .unwrap();

    // Learning rate 0: the exported raw weights are the starting pipeline's. The size flags
    // (6 layers by default) give way to the pipeline's 2.
    let config = |vqvae: &str| {
        let defaults = DiffusionTrainConfig::default();
        DiffusionTrainConfig {
            run: RunConfig {
                out_dir: dir.join("run"),
                init_from: Some(start.clone()),
                batch_size: 2,
                steps: 1,
                learning_rate: 0.0,
                workers: 1,
                dataset: DatasetConfig { image_size: 24, ..DatasetConfig::default() },
                ..defaults.run
            },
            vqvae_dir: dir.join(vqvae),
            clip_tokenizer_dir: clip.clone(),
            ema_decay: 0.0,
            ..defaults
        }
    };
    train_diffusion::<Autodiff<B>>(&config("vqvae"), &device, &mut |_| {}).unwrap();
    for file in [
        "transformer/diffusion_pytorch_model.safetensors",
        "text_encoder/model.safetensors",
        "learned_classifier_free_sampling_embeddings/diffusion_pytorch_model.safetensors",
    ] {
        let read = |dir: &Path| vq_weights::read_all_tensors(&dir.join(file)).unwrap();
        let (trained, started) = (read(&dir.join("run/pipeline")), read(&start));
        assert_eq!(trained.len(), started.len(), "{file}");
        for ((name, a), (_, b)) in trained.iter().zip(&started) {
            assert_eq!(a.as_bytes(), b.as_bytes(), "{file}: {name}");
        }
    }

    // A VQ-VAE of K = 32 has other codes: refused, naming the mismatch.
    let k32 = vq_model::VQModelConfig { num_vq_embeddings: 32, ..vq_config };
    random_vqvae(&k32, &dir.join("k32"));
    std::fs::remove_dir_all(dir.join("run")).unwrap();
    let error = train_diffusion::<Autodiff<B>>(&config("k32"), &device, &mut |_| {}).unwrap_err();
    assert!(error.to_string().contains("K (the VQ-VAE's codes) is 16 there and 32 here"), "{error}");
    std::fs::remove_dir_all(dir).ok();
}
