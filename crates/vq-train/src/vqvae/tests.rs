//! The stage-1 loop end to end at a toy size: it trains, checkpoints and resumes — also without
//! the optimizer state, when the learning rate warms up again.

use std::path::Path;

use burn::backend::{Autodiff, NdArray};

use super::*;
use crate::data::DatasetConfig;
use crate::train::export::copy_dir;
use crate::train::test_support::{assert_rewarmed, learning_rates, temp_dir};
use crate::train::RunConfig;

type B = Autodiff<NdArray<f32>>;

/// 24-pixel images, two levels of 8 and 16 channels, 16 codes; a checkpoint every 2 steps.
fn toy(dir: &Path, steps: usize) -> VqVaeTrainConfig {
    let defaults = VqVaeTrainConfig::default();
    VqVaeTrainConfig {
        run: RunConfig {
            out_dir: dir.to_path_buf(),
            batch_size: 2,
            steps,
            learning_rate: 1e-3,
            warmup_steps: 4,
            log_every: 1,
            checkpoint_every: 2,
            workers: 1,
            dataset: DatasetConfig { image_size: 24, ..DatasetConfig::default() },
            ..defaults.run
        },
        block_out_channels: vec![8, 16],
        norm_num_groups: 4,
        num_vq_embeddings: 16,
        vq_embed_dim: 4,
        ..defaults
    }
}

/// `toy(dir, steps)` started from the exported VQ-VAE `init_from`.
fn toy_from(dir: &Path, steps: usize, init_from: &Path) -> VqVaeTrainConfig {
    let mut config = toy(dir, steps);
    config.run.init_from = Some(init_from.to_path_buf());
    config
}

#[test]
fn a_run_resumed_without_optimizer_state_warms_its_learning_rate_up_again() {
    let dir = temp_dir("vqvae-resume");
    let mut heard = Vec::new();
    let first =
        train_vqvae::<B>(&toy(&dir, 4), &Default::default(), &mut |l| heard.push(l.to_string())).expect("train");
    assert_eq!(first.steps_done, 4);
    assert!(first.final_loss.is_finite());
    assert!(dir.join("vqvae/config.json").is_file() && dir.join("vqvae/diffusion_pytorch_model.safetensors").is_file());

    std::fs::remove_file(dir.join("checkpoint/optimizer.mpk")).expect("a saved optimizer state");
    heard.clear();
    // New --steps: a new schedule of 8 steps continues at step 4.
    let second =
        train_vqvae::<B>(&toy(&dir, 8), &Default::default(), &mut |l| heard.push(l.to_string())).expect("resume");
    assert_eq!(second.steps_done, 8);
    assert!(heard.iter().any(|l| l.contains("optimizer.mpk is missing")), "{heard:?}");
    assert!(heard.iter().any(|l| l.contains("resuming at step 4")), "{heard:?}");

    let rates = learning_rates(&dir);
    assert_eq!(rates.iter().map(|r| r.0).collect::<Vec<_>>(), (0..8).collect::<Vec<_>>());
    assert_rewarmed(&rates, 4, 8, 4);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_run_stopped_by_its_budget_and_resumed_writes_the_uninterrupted_runs_curve() {
    // Both runs start from one exported VQ-VAE (no weights drawn from the backend's generator,
    // which the tests running beside this one share) and checkpoint after every step; one of
    // them with no time to spare, so that it stops after its first step and is resumed.
    let base = temp_dir("vqvae-budget-base");
    train_vqvae::<B>(&toy(&base, 1), &Default::default(), &mut |_| {}).expect("train");
    let curve = |name: &str, stop_first: bool| {
        let dir = temp_dir(name);
        let config = |max_minutes| {
            let mut config = toy_from(&dir, 4, &base.join("vqvae"));
            config.run.checkpoint_every = 1;
            config.run.max_minutes = max_minutes;
            config
        };
        if stop_first {
            let mut heard = Vec::new();
            let summary = train_vqvae::<B>(&config(Some(0.0)), &Default::default(), &mut |l| heard.push(l.to_string()))
                .expect("a budget-stopped run");
            assert_eq!(summary.steps_done, 1);
            assert!(heard.iter().any(|l| l == "time budget reached after step 1; saved"), "{heard:?}");
            for file in
                ["vqvae/config.json", "checkpoint/model.mpk", "checkpoint/codebook.mpk", "checkpoint/state.json"]
            {
                assert!(dir.join(file).is_file(), "{file} missing after the budget stop");
            }
        }
        let summary = train_vqvae::<B>(&config(None), &Default::default(), &mut |_| {}).expect("train");
        assert_eq!(summary.steps_done, 4);
        let text = std::fs::read_to_string(dir.join("loss.csv")).expect("loss.csv");
        std::fs::remove_dir_all(&dir).ok();
        // Every column but the last (seconds).
        text.lines().map(|line| line.rsplit_once(',').expect("columns").0.to_string()).collect::<Vec<_>>()
    };
    let whole = curve("vqvae-budget-whole", false);
    assert_eq!(whole[0], "step,loss,l1,l2,commitment,restarted,lr");
    assert_eq!(whole.len(), 5);
    assert_eq!(curve("vqvae-budget-resumed", true), whole);
    std::fs::remove_dir_all(&base).ok();
}

/// One run's loss rows and exported tensors (name, shape, values).
type RunRecord = (Vec<Vec<f64>>, Vec<(String, Vec<usize>, Vec<f32>)>);

#[test]
fn two_replicas_train_as_one_device_does() {
    // One step on one device, then the same checkpoint continued for two more steps on one device
    // and on two replicas of it: the same losses at every step (the batch's means, summed from the
    // shards) and the same exported weights. Both continuations load their weights from the
    // checkpoint, so the backend's global generator — shared with the tests running beside this
    // one — cannot make them differ.
    let start = temp_dir("vqvae-replicas-start");
    train_vqvae::<B>(&toy(&start, 1), &Default::default(), &mut |_| {}).expect("train");
    let runs: Vec<RunRecord> = [vec![], vec![0, 0]]
        .into_iter()
        .map(|device_indices| {
            let dir = temp_dir(&format!("vqvae-replicas-{}", device_indices.len()));
            copy_dir(&start, &dir, &[]).expect("copy the run");
            let mut config = toy(&dir, 3);
            config.run.device_indices = device_indices;
            let summary = train_vqvae::<B>(&config, &Default::default(), &mut |_| {}).expect("continue");
            assert_eq!(summary.steps_done, 3);
            let text = std::fs::read_to_string(dir.join("loss.csv")).expect("loss.csv");
            // loss, l1, l2, commitment of each step.
            let curve = text
                .lines()
                .skip(1)
                .map(|line| line.split(',').skip(1).take(4).map(|v| v.parse().expect("a number")).collect())
                .collect();
            let vqvae =
                vq_model::VQModel::<NdArray<f32>>::from_pretrained(&dir.join("vqvae"), None, &Default::default())
                    .expect("exported");
            (curve, crate::train::export::pytorch_tensors(&vqvae, "", &[]).expect("tensors"))
        })
        .collect();
    let ((one, one_weights), (two, two_weights)) = (&runs[0], &runs[1]);
    assert_eq!(one.len(), 3);
    for (step, (a, b)) in one.iter().zip(two).enumerate() {
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() <= 1e-4 * x.abs().max(1e-3), "step {step}: {a:?} vs {b:?}");
        }
    }
    for ((name, _, a), (_, _, b)) in one_weights.iter().zip(two_weights) {
        let worst = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
        assert!(worst <= 1e-4, "{name}: the replicas' weights differ by {worst}");
    }
}

#[test]
fn loss_weights_of_zero_or_less_are_refused_by_name() {
    let dir = temp_dir("vqvae-foreground");
    for weight in [0.0, -2.0, f64::NAN] {
        let config = VqVaeTrainConfig { foreground_weight: weight, ..toy(&dir, 1) };
        let error = train_vqvae::<B>(&config, &Default::default(), &mut |_| {}).unwrap_err().to_string();
        assert!(error.contains(&format!("foreground_weight {weight}: must be greater than 0")), "{error}");
        let config = VqVaeTrainConfig { outline_weight: Some(weight), ..toy(&dir, 1) };
        let error = train_vqvae::<B>(&config, &Default::default(), &mut |_| {}).unwrap_err().to_string();
        assert!(error.contains(&format!("outline_weight {weight}: must be greater than 0")), "{error}");
    }
    for fraction in [-0.1, 1.5, f64::NAN] {
        let config = VqVaeTrainConfig { free_colors: fraction, ..toy(&dir, 1) };
        let error = train_vqvae::<B>(&config, &Default::default(), &mut |_| {}).unwrap_err().to_string();
        assert!(error.contains(&format!("free_colors {fraction}: must be a fraction in [0, 1]")), "{error}");
    }
}

#[test]
fn a_decoder_only_run_changes_the_decoder_and_keeps_every_code() {
    // A toy VQ-VAE trained for 2 steps, then its decoder alone for 3 more from the export.
    let base = temp_dir("vqvae-decoder-base");
    train_vqvae::<B>(&toy(&base, 2), &Default::default(), &mut |_| {}).expect("train");
    let dir = temp_dir("vqvae-decoder-only");
    let config = VqVaeTrainConfig {
        decoder_only: true,
        // Ignored: the exported config.json fixes the architecture.
        block_out_channels: vec![4, 4],
        ..toy_from(&dir, 3, &base.join("vqvae"))
    };
    let summary = train_vqvae::<B>(&config, &Default::default(), &mut |_| {}).expect("decoder only");
    assert_eq!(summary.steps_done, 3);

    let load = |run: &Path| {
        vq_model::VQModel::<NdArray<f32>>::from_pretrained(&run.join("vqvae"), None, &Default::default())
            .expect("exported")
    };
    let (before, after) = (load(&base), load(&dir));
    let tensors = |model| crate::train::export::pytorch_tensors(model, "", &[]).expect("tensors");
    let (frozen, trained): (Vec<_>, Vec<_>) = tensors(&before)
        .into_iter()
        .zip(tensors(&after))
        .partition(|((name, _, _), _)| !name.starts_with("decoder.") && !name.starts_with("post_quant_conv."));
    assert!(frozen.iter().any(|((name, _, _), _)| name.starts_with("encoder.")));
    assert!(frozen.iter().any(|((name, _, _), _)| name.starts_with("quantize.")));
    for ((name, _, a), (_, _, b)) in &frozen {
        assert_eq!(a, b, "{name} changed in a decoder-only run");
    }
    let changed = trained.iter().filter(|((_, _, a), (_, _, b))| a != b).count();
    assert!(changed * 2 > trained.len(), "only {changed} of {} decoder tensors changed", trained.len());

    // The same images get the same codes from both.
    let dataset = crate::data::Dataset::new(config.run.dataset.clone(), 7).expect("dataset");
    let samples: Vec<_> = (0..4).map(|i| dataset.sample(crate::data::Split::Train, i)).collect();
    let images: Vec<_> = samples.iter().map(|s| &s.image).collect();
    let codes = |model: &vq_model::VQModel<NdArray<f32>>| {
        let x = crate::data::images_to_tensor::<NdArray<f32>>(&images, &Default::default());
        let quantized = model.quantize(model.encode(x).expect("encode")).expect("quantize");
        quantized.indices.into_data().to_vec::<i64>().expect("indices")
    };
    assert_eq!(codes(&before), codes(&after));
    std::fs::remove_dir_all(&base).ok();
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_decoder_only_run_needs_a_vqvae_to_start_from() {
    let dir = temp_dir("vqvae-decoder-alone");
    let config = VqVaeTrainConfig { decoder_only: true, ..toy(&dir, 1) };
    let error = train_vqvae::<B>(&config, &Default::default(), &mut |_| {}).unwrap_err().to_string();
    assert!(error.contains("give init_from (--init-from) its vqvae/ folder"), "{error}");
    let config = toy_from(&dir, 1, &dir.join("missing"));
    let error = train_vqvae::<B>(&config, &Default::default(), &mut |_| {}).unwrap_err().to_string();
    assert!(error.contains("missing") && error.contains("config.json"), "{error}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn an_outline_weight_above_the_foreground_weight_raises_the_loss_of_the_same_step() {
    // The same starting weights (a decoder-only run from one export) and the same first batch:
    // weighting the outline band 50 instead of its foreground/background 10/1 raises the loss.
    let base = temp_dir("vqvae-outline-base");
    train_vqvae::<B>(&toy(&base, 1), &Default::default(), &mut |_| {}).expect("train");
    let first_loss = |outline_weight: Option<f64>| {
        let dir = temp_dir(&format!("vqvae-outline-{outline_weight:?}"));
        let config = VqVaeTrainConfig { decoder_only: true, outline_weight, ..toy_from(&dir, 1, &base.join("vqvae")) };
        train_vqvae::<B>(&config, &Default::default(), &mut |_| {}).expect("one step");
        let text = std::fs::read_to_string(dir.join("loss.csv")).expect("loss.csv");
        std::fs::remove_dir_all(&dir).ok();
        let row = text.lines().nth(1).expect("a row").to_string();
        row.split(',').nth(1).expect("the loss").parse::<f64>().expect("a number")
    };
    let (plain, outlined) = (first_loss(None), first_loss(Some(50.0)));
    assert!(outlined > plain * 1.5, "loss {outlined} with the outline weighted against {plain} without");
    std::fs::remove_dir_all(&base).ok();
}

#[test]
fn step_gradients_are_named_frozen_ones_absent_and_match_finite_differences() {
    let base = temp_dir("vqvae-gradients");
    train_vqvae::<B>(&toy(&base, 1), &Default::default(), &mut |_| {}).expect("train");
    let vqvae = base.join("vqvae");
    let step = |dir: &Path, decoder_only| {
        named_step_gradients::<B>(dir, 2, decoder_only, 3, &Default::default()).expect("gradients")
    };

    let full = step(&vqvae, false);
    let names = |s: &StepGradients| s.gradients.iter().map(|g| g.name.clone()).collect::<Vec<_>>();
    let full_names = names(&full);
    assert!(full_names.contains(&"encoder.conv_in.weight".to_string()), "{full_names:?}");
    // The codebook is an EMA, never a gradient's.
    assert!(!full_names.iter().any(|n| n.starts_with("quantize.")), "{full_names:?}");
    let decoder = step(&vqvae, true);
    let decoder_names = names(&decoder);
    assert!(
        decoder_names.iter().all(|n| n.starts_with("decoder.") || n.starts_with("post_quant_conv.")),
        "{decoder_names:?}"
    );
    let bias = decoder.gradients.iter().find(|g| g.name == "decoder.conv_out.bias").expect("conv_out's bias");
    assert_eq!(bias.shape, vec![3]);
    // Frozen codes: the decoder's gradients are the full step's.
    let same = full.gradients.iter().find(|g| g.name == "decoder.conv_out.bias").expect("in the full step");
    assert!(relative_max_error(&same.values, &bias.values, 0.0) < 1e-5);

    // d loss / d bias[c] against a central difference of the loss, for each output channel.
    let config = vq_model::VQModelConfig::from_file(&vqvae.join("config.json")).expect("config");
    // ε small enough that few pixels' errors change sign (the L1 term's kinks), large enough for
    // the f32 loss's rounding (≈ 2e−7 of 2.2).
    let epsilon = 1e-3;
    let loss_with = |channel: usize, delta: f32| {
        let mut model =
            vq_model::VQModel::<NdArray<f32>>::from_pretrained(&vqvae, None, &Default::default()).expect("load");
        let param = model.decoder.conv_out.bias.take().expect("a bias");
        let mut values = param.val().into_data().to_vec::<f32>().expect("f32");
        values[channel] += delta;
        model.decoder.conv_out.bias = Some(burn::module::Param::initialized(
            param.id,
            burn::tensor::Tensor::from_floats(values.as_slice(), &Default::default()),
        ));
        let dir = base.join(format!("shifted-{channel}-{delta}"));
        write_vqvae_dir(&model, &config, &dir, crate::train::export::StoreDtype::F32).expect("write");
        step(&dir, true).loss
    };
    let numeric: Vec<f32> = (0..3)
        .map(|c| ((loss_with(c, epsilon) - loss_with(c, -epsilon)) / (2.0 * f64::from(epsilon))) as f32)
        .collect();
    let error = relative_max_error(&numeric, &bias.values, 0.0);
    assert!(error < 2e-3, "finite differences {numeric:?} against gradients {:?}: {error}", bias.values);
    std::fs::remove_dir_all(&base).ok();
}

#[test]
fn relative_max_error_is_scaled_by_the_largest_reference_entry() {
    assert_eq!(relative_max_error(&[1.0, 2.0], &[1.0, 2.0], 0.0), 0.0);
    assert!((relative_max_error(&[1.0, 2.5], &[1.0, 2.0], 0.0) - 0.25).abs() < 1e-12);
    assert!((relative_max_error(&[0.5, 0.0], &[0.0, 0.0], 0.0) - 0.5).abs() < 1e-12);
    // Noise on a gradient that is zero in exact arithmetic, measured against a floor.
    assert!((relative_max_error(&[2e-9, 0.0], &[-1e-9, 0.0], 1e-4) - 3e-5).abs() < 1e-12);
    assert!((relative_max_error(&[1.0, 2.5], &[1.0, 2.0], 1e-4) - 0.25).abs() < 1e-12);
    assert_eq!(max_magnitude(&[0.5, -3.0, 2.0]), 3.0);
}

#[test]
fn a_run_that_keeps_the_codes_moves_them_instead_of_drawing_them_anew() {
    // One step from a trained toy VQ-VAE, with and without keep_codes: the loss curve's
    // `restarted` column counts the codes re-seeded at step 0, and the exported codebook shows
    // whether each code is still the start's (its nearest start code is itself).
    let base = temp_dir("vqvae-keep-base");
    train_vqvae::<B>(&toy(&base, 2), &Default::default(), &mut |_| {}).expect("train");
    let codebook = |run: &Path| {
        let model = vq_model::VQModel::<NdArray<f32>>::from_pretrained(&run.join("vqvae"), None, &Default::default())
            .expect("exported");
        model.quantize.embedding.weight.val().into_data().to_vec::<f32>().expect("codebook")
    };
    let start = codebook(&base);
    let width = 4;
    let one_step = |keep_codes: bool| {
        let dir = temp_dir(&format!("vqvae-keep-{keep_codes}"));
        let config = VqVaeTrainConfig { keep_codes, ..toy_from(&dir, 1, &base.join("vqvae")) };
        train_vqvae::<B>(&config, &Default::default(), &mut |_| {}).expect("one step");
        let text = std::fs::read_to_string(dir.join("loss.csv")).expect("loss.csv");
        let header: Vec<&str> = text.lines().next().expect("a header").split(',').collect();
        let column = header.iter().position(|&c| c == "restarted").expect("a restarted column");
        let row: Vec<&str> = text.lines().nth(1).expect("a row").split(',').collect();
        let restarted = row[column].parse::<f64>().expect("a number") as usize;
        let codes = codebook(&dir);
        std::fs::remove_dir_all(&dir).ok();
        let distance = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum::<f32>();
        let kept = codes
            .chunks(width)
            .enumerate()
            .filter(|(k, code)| {
                let nearest = (0..16)
                    .min_by(|&i, &j| {
                        let (di, dj) = (
                            distance(code, &start[i * width..][..width]),
                            distance(code, &start[j * width..][..width]),
                        );
                        di.total_cmp(&dj)
                    })
                    .expect("16 codes");
                nearest == *k
            })
            .count();
        (restarted, kept)
    };
    let (restarted, kept) = one_step(true);
    assert_eq!((restarted, kept), (0, 16), "keep_codes: {restarted} codes re-seeded, {kept} of 16 kept");
    let (restarted, kept) = one_step(false);
    assert_eq!(restarted, 16, "without keep_codes every code is re-seeded at step 0");
    assert!(kept < 16, "re-seeded codes all stayed nearest their old selves");

    let dir = temp_dir("vqvae-keep-refused");
    let config = VqVaeTrainConfig { keep_codes: true, ..toy(&dir, 1) };
    let error = train_vqvae::<B>(&config, &Default::default(), &mut |_| {}).unwrap_err().to_string();
    assert!(error.contains("keep_codes keeps the codes of an existing VQ-VAE: give init_from"), "{error}");
    let config = VqVaeTrainConfig { keep_codes: true, decoder_only: true, ..toy_from(&dir, 1, &base.join("vqvae")) };
    let error = train_vqvae::<B>(&config, &Default::default(), &mut |_| {}).unwrap_err().to_string();
    assert!(error.contains("decoder_only already freezes the codes"), "{error}");
    std::fs::remove_dir_all(&base).ok();
    std::fs::remove_dir_all(&dir).ok();
}
