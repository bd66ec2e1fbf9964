//! Numerics of single pieces: the output log-softmax, the CPU fast paths and the batch split
//! against the portable ops, the fused attention op, timestep handling and the positional
//! embedding.

use burn::backend::Autodiff;
use burn::tensor::activation::softmax;
use burn::tensor::backend::Backend;
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{DType, Distribution, Int, Tensor, TensorData};
use transformer2d::{Timesteps, Transformer2DModel};
use vq_kernels::portable::log_softmax_dtype;
use vq_kernels::KernelBackend;

use crate::common::{device, max_abs_diff, reference, tiny_transformer, B};

fn tiny() -> Transformer2DModel<B> {
    Transformer2DModel::from_pretrained(&tiny_transformer("hub"), None, &device()).unwrap()
}

fn inputs() -> (Tensor<B, 2, Int>, Tensor<B, 3>) {
    (
        Tensor::from_data(reference("transformer.in.latents"), &device()),
        Tensor::from_data(reference("encode.prompt_embeds"), &device()),
    )
}

/// max over (batch, pixel) of |logsumexp over classes (axis 1)|, in f64 on the host.
fn max_abs_logsumexp(log_p: &TensorData) -> f64 {
    let [batch, classes, n] = [log_p.shape[0], log_p.shape[1], log_p.shape[2]];
    let v = log_p.to_vec::<f32>().unwrap();
    let mut worst = 0.0f64;
    for b in 0..batch {
        for p in 0..n {
            let column = (0..classes).map(|c| v[(b * classes + c) * n + p] as f64);
            let max = column.clone().fold(f64::NEG_INFINITY, f64::max);
            let lse = max + column.map(|x| (x - max).exp()).sum::<f64>().ln();
            worst = worst.max(lse.abs());
        }
    }
    worst
}

/// Logits at the ITHQ class count, spread like a confident model's (N(0, 5²)).
fn wide_logits() -> Tensor<B, 3> {
    B::seed(&device(), 7);
    Tensor::random([2, 4096, 64], Distribution::Normal(0.0, 5.0), &device())
}

#[test]
fn output_log_softmax_runs_in_f64_and_normalises() {
    assert_eq!(log_softmax_dtype::<B>(&device()), DType::F64, "NdArray supports f64");
    let (latents, text) = inputs();
    let log_p = tiny().forward(latents, text, &Timesteps::Shared(99));
    assert_eq!(log_p.dtype(), DType::F32);
    let model_err = max_abs_logsumexp(&log_p.into_data());

    let wide = B::class_log_softmax(wide_logits(), 1);
    assert_eq!(wide.dtype(), DType::F32);
    let wide_err = max_abs_logsumexp(&wide.into_data());
    eprintln!("|logsumexp| over classes: tiny model {model_err:.2e}, K = 4096 N(0, 25) logits {wide_err:.2e}");
    assert!(model_err <= 1e-6 && wide_err <= 1e-6, "{model_err:e}, {wide_err:e}");
}

/// The CPU backend's fast paths (attention and quick GELU on the host, where there is more than
/// one core) give the tiny model's log-probabilities of the portable tensor ops (what an
/// autodiff backend runs), within f32 rounding.
#[test]
fn the_cpu_fast_paths_agree_with_the_portable_ops_on_the_whole_model() {
    let (latents, text) = inputs();
    let fast = tiny().forward(latents.clone(), text.clone(), &Timesteps::Shared(42)).into_data();
    let folder = tiny_transformer("hub");
    let portable = Transformer2DModel::<Autodiff<B>>::from_pretrained(&folder, None, &device()).unwrap();
    let latents = Tensor::from_data(latents.into_data(), &device());
    let text = Tensor::from_data(text.into_data(), &device());
    let portable = portable.forward(latents, text, &Timesteps::Shared(42)).into_data();
    let err = max_abs_diff(&fast, &portable);
    eprintln!("CPU fast paths against the portable ops: max abs diff {err:.2e}");
    assert!(err <= 2e-5, "log-probabilities off by {err:e}");
    if std::thread::available_parallelism().map_or(1, |n| n.get()) > 1 {
        assert_ne!(fast, portable, "the host kernels should round differently from the portable ops");
    }
}

/// Splitting the batch over threads gives every sample exactly the numbers it gets alone, for a
/// shared timestep and per-sample ones.
#[test]
fn the_batch_split_changes_no_value() {
    let (latents, text) = inputs();
    let [batch, _] = latents.dims();
    assert!(batch >= 2, "the fixture batch should have two samples to split");
    let model = tiny();
    let per_sample = Timesteps::PerSample((0..batch).map(|i| 10 + 30 * i).collect());
    for timesteps in [Timesteps::Shared(42), per_sample] {
        let whole = model.forward(latents.clone(), text.clone(), &timesteps).into_data();
        let alone: Vec<Tensor<B, 3>> = (0..batch)
            .map(|i| {
                let t = match &timesteps {
                    Timesteps::Shared(t) => Timesteps::Shared(*t),
                    Timesteps::PerSample(ts) => Timesteps::PerSample(vec![ts[i]]),
                };
                model.forward(latents.clone().narrow(0, i, 1), text.clone().narrow(0, i, 1), &t)
            })
            .collect();
        assert_eq!(Tensor::cat(alone, 0).into_data(), whole, "{timesteps:?}");
    }
}

/// burn's fused `attention` (what the model calls) against softmax(q kᵀ / √d) v written out,
/// in f32 and in f64, for the tiny model's self- and cross-attention shapes.
#[test]
fn fused_attention_matches_explicit_math() {
    B::seed(&device(), 3);
    let normal = Distribution::Normal(0.0, 1.5);
    let q = Tensor::<B, 4>::random([2, 3, 64, 8], normal, &device());
    for kv_len in [64, 77] {
        let k = Tensor::<B, 4>::random([2, 3, kv_len, 8], normal, &device());
        let v = Tensor::<B, 4>::random([2, 3, kv_len, 8], normal, &device());
        let fused = attention(q.clone(), k.clone(), v.clone(), None, None, AttentionModuleOptions::default());

        let explicit = |[q, k, v]: [Tensor<B, 4>; 3]| softmax(q.matmul(k.swap_dims(2, 3)) / 8f64.sqrt(), 3).matmul(v);
        let in_f32 = explicit([q.clone(), k.clone(), v.clone()]);
        let in_f64 = explicit([q.clone(), k, v].map(|t| t.cast(DType::F64))).cast(DType::F32);
        let fused = fused.into_data();
        let (err32, err64) = (max_abs_diff(&fused, &in_f32.into_data()), max_abs_diff(&fused, &in_f64.into_data()));
        eprintln!("fused attention, kv length {kv_len}: max abs diff {err32:.2e} vs explicit f32, {err64:.2e} vs f64");
        assert!(err32 <= 1e-6, "kv length {kv_len}: off by {err32:e} from the f32 math");
        // Outputs are O(1): a few f32 ulps from the exact value.
        assert!(err64 <= 2e-6, "kv length {kv_len}: off by {err64:e} from the f64 math");
    }
}

#[test]
fn per_sample_timesteps_equal_shared_runs() {
    let model = tiny();
    let (latents, text) = inputs();
    let run = |t: Timesteps| model.forward(latents.clone(), text.clone(), &t).into_data();

    assert_eq!(run(Timesteps::PerSample(vec![37, 37])), run(Timesteps::Shared(37)));

    let mixed = run(Timesteps::PerSample(vec![99, 3]));
    let (a, b) = (run(Timesteps::Shared(99)), run(Timesteps::Shared(3)));
    let row = |d: &TensorData, r: usize| {
        let v = d.to_vec::<f32>().unwrap();
        let len = v.len() / 2;
        v[r * len..(r + 1) * len].to_vec()
    };
    assert_eq!(row(&mixed, 0), row(&a, 0));
    assert_eq!(row(&mixed, 1), row(&b, 1));
}

#[test]
#[should_panic(expected = "timestep 100 out of range: the model has 100 timestep embeddings")]
fn timestep_beyond_the_table_panics() {
    let (latents, text) = inputs();
    tiny().forward(latents, text, &Timesteps::Shared(100));
}

#[test]
#[should_panic(expected = "got 3 per-sample timesteps for a batch of 2")]
fn per_sample_count_must_match_batch() {
    let (latents, text) = inputs();
    tiny().forward(latents, text, &Timesteps::PerSample(vec![1, 2, 3]));
}

/// diffusers adds `pos[:, :n]`, so a shorter id sequence embeds as the first n pixels.
#[test]
fn positional_embedding_of_a_prefix_is_the_prefix() {
    let model = tiny();
    let (latents, _) = inputs();
    let full = model.latent_image_embedding.forward(latents.clone());
    let prefix = model.latent_image_embedding.forward(latents.narrow(1, 0, 10));
    assert_eq!(prefix.into_data(), full.narrow(1, 0, 10).into_data());
}
