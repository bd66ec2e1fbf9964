//! The prepared forward and the engine path: the generic prepared forward equals `forward` bit
//! for bit; the engine plan of the model reads every weight once with its shape; the plan's CPU
//! executor, behind the engine interface, equals the tensor ops.
//!
//! Tolerance of the CPU executor in f32: 2e-5 absolute on log-probabilities. It computes the
//! same functions as the tensor ops but sums in another order (products through the `gemm`
//! crate with another blocking, LayerNorm and softmax sums in one pass), so results move by
//! f32 rounding: about 1e-6 on the tiny model's log-probabilities of magnitude up to ≈ 10. A
//! wrong stride, offset or buffer reuse moves them by O(1) or makes them NaN. In half precision
//! the executor stores every intermediate in f16 / bf16 (as the CUDA engine does) while the
//! reference stays f32: the tolerance is then the storage type's rounding carried through the
//! model (measured and bounded below per type).

use burn::tensor::{Distribution, Int, Tensor};
use transformer2d::{FeedForwardActivation, PrepareOptions, Timesteps, Transformer2DConfig, Transformer2DModel};
use vq_kernels::engine::{Elem, HostEngine, Plan};
use vq_kernels::{EngineChoice, EngineError};

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

fn off() -> PrepareOptions {
    PrepareOptions::default().with_engine(EngineChoice::Off)
}

/// Without an engine the prepared forward (cross-attention keys and values computed once) gives
/// exactly `forward`'s values, for shared and per-sample timesteps.
#[test]
fn the_prepared_forward_equals_forward() {
    let model = tiny();
    let (latents, text) = inputs();
    let prepared = model.prepare(text.clone(), &off()).unwrap();
    assert!(prepared.engine().is_none() && prepared.fallback().is_none());
    for timesteps in
        [Timesteps::Shared(0), Timesteps::Shared(37), Timesteps::Shared(99), Timesteps::PerSample(vec![5, 80])]
    {
        let expected = model.forward(latents.clone(), text.clone(), &timesteps).into_data();
        assert_eq!(prepared.forward(latents.clone(), &timesteps).into_data(), expected, "{timesteps:?}");
    }
}

/// NdArray has no engine: `auto` runs the tensor ops without a word, `on` is an error.
#[test]
fn a_backend_without_engine_runs_the_tensor_ops_or_refuses() {
    let model = tiny();
    let (_, text) = inputs();
    let auto = model.prepare(text.clone(), &PrepareOptions::default()).unwrap();
    assert!(auto.engine().is_none() && auto.fallback().is_none());
    match model.prepare(text, &PrepareOptions::default().with_engine(EngineChoice::On)) {
        Err(EngineError::Unavailable(message)) => assert!(message.contains("no transformer engine"), "{message}"),
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("NdArray should have no engine"),
    }
}

/// The model's description has exactly the weights its sizes call for, and the plan of those
/// sizes reads each of them once, as a tensor of its shape, with no two live buffers sharing
/// memory and every access inside its buffer.
#[test]
fn the_plan_reads_every_weight_of_the_model_once() {
    let model = tiny();
    let (_, text) = inputs();
    let description = model.describe(text);
    description.validate().unwrap();
    let actual: Vec<_> = description.weights.iter().map(|(id, t)| (*id, t.shape())).collect();
    assert_eq!(actual.len(), 3 + 2 * 28 + 4, "3 embeddings, 28 tensors per block, norm_out and out");
    for elem in [Elem::F32, Elem::F16, Elem::BF16] {
        let plan = Plan::new(&description.sizes, elem, Elem::I64).unwrap();
        plan.check(&actual).unwrap();
        eprintln!(
            "tiny plan {}: {} prologue and {} forward steps, {} buffers, constants {} B, workspace {} B",
            elem.name(),
            plan.prologue.len(),
            plan.forward.len(),
            plan.buffers.len(),
            plan.constants_bytes,
            plan.workspace_bytes
        );
    }
}

/// Timesteps to test: the first and last shared, and different ones per sample.
fn all_timesteps(model: &Transformer2DModel<B>, batch: usize) -> Vec<Timesteps> {
    let last = model.num_embeds_ada_norm - 1;
    vec![Timesteps::Shared(0), Timesteps::Shared(last), per_sample(model, batch)]
}

/// A different timestep per sample.
fn per_sample(model: &Transformer2DModel<B>, batch: usize) -> Timesteps {
    Timesteps::PerSample((0..batch).map(|i| (17 + 40 * i) % model.num_embeds_ada_norm).collect())
}

/// Runs the model's forward through the plan's CPU executor in `elem` and returns the largest
/// difference from the tensor ops over `timesteps`.
fn executor_error(
    model: &Transformer2DModel<B>,
    latents: &Tensor<B, 2, Int>,
    text: &Tensor<B, 3>,
    elem: Elem,
    timesteps: &[Timesteps],
) -> f32 {
    let engine = HostEngine::new(&model.describe(text.clone()), elem).unwrap();
    let prepared = model.prepare_with_engine(text.clone(), Box::new(engine));
    assert!(prepared.engine().unwrap().contains(elem.name()));
    let mut worst = 0.0f32;
    for timesteps in timesteps {
        let expected = model.forward(latents.clone(), text.clone(), timesteps).into_data();
        // Twice: the second forward reuses the workspace the first one left.
        for _ in 0..2 {
            let got = prepared.forward(latents.clone(), timesteps).into_data();
            worst = worst.max(max_abs_diff(&got, &expected));
        }
    }
    worst
}

#[test]
fn the_plan_executed_on_the_cpu_equals_the_tensor_ops_on_the_fixture() {
    let model = tiny();
    let (latents, text) = inputs();
    let timesteps = all_timesteps(&model, 2);
    let f32_error = executor_error(&model, &latents, &text, Elem::F32, &timesteps);
    let f16_error = executor_error(&model, &latents, &text, Elem::F16, &timesteps);
    let bf16_error = executor_error(&model, &latents, &text, Elem::BF16, &timesteps);
    eprintln!("CPU plan executor against the tensor ops, tiny fixture: f32 {f32_error:.2e}, f16 {f16_error:.2e}, bf16 {bf16_error:.2e}");
    assert!(f32_error <= 2e-5, "f32 plan off by {f32_error:e}");
    assert!(f16_error <= 2e-2, "f16 plan off by {f16_error:e}");
    assert!(bf16_error <= 2e-1, "bf16 plan off by {bf16_error:e}");
}

/// A random model of the given shape (random weights of burn's initialisers, biases included).
fn random_model(config: &Transformer2DConfig) -> Transformer2DModel<B> {
    config.init::<B>(&device()).unwrap()
}

fn random_inputs(config: &Transformer2DConfig, batch: usize, text_len: usize) -> (Tensor<B, 2, Int>, Tensor<B, 3>) {
    let pixels = config.num_latent_pixels();
    let ids =
        Tensor::<B, 2>::random([batch, pixels], Distribution::Uniform(0.0, config.num_vector_embeds as f64), &device())
            .int()
            .clamp(0, config.num_vector_embeds as i64 - 1);
    let text = Tensor::random([batch, text_len, config.cross_attention_dim], Distribution::Normal(0.0, 1.0), &device());
    (ids, text)
}

/// Every feed-forward activation, on a small random model with odd sizes (3 heads of 5, a
/// 2 × 2 grid, 7 text tokens, batch 3, no q/k/v bias, every id the mask included).
#[test]
fn the_plan_executed_on_the_cpu_equals_the_tensor_ops_for_every_activation() {
    for activation in [
        FeedForwardActivation::Gelu,
        FeedForwardActivation::GeluApproximate,
        FeedForwardActivation::Geglu,
        FeedForwardActivation::GegluApproximate,
        FeedForwardActivation::Swiglu,
        FeedForwardActivation::LinearSilu,
    ] {
        let config = Transformer2DConfig::new(12, 2, 20, 6)
            .with_num_attention_heads(3)
            .with_attention_head_dim(5)
            .with_num_layers(2)
            .with_activation_fn(activation)
            .with_norm_eps(1e-6);
        let model = random_model(&config);
        let (latents, text) = random_inputs(&config, 3, 7);
        let error = executor_error(&model, &latents, &text, Elem::F32, &all_timesteps(&model, 3));
        eprintln!("{activation:?}: CPU plan executor off by {error:.2e}");
        assert!(error <= 2e-5, "{activation:?}: off by {error:e}");
    }
}

/// ITHQ's head width 88, text 77 × 512 and K = 4096 classes (with 4 heads, a 4 × 4 grid, one
/// block and 10 timesteps, so that the random weights take seconds in a debug build): head
/// offsets, padded score rows and the class count of the real model.
#[test]
fn the_plan_executed_on_the_cpu_equals_the_tensor_ops_at_ithq_widths() {
    let config = Transformer2DConfig {
        sample_size: 4,
        num_layers: 1,
        num_embeds_ada_norm: 10,
        num_attention_heads: 4,
        ..Transformer2DConfig::ithq()
    };
    let model = random_model(&config);
    let (latents, text) = random_inputs(&config, 2, 77);
    let error = executor_error(&model, &latents, &text, Elem::F32, &[per_sample(&model, 2)]);
    eprintln!("ITHQ widths, 4 heads, 4 × 4 grid, 1 block: CPU plan executor off by {error:.2e}");
    assert!(error <= 2e-5, "off by {error:e}");
}

/// The full ITHQ shape (32 × 32 latents, batch 2) with two blocks: minutes of CPU, so run by
/// hand (`cargo test --release -p transformer2d -- --ignored ithq_shape`).
#[test]
#[ignore]
fn the_plan_executed_on_the_cpu_equals_the_tensor_ops_at_the_ithq_shape() {
    let config = Transformer2DConfig { num_layers: 2, ..Transformer2DConfig::ithq() };
    let model = random_model(&config);
    let (latents, text) = random_inputs(&config, 2, 77);
    let start = std::time::Instant::now();
    let timesteps = [per_sample(&model, 2)];
    let error = executor_error(&model, &latents, &text, Elem::F32, &timesteps);
    eprintln!(
        "ITHQ shape, 2 blocks, batch 2: CPU plan executor off by {error:.2e} ({:.0} s)",
        start.elapsed().as_secs_f64()
    );
    assert!(error <= 2e-5, "off by {error:e}");
    let f16 = executor_error(&model, &latents, &text, Elem::F16, &timesteps);
    eprintln!("ITHQ shape in f16 storage: off by {f16:.2e}");
}
