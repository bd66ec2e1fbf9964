use std::path::{Path, PathBuf};

use burn::backend::NdArray;
use burn::module::Module;
use vq_model::VQModelConfig;
use vq_pipeline::{NegativeEmbeddings, VQDiffusionPipeline};
use vq_scheduler::VQDiffusionSchedulerConfig;

use super::{write_pipeline, TextToTokens, TextToTokensConfig};
use crate::text::{caption_words, write_trimmed_tokenizer};
use crate::train::export::{pytorch_tensors, StoreDtype, TRANSFORMER_RENAMES, VQ_MODEL_RENAMES};
use crate::train::test_support::{assert_rewarmed, learning_rates, temp_dir};
use crate::vqvae::write_vqvae_dir;

pub(super) type B = NdArray<f32>;

/// A two-level VQ-VAE (8 and 16 channels, K = 16 codes of width 4) for images of `sample_size`.
pub(super) fn toy_vq_config(sample_size: usize) -> VQModelConfig {
    VQModelConfig {
        down_block_types: vec!["DownEncoderBlock2D".into(); 2],
        up_block_types: vec!["UpDecoderBlock2D".into(); 2],
        block_out_channels: vec![8, 16],
        latent_channels: 4,
        vq_embed_dim: Some(4),
        num_vq_embeddings: 16,
        norm_num_groups: 4,
        sample_size,
        ..VQModelConfig::default()
    }
}

/// Writes a randomly initialised VQ-VAE of `config` (f32) as the `vqvae/` folder `dir`.
pub(super) fn random_vqvae(config: &VQModelConfig, dir: &Path) {
    write_vqvae_dir(&config.init::<B>(&Default::default()).unwrap(), config, dir, StoreDtype::F32).unwrap();
}

/// A tiny stage-2 model over the toy VQ-VAE's K = 16 codes with T = 10: transformer 2 × 8 wide,
/// text encoder 16 wide, on a `latent_size` grid, for the trimmed tokenizer's vocabulary (EOT last).
pub(super) fn tiny_model_config(latent_size: usize, vocab_size: usize) -> TextToTokensConfig {
    TextToTokensConfig {
        num_classes: 16,
        latent_size,
        num_timesteps: 10,
        heads: 2,
        head_dim: 8,
        layers: 2,
        vocab_size,
        text_width: 16,
        text_layers: 2,
        text_heads: 2,
        text_length: 32,
        eos_token_id: vocab_size as i64 - 1,
    }
}

/// A tiny pipeline: VQ-VAE with 2 levels (32 px → 16 × 16 tokens would need 3; 2 levels on
/// 16 px give 8 × 8), K = 16, transformer 2 × 8 wide, text encoder 16 wide.
pub(super) fn tiny_export(dir: &Path, dtype: StoreDtype) -> (TextToTokens<B>, TextToTokensConfig) {
    let device = Default::default();
    let vq_config = toy_vq_config(VQModelConfig::default().sample_size);
    let vqvae = vq_config.init::<B>(&device).unwrap();
    write_vqvae_dir(&vqvae, &vq_config, &dir.join("stage1"), StoreDtype::F32).unwrap();
    let tokenizer_source = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/tiny/hub/tokenizer");
    let vocab_size = write_trimmed_tokenizer(&tokenizer_source, &dir.join("tok"), &caption_words(), 32).unwrap();
    let config = tiny_model_config(8, vocab_size);
    let model = config.init::<B>(&device).unwrap();
    let mut scheduler = VQDiffusionSchedulerConfig::new(17);
    scheduler.num_train_timesteps = 10;
    write_pipeline(&model, &config, &dir.join("stage1"), &dir.join("tok"), &scheduler, &dir.join("pipeline"), dtype)
        .unwrap();
    (model, config)
}

pub(super) fn assert_same<M: Module<B> + burn_store::ModuleSnapshot<B>>(
    a: &M,
    b: &M,
    renames: &[(&str, &str)],
    tolerance: f32,
) {
    let left = pytorch_tensors(a, "", renames).unwrap();
    let right = pytorch_tensors(b, "", renames).unwrap();
    assert_eq!(left.len(), right.len());
    for ((name_a, shape_a, values_a), (name_b, shape_b, values_b)) in left.iter().zip(&right) {
        assert_eq!((name_a, shape_a), (name_b, shape_b));
        let worst =
            values_a.iter().zip(values_b).map(|(x, y)| (x - y).abs() / x.abs().max(1e-3)).fold(0.0f32, f32::max);
        assert!(worst <= tolerance, "{name_a}: relative error {worst}");
    }
}

#[test]
fn the_export_loads_in_the_pipeline_with_the_same_parameters() {
    let dir = temp_dir("export-f32");
    let (model, config) = tiny_export(&dir, StoreDtype::F32);
    let pipeline =
        VQDiffusionPipeline::<B>::from_dir(&dir.join("pipeline"), None, &Default::default()).expect("pipeline loads");
    assert_eq!(pipeline.tokenizer.model_max_length(), 32);
    assert_eq!(pipeline.tokenizer.pad_id(), 0);
    assert_eq!(pipeline.configs.text_encoder, config.text_encoder());
    assert_same(&model.transformer, &pipeline.transformer, TRANSFORMER_RENAMES, 0.0);
    assert_same(&model.text_encoder, &pipeline.text_encoder, &[], 0.0);
    let stage1 = vq_model::VQModel::<B>::from_pretrained(&dir.join("stage1"), None, &Default::default()).unwrap();
    assert_same(&stage1, &pipeline.vqvae, VQ_MODEL_RENAMES, 0.0);
    let NegativeEmbeddings::Learned(null) = &pipeline.negative else { panic!("learned null embedding expected") };
    null.clone().into_data().assert_eq(&model.null_embedding.val().into_data(), true);
    // The caption words are the vocabulary: the command line names the rest.
    let vocabulary = pipeline.vocabulary.as_ref().expect("vocabulary.json exported");
    assert_eq!(vocabulary.words.iter().cloned().collect::<Vec<_>>(), caption_words());
    assert_eq!(pipeline.unknown_words("a photo of a red circle"), ["photo", "of"]);

    // The exported keys are diffusers' names.
    let keys = vq_weights::read_tensor(
        &dir.join("pipeline/transformer/diffusion_pytorch_model.safetensors"),
        "transformer_blocks.1.ff.net.0.proj.weight",
    )
    .unwrap();
    assert_eq!(keys.shape.as_slice(), [64, 16], "Linear weights are [out, in]");
    vq_weights::read_tensor(&dir.join("pipeline/text_encoder/model.safetensors"), "text_model.final_layer_norm.weight")
        .unwrap();
    vq_weights::read_tensor(
        &dir.join("pipeline/vqvae/diffusion_pytorch_model.safetensors"),
        "decoder.up_blocks.0.upsamplers.0.conv.weight",
    )
    .unwrap();
    vq_weights::read_tensor(
        &dir.join("pipeline/vqvae/diffusion_pytorch_model.safetensors"),
        "encoder.mid_block.attentions.0.to_out.0.weight",
    )
    .unwrap();

    // It generates.
    let request = vq_pipeline::GenerateRequest::new(["a red circle"]).with_steps(10).with_guidance_scale(3.0);
    let generation = pipeline.generate(&request).expect("generates");
    assert_eq!(generation.rgb8()[0].dimensions(), (16, 16));
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn the_f16_export_rounds_every_parameter_to_half_precision() {
    let dir = temp_dir("export-f16");
    let (model, _) = tiny_export(&dir, StoreDtype::F16);
    let pipeline =
        VQDiffusionPipeline::<B>::from_dir(&dir.join("pipeline"), None, &Default::default()).expect("pipeline loads");
    // f16 has an 11-bit significand: relative error ≤ 2⁻¹¹ for normal values.
    assert_same(&model.transformer, &pipeline.transformer, TRANSFORMER_RENAMES, 1.0 / 2048.0 + 1e-6);
    assert_same(&model.text_encoder, &pipeline.text_encoder, &[], 1.0 / 2048.0 + 1e-6);
    std::fs::remove_dir_all(dir).ok();
}

/// Writes `dir` as a copy of `vqvae_dir` (f32) with each tensor passed through `edit(name,
/// shape, values)`.
pub(super) fn rewritten_vqvae(vqvae_dir: &Path, dir: &Path, edit: impl Fn(&str, &[usize], Vec<f32>) -> Vec<f32>) {
    use crate::train::export::{write_safetensors, NamedTensor};
    let file = vqvae_dir.join("diffusion_pytorch_model.safetensors");
    let tensors: Vec<NamedTensor> = vq_weights::read_all_tensors(&file)
        .unwrap()
        .into_iter()
        .map(|(name, data)| {
            let shape = data.shape.to_vec();
            let values = edit(&name, &shape, data.convert::<f32>().into_vec::<f32>().unwrap());
            (name, shape, values)
        })
        .collect();
    std::fs::create_dir_all(dir).unwrap();
    std::fs::copy(vqvae_dir.join("config.json"), dir.join("config.json")).unwrap();
    write_safetensors(&dir.join("diffusion_pytorch_model.safetensors"), &tensors, StoreDtype::F32).unwrap();
}

/// Writes `dir` as a copy of `vqvae_dir` (f32) whose tensors under `prefix` are doubled.
fn doubled_vqvae(vqvae_dir: &Path, prefix: &str, dir: &Path) {
    rewritten_vqvae(vqvae_dir, dir, |name, _, values| {
        let scale = if name.starts_with(prefix) { 2.0 } else { 1.0 };
        values.into_iter().map(|v| v * scale).collect()
    });
}

#[test]
fn a_decoder_only_vqvae_replaces_the_pipelines_and_one_with_other_codes_is_refused() {
    use super::swap_vqvae;
    let dir = temp_dir("swap-vqvae");
    let device = Default::default();
    tiny_export(&dir, StoreDtype::F16);
    let pipeline = dir.join("pipeline");
    let tensor = |dir: &Path, name: &str| {
        let data = vq_weights::read_tensor(&dir.join("diffusion_pytorch_model.safetensors"), name).unwrap();
        data.convert::<f32>().into_vec::<f32>().unwrap()
    };

    // A new decoder (f32 on disk; the frozen f16 encoder comes back bit-identical) goes in.
    doubled_vqvae(&pipeline.join("vqvae"), "decoder.", &dir.join("tuned"));
    swap_vqvae::<B>(&pipeline, &dir.join("tuned"), &dir.join("out"), StoreDtype::F16, &device).unwrap();
    let name = "decoder.conv_out.weight";
    let original = tensor(&pipeline.join("vqvae"), name);
    let expected: Vec<f32> = original.iter().map(|v| v * 2.0).collect();
    assert_eq!(tensor(&dir.join("out/vqvae"), name), expected);
    let encoder = "encoder.conv_in.weight";
    assert_eq!(tensor(&dir.join("out/vqvae"), encoder), tensor(&pipeline.join("vqvae"), encoder));
    for file in
        ["transformer/diffusion_pytorch_model.safetensors", "text_encoder/model.safetensors", "model_index.json"]
    {
        assert_eq!(std::fs::read(pipeline.join(file)).unwrap(), std::fs::read(dir.join("out").join(file)).unwrap());
    }
    VQDiffusionPipeline::<B>::from_dir(&dir.join("out"), None, &device).expect("the new pipeline loads");

    // Other codes: refused, naming the first tensor that differs; the pipeline is left alone.
    doubled_vqvae(&pipeline.join("vqvae"), "quantize.", &dir.join("recoded"));
    let error = swap_vqvae::<B>(&pipeline, &dir.join("recoded"), &pipeline, StoreDtype::F16, &device).unwrap_err();
    assert!(error.to_string().contains("`quantize.embedding.weight` differs"), "{error}");
    assert_eq!(tensor(&pipeline.join("vqvae"), name), original);
    std::fs::remove_dir_all(dir).ok();
}

/// A tiny stage 2 on the toy VQ-VAE `dir/vqvae` (24-pixel images: 12 × 12 tokens of K = 16),
/// writing `dir/run`: T = 10, one transformer block 2 × 8 wide, a text encoder 16 wide, batches of
/// 2, a checkpoint (in f16) every 2 steps.
fn tiny_stage_two(dir: &Path, steps: usize) -> super::DiffusionTrainConfig {
    let defaults = super::DiffusionTrainConfig::default();
    super::DiffusionTrainConfig {
        run: crate::train::RunConfig {
            out_dir: dir.join("run"),
            batch_size: 2,
            steps,
            learning_rate: 1e-3,
            warmup_steps: 2,
            log_every: 1,
            checkpoint_every: 2,
            workers: 1,
            dataset: crate::data::DatasetConfig { image_size: 24, ..crate::data::DatasetConfig::default() },
            ..defaults.run
        },
        vqvae_dir: dir.join("vqvae"),
        clip_tokenizer_dir: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/tiny/hub/tokenizer"),
        num_timesteps: 10,
        heads: 2,
        head_dim: 8,
        layers: 1,
        text_width: 16,
        text_layers: 1,
        text_heads: 2,
        checkpoint_dtype: StoreDtype::F16,
        ..defaults
    }
}

#[test]
fn stage_two_resumes_from_a_half_precision_checkpoint_without_optimizer_state() {
    use burn::backend::Autodiff;

    use super::train_diffusion;

    let dir = temp_dir("diffusion-resume");
    let device = Default::default();
    // An untrained two-level VQ-VAE for 24-pixel images: 12 × 12 tokens of K = 16.
    let vq_config = toy_vq_config(24);
    random_vqvae(&vq_config, &dir.join("vqvae"));
    let config = |steps| tiny_stage_two(&dir, steps);
    let mut heard = Vec::new();
    let first = train_diffusion::<Autodiff<B>>(&config(2), &device, &mut |l| heard.push(l.to_string())).unwrap();
    assert_eq!(first.steps_done, 2);
    assert!(dir.join("run/pipeline/model_index.json").is_file());
    // Weights and EMA in f16: 2 bytes a parameter, plus names and shapes.
    for file in ["model.mpk", "ema.mpk"] {
        let bytes = std::fs::metadata(dir.join("run/checkpoint").join(file)).unwrap().len() as usize;
        assert!(bytes < 3 * first.parameters, "{file}: {bytes} bytes for {} parameters", first.parameters);
    }

    std::fs::remove_file(dir.join("run/checkpoint/optimizer.mpk")).unwrap();
    heard.clear();
    let second = train_diffusion::<Autodiff<B>>(&config(4), &device, &mut |l| heard.push(l.to_string())).unwrap();
    assert_eq!(second.steps_done, 4);
    assert!(heard.iter().any(|l| l.contains("optimizer.mpk is missing")), "{heard:?}");
    let rates = learning_rates(&dir.join("run"));
    assert_eq!(rates.iter().map(|r| r.0).collect::<Vec<_>>(), [0, 1, 2, 3]);
    assert_rewarmed(&rates, 2, 4, 2);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn stage_two_stopped_by_its_budget_and_resumed_continues_the_uninterrupted_run() {
    use burn::backend::Autodiff;

    use super::train_diffusion;

    // The timesteps (drawn from the host generator, which checkpoints carry) and the learning
    // rates of a run stopped by its budget after one step and resumed are the uninterrupted
    // run's. (The losses are not compared: x_t's noise comes from the backend's generator, which
    // the tests running beside this one share.)
    let columns = |name: &str, stop_first: bool| {
        let dir = temp_dir(name);
        random_vqvae(&toy_vq_config(24), &dir.join("vqvae"));
        let config = |max_minutes| {
            let mut config = tiny_stage_two(&dir, 6);
            config.run.checkpoint_every = 1;
            config.run.max_minutes = max_minutes;
            config
        };
        if stop_first {
            let mut heard = Vec::new();
            let summary = train_diffusion::<Autodiff<B>>(&config(Some(0.0)), &Default::default(), &mut |l| {
                heard.push(l.to_string())
            })
            .expect("a budget-stopped run");
            assert_eq!(summary.steps_done, 1);
            assert!(heard.iter().any(|l| l == "time budget reached after step 1; saved"), "{heard:?}");
            assert!(dir.join("run/pipeline/model_index.json").is_file(), "exported at the budget stop");
            let state = std::fs::read_to_string(dir.join("run/checkpoint/state.json")).expect("state.json");
            assert!(state.contains("\"step\": 1") && state.contains("\"sampler\""), "{state}");
        }
        let summary = train_diffusion::<Autodiff<B>>(&config(None), &Default::default(), &mut |_| {}).expect("train");
        assert_eq!(summary.steps_done, 6);
        let text = std::fs::read_to_string(dir.join("run/loss.csv")).expect("loss.csv");
        std::fs::remove_dir_all(&dir).ok();
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("step,loss,vb,aux,mean_t,lr,seconds"));
        lines
            .map(|line| {
                let fields: Vec<&str> = line.split(',').collect();
                assert!(fields[1..4].iter().all(|v| v.parse::<f64>().expect("a number").is_finite()), "{line}");
                [fields[0], fields[4], fields[5]].map(String::from)
            })
            .collect::<Vec<_>>()
    };
    let whole = columns("diffusion-budget-whole", false);
    assert_eq!(whole.iter().map(|row| row[0].as_str()).collect::<Vec<_>>(), ["0", "1", "2", "3", "4", "5"]);
    assert_eq!(columns("diffusion-budget-resumed", true), whole);
}

#[test]
fn two_replicas_sum_to_the_gradient_of_the_whole_batch() {
    use burn::backend::Autodiff;
    use burn::module::AutodiffModule;
    use burn::optim::{Optimizer, SgdConfig};
    use clip_text::Tokenizer;
    use vq_scheduler::ScheduleTables;

    use super::parallel::{split_step, step_gradients, Replica};
    use crate::data::{Dataset, DatasetConfig, Split};
    use crate::loss::{TimestepBatch, VqDiffusionLossConfig};
    use crate::train::batches::render_batch;

    type A = Autodiff<B>;
    let device = Default::default();
    let dir = temp_dir("parallel");
    // Through a file, as training loads it: a freshly initialised module's clones would each draw
    // their own lazily initialised weights.
    write_vqvae_dir(
        &toy_vq_config(32).init::<B>(&device).unwrap(),
        &toy_vq_config(32),
        &dir.join("vq"),
        StoreDtype::F32,
    )
    .unwrap();
    let vqvae = vq_model::VQModel::<B>::from_pretrained(&dir.join("vq"), None, &device).unwrap();
    let tokenizer_source = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/tiny/hub/tokenizer");
    let vocab_size = write_trimmed_tokenizer(&tokenizer_source, &dir.join("tok"), &caption_words(), 32).unwrap();
    let tokenizer = Tokenizer::from_dir(&dir.join("tok")).unwrap();
    let dataset = Dataset::new(DatasetConfig { image_size: 32, ..DatasetConfig::default() }, 0).unwrap();
    let host = render_batch(&dataset, Split::Train, 4, 0, Some(&tokenizer), 0.0);
    assert_eq!(i64::from(tokenizer.eos_id()), vocab_size as i64 - 1, "EOT is the trimmed vocabulary's last id");
    let config = tiny_model_config(16, vocab_size);
    let model: TextToTokens<A> = config.init(&device).unwrap();
    // Read first: parameters initialise lazily, and clones made before would each draw their own
    // (train_diffusion reads them into the weight EMA before any replica is forked).
    let before = pytorch_tensors(&model.valid(), "", &[]).unwrap();
    // ᾱ_0 = 1 − 1e−7 and γ̄_0 = 1e−8: at t = 0 a token changes with probability ≈ 1e−7, so x_t = x_0
    // and the shards' own noise draws — from the backend's global generator, which tests running
    // beside this one draw from too — do not matter.
    let scheduler = VQDiffusionSchedulerConfig {
        num_train_timesteps: 10,
        alpha_cum_start: 1.0 - 1e-7,
        gamma_cum_start: 1e-8,
        ..VQDiffusionSchedulerConfig::new(17)
    };
    let tables = ScheduleTables::new(&scheduler).unwrap();
    let loss = VqDiffusionLossConfig::new();
    // One caption dropped tests the shards' order.
    let timesteps = TimestepBatch::constant(0, 4, 10);
    let dropped = [false, true, false, false];

    let step = |replicas: usize| {
        let replicas: Vec<Replica<A>> = (0..replicas).map(|_| Replica { device, vqvae: vqvae.clone() }).collect();
        let shards = split_step(&host, &dropped, &timesteps, replicas.len());
        let (grads, values) = step_gradients(&model, &replicas, shards, &tables, &loss, &device).unwrap();
        // Applying the gradient with plain SGD (rate 1) turns it into comparable parameters.
        let stepped = SgdConfig::new().init::<A, TextToTokens<A>>().step(1.0, model.clone(), grads);
        (stepped.valid(), values)
    };
    let (whole, whole_values) = step(1);
    let (split, split_values) = step(2);
    // Summed in another order: an embedding row's gradient sums many terms that largely cancel, so
    // its relative error reaches ~1e-4 on some random draws; a wrong shard would be off by O(1).
    assert_same(&whole, &split, &[], 1e-3);
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-5 * a.abs().max(1.0);
    assert!(close(whole_values.loss, split_values.loss), "{} vs {}", whole_values.loss, split_values.loss);
    for (a, b) in whole_values.vb.iter().zip(&split_values.vb).chain(whole_values.aux.iter().zip(&split_values.aux)) {
        assert!(close(*a, *b), "per-sample terms {a} vs {b}");
    }
    // The gradient is not zero: the step moved the parameters.
    let after = pytorch_tensors(&whole, "", &[]).unwrap();
    assert!(before.iter().zip(&after).any(|(a, b)| a.2 != b.2));
}
