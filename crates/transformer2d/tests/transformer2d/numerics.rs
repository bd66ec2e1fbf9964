//! Numerics of single pieces: the output log-softmax (f64 and the f32 fallback), the fused
//! attention op, timestep handling and the positional embedding.

use burn::tensor::activation::softmax;
use burn::tensor::backend::Backend;
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{DType, Distribution, Int, Tensor, TensorData};
use transformer2d::{class_log_softmax, log_softmax_dtype, AttentionKernel, Timesteps, Transformer2DModel};

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

    let wide = class_log_softmax(wide_logits(), 1, DType::F64);
    assert_eq!(wide.dtype(), DType::F32);
    let wide_err = max_abs_logsumexp(&wide.into_data());
    eprintln!("|logsumexp| over classes: tiny model {model_err:.2e}, K = 4096 N(0, 25) logits {wide_err:.2e}");
    assert!(model_err <= 1e-6 && wide_err <= 1e-6, "{model_err:e}, {wide_err:e}");
}

/// Where a backend lacks f64 the log-softmax runs in f32. At K = 4096 with a wide logit
/// spread the f32 result moves by about 1e-5: a per-pixel offset (the rounding of the f32
/// sum of 4096 exponentials) plus rounding of each value, so differences between the
/// classes of a pixel stay within two ulps of the largest magnitude.
#[test]
fn f32_log_softmax_fallback_stays_close_to_f64() {
    let logits = wide_logits();
    let wide = class_log_softmax(logits.clone(), 1, DType::F64);
    let narrow = class_log_softmax(logits, 1, DType::F32);
    let min = wide.clone().min().into_scalar();
    let err = max_abs_diff(&narrow.clone().into_data(), &wide.clone().into_data());
    // Spread over the classes of each pixel of (f32 − f64): what is not a per-pixel offset.
    let diff = narrow - wide;
    let spread = (diff.clone().max_dim(1) - diff.min_dim(1)).max().into_scalar();
    eprintln!("f32 vs f64 log-softmax, K = 4096, min log p {min:.1}: max abs diff {err:.2e}, within-pixel spread {spread:.2e}");
    assert!(err > 0.0, "the two precisions should round differently");
    assert!(err <= 2e-5, "f32 fallback off by {err:e}");
    let two_ulps = 2.0 * min.abs() * f32::EPSILON;
    assert!(spread <= two_ulps, "f32 fallback changes class differences by {spread:e} (> {two_ulps:e})");
}

/// Every attention kernel gives the tiny model's log-probabilities of the default op, within f32
/// rounding: the composed ops, the op on heads zero-padded from 8 to 32 wide with q rescaled, the
/// host kernel (its own products and `exp`), and the op on groups of heads on threads (the same op
/// on the same numbers: exactly).
#[test]
fn attention_kernels_agree_on_the_whole_model() {
    let (latents, text) = inputs();
    let run = |kernel| {
        tiny().with_attention_kernel(kernel).forward(latents.clone(), text.clone(), &Timesteps::Shared(42)).into_data()
    };
    // CPU backends compute attention on the host where there is more than one core.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let expected = if cores > 1 { AttentionKernel::Host } else { AttentionKernel::Op };
    assert_eq!(AttentionKernel::preferred::<B>(&device()), expected);
    let op = run(AttentionKernel::Op);
    for kernel in [AttentionKernel::Composed, AttentionKernel::PaddedOp, AttentionKernel::Host] {
        let err = max_abs_diff(&op, &run(kernel));
        eprintln!("{kernel:?}: max abs diff {err:.2e} from the op");
        assert!(err <= 2e-5, "{kernel:?}: log-probabilities off by {err:e}");
    }
    assert_ne!(run(AttentionKernel::Host), op, "the host kernel should round differently from the op");
    assert_eq!(run(AttentionKernel::ThreadedOp), op, "the op on threads changed the values");
    for (name, kernel) in ["op", "composed", "padded-op", "threaded-op", "host"].into_iter().zip(AttentionKernel::ALL) {
        assert_eq!(name.parse(), Ok(kernel));
        assert_eq!(kernel.to_string(), name);
    }
    assert!("flash"
        .parse::<AttentionKernel>()
        .unwrap_err()
        .contains("one of op, composed, padded-op, threaded-op, host"));
}

/// Splitting the batch over threads gives every sample exactly the numbers of one thread, for a
/// shared timestep and per-sample ones, with more threads than samples too.
#[test]
fn batch_threads_change_no_value() {
    let (latents, text) = inputs();
    let [batch, _] = latents.dims();
    assert!(batch >= 2, "the fixture batch should have two samples to split");
    let per_sample = Timesteps::PerSample((0..batch).map(|i| 10 + 30 * i).collect());
    for timesteps in [Timesteps::Shared(42), per_sample] {
        let run =
            |threads| tiny().with_batch_threads(threads).forward(latents.clone(), text.clone(), &timesteps).into_data();
        let one = run(1);
        for threads in [2, 3, 8] {
            assert_eq!(run(threads), one, "{threads} threads, {timesteps:?}");
        }
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
