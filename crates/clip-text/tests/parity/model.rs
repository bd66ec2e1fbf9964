//! `CLIPTextModel` against transformers on the tiny pipeline (`fixtures/reference/tiny.safetensors`:
//! `text.last_hidden_state`, `text.pooled` for the six `tok.input_ids` rows) in every layout.

use burn::tensor::{f16, Int, Tensor};
use clip_text::{CLIPTextModel, EosRule};

use crate::common::{device, fixture, int_tensor, max_abs_diff, reference, B};

/// Parity bound for f32 weights (`docs/reference.md`, "Parity tolerances").
const F32_TOLERANCE: f32 = 1e-5;

/// Loads `tiny/<layout>/text_encoder` and returns the max abs errors (last_hidden_state, pooled).
fn errors(layout: &str, variant: Option<&str>) -> (f32, f32) {
    let dir = fixture(&format!("tiny/{layout}/text_encoder"));
    let model =
        CLIPTextModel::<B>::from_pretrained(&dir, variant, &device()).unwrap_or_else(|e| panic!("{layout}: {e}"));
    assert_eq!(model.eos_rule, EosRule::ArgmaxId, "legacy eos_token_id 2");
    let ids: Tensor<B, 2, Int> = int_tensor(reference("tiny.safetensors", "tok.input_ids"));
    let output = model.forward(ids);
    let hidden = max_abs_diff(output.last_hidden_state, &reference("tiny.safetensors", "text.last_hidden_state"));
    let pooled = max_abs_diff(output.pooler_output, &reference("tiny.safetensors", "text.pooled"));
    println!("tiny/{layout} {variant:?}: max |Δ| last_hidden_state {hidden:.3e}, pooled {pooled:.3e}");
    (hidden, pooled)
}

#[test]
fn hub_layout_safetensors_with_prefix() {
    let (hidden, pooled) = errors("hub", None);
    assert!(hidden <= F32_TOLERANCE && pooled <= F32_TOLERANCE, "{hidden} {pooled}");
}

#[test]
fn raw_layout_without_prefix() {
    let (hidden, pooled) = errors("raw", None);
    assert!(hidden <= F32_TOLERANCE && pooled <= F32_TOLERANCE, "{hidden} {pooled}");
}

#[test]
fn bin_layout_pytorch_pickle() {
    let (hidden, pooled) = errors("bin", None);
    assert!(hidden <= F32_TOLERANCE && pooled <= F32_TOLERANCE, "{hidden} {pooled}");
}

/// `model.fp16.safetensors` cast to f32 on load. The reference ran on the f32 weights, so the
/// error is the effect of rounding every weight to f16 (relative step 2⁻¹¹ ≈ 4.9e−4) through
/// three layers and a final LayerNorm whose outputs reach |x| ≈ 2.7 here: a few relative steps
/// of that is ~1e−3 (measured: 2.2e−3 last_hidden_state, 1.3e−3 pooled). 1e−2 leaves a 4×
/// margin; a broken cast (f16 bits read as f32, zeros, wrong layout) gives errors of order 1.
/// `fp16_weights_are_the_f32_weights_rounded` pins the cast itself exactly.
#[test]
fn hub_layout_fp16_variant() {
    let (hidden, pooled) = errors("hub", Some("fp16"));
    assert!(hidden <= 1e-2 && pooled <= 1e-2, "{hidden} {pooled}");
    assert!(hidden > 0.0, "f16 rounding must show: was the f32 file loaded?");
}

/// The fp16 file loads to exactly the f32 weights rounded to f16 (then widened to f32), in
/// burn's `[in, out]` Linear layout.
#[test]
fn fp16_weights_are_the_f32_weights_rounded() {
    let dir = fixture("tiny/hub/text_encoder");
    let model = CLIPTextModel::<B>::from_pretrained(&dir, Some("fp16"), &device()).unwrap();
    let f32_file = dir.join("model.safetensors");
    let round = |x: f32| f16::from_f32(x).to_f32();

    let loaded = model.encoder.layers[2].mlp.fc1.weight.val(); // [16, 37]
    let file = vq_weights::read_tensor(&f32_file, "text_model.encoder.layers.2.mlp.fc1.weight").unwrap();
    let file = Tensor::<B, 2>::from_data(file, &device()).transpose(); // [37, 16] -> [16, 37]
    let expected: Vec<f32> = file.into_data().to_vec::<f32>().unwrap().into_iter().map(round).collect();
    assert_eq!(loaded.into_data().to_vec::<f32>().unwrap(), expected);

    let loaded = model.final_layer_norm.gamma.val();
    let file = vq_weights::read_tensor(&f32_file, "text_model.final_layer_norm.weight").unwrap();
    let expected: Vec<f32> = file.to_vec::<f32>().unwrap().into_iter().map(round).collect();
    assert_eq!(loaded.into_data().to_vec::<f32>().unwrap(), expected);
}

/// `init_random` draws transformers' initialisation: matrices N(0, 0.02²) (sample standard
/// deviation within 5 % over ≥ 2,048 values, seeded), biases 0, LayerNorms the identity — and so encodes
/// to finite states that are not all zero, unlike `init`'s zeros (whose L2-normalised prompt
/// embeddings are NaN, from which CUDA's argmax samples id −1).
#[test]
fn random_initialisation_is_transformers_and_encodes_to_nonzero_states() {
    let config = clip_text::CLIPTextConfig {
        vocab_size: 100,
        hidden_size: 32,
        intermediate_size: 64,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        max_position_embeddings: 16,
        ..clip_text::CLIPTextConfig::vit_b_32()
    };
    <B as burn::tensor::backend::Backend>::seed(&device(), 0);
    let model = config.init_random::<B>(&device()).unwrap();
    let std = |t: Tensor<B, 2>| t.clone().sub(t.mean().unsqueeze()).powi_scalar(2).mean().sqrt().into_scalar();
    let token_std = std(model.embeddings.token_embedding.weight.val());
    let fc1_std = std(model.encoder.layers[0].mlp.fc1.weight.val());
    assert!((token_std - 0.02).abs() < 0.001 && (fc1_std - 0.02).abs() < 0.001, "{token_std} {fc1_std}");
    let bias = model.encoder.layers[1].mlp.fc2.bias.as_ref().expect("fc2 has a bias").val();
    assert_eq!(bias.abs().max().into_scalar(), 0.0);
    assert_eq!(model.final_layer_norm.gamma.val().min().into_scalar(), 1.0);

    let ids = Tensor::<B, 2, Int>::from_ints([[49, 3, 7, 99]], &device());
    let hidden = model.forward(ids).last_hidden_state;
    assert!(!hidden.clone().is_nan().any().into_scalar(), "NaN in the states");
    assert!(hidden.abs().max().into_scalar() > 0.1, "the states are zero");
}
