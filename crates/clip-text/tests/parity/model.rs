//! `CLIPTextModel` against transformers on the tiny pipeline (`fixtures/reference/tiny.safetensors`:
//! `text.last_hidden_state`, `text.pooled` for the six `tok.input_ids` rows) in every layout.

use burn::tensor::{f16, Int, Tensor};
use clip_text::{CLIPTextModel, EosRule};

use crate::common::{device, fixture, int_tensor, max_abs_diff, reference, B};

/// Parity bound for f32 weights (diffusers-vq-diffusion.md §14.1).
const F32_TOLERANCE: f32 = 1e-5;

/// Loads `tiny/<layout>/text_encoder` and returns the max abs errors (last_hidden_state, pooled).
fn errors(layout: &str, variant: Option<&str>) -> (f32, f32) {
    let dir = fixture(&format!("tiny/{layout}/text_encoder"));
    let model = CLIPTextModel::<B>::from_pretrained_dir_variant(&dir, variant, &device())
        .unwrap_or_else(|e| panic!("{layout}: {e}"));
    assert_eq!(model.eos_rule, EosRule::ArgmaxId, "legacy eos_token_id 2");
    let ids: Tensor<B, 2, Int> = int_tensor(reference("tiny.safetensors", "tok.input_ids"));
    let output = model.forward(ids);
    let hidden = max_abs_diff(
        output.last_hidden_state,
        &reference("tiny.safetensors", "text.last_hidden_state"),
    );
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
    let model = CLIPTextModel::<B>::from_pretrained_dir_variant(&dir, Some("fp16"), &device()).unwrap();
    let f32_file = dir.join("model.safetensors");
    let round = |x: f32| f16::from_f32(x).to_f32();

    let loaded = model.encoder.layers[2].mlp.fc1.weight.val(); // [16, 37]
    let file = vq_weights::read_tensor(&f32_file, "text_model.encoder.layers.2.mlp.fc1.weight").unwrap();
    let file = Tensor::<B, 2>::from_data(file, &device()).transpose(); // [37, 16] -> [16, 37]
    let expected: Vec<f32> = file
        .into_data()
        .to_vec::<f32>()
        .unwrap()
        .into_iter()
        .map(round)
        .collect();
    assert_eq!(loaded.into_data().to_vec::<f32>().unwrap(), expected);

    let loaded = model.final_layer_norm.gamma.val();
    let file = vq_weights::read_tensor(&f32_file, "text_model.final_layer_norm.weight").unwrap();
    let expected: Vec<f32> = file.to_vec::<f32>().unwrap().into_iter().map(round).collect();
    assert_eq!(loaded.into_data().to_vec::<f32>().unwrap(), expected);
}
