//! Parity with diffusers 0.42.1 on the tiny pipeline's VQ-VAE (`fixtures/reference/tiny.safetensors`,
//! `vqvae.*` tensors; made from `tiny/hub`, identical for `raw` and `bin`). The other layouts
//! load bit-identical parameters (`loading.rs`), so they are decoded here only through `hub`.

use burn::tensor::{Int, Tensor};
use vq_model::{to_rgb8, to_unit_range, InputError, VQModel};

use crate::common::{max_abs_diff, reference, reference_float, reference_int, tiny_vqvae, values, vqvae_dir, B};

/// Decoder output tolerance (≤ 1e-5 abs on the tiny model; `docs/reference.md`, "Parity tolerances").
const DECODE_TOL: f32 = 1e-5;

fn decode_reference_indices(model: &VQModel<B>) -> Tensor<B, 4> {
    model.decode_indices(reference_int("vqvae.in.indices"), (8, 8)).unwrap()
}

#[test]
fn decode_indices_and_8_bit_image_match_diffusers() {
    let model = tiny_vqvae("hub");
    let codes = model.quantize.get_codebook_entry(reference_int("vqvae.in.indices"), [1, 8, 8, 7]);
    assert_eq!(codes.into_data(), reference("vqvae.codebook_entries"), "codebook lookup is not exact");

    let decoded = decode_reference_indices(&model);
    let diff = max_abs_diff(decoded.clone(), reference_float("vqvae.decoded"));
    println!("decode_indices vs diffusers: max |diff| = {diff:e}");
    assert!(diff <= DECODE_TOL, "decoded: max |diff| {diff}");

    let unit = to_unit_range(decoded);
    let expected = reference_float::<4>("vqvae.image");
    let diff = max_abs_diff(unit.clone(), expected.clone());
    assert!(diff <= DECODE_TOL, "unit-range image: max |diff| {diff}");
    let rgb = to_rgb8(unit).to_vec::<u8>().unwrap();
    let expected_rgb = to_rgb8(expected).to_vec::<u8>().unwrap();
    assert_eq!(rgb.len(), 16 * 16 * 3);
    let mismatches = rgb.iter().zip(&expected_rgb).filter(|(a, b)| a != b).count();
    assert_eq!(mismatches, 0, "8-bit pixels differ from round(vqvae.image · 255)");

    bad_inputs_are_typed_errors(&model);
}

#[test]
fn encoder_latents_indices_and_reconstruction_match_diffusers() {
    let model = tiny_vqvae("hub");
    let latents = model.encode(reference_float("vqvae.enc.image")).unwrap();
    let diff = max_abs_diff(latents.clone(), reference_float("vqvae.enc.latents"));
    println!("encode vs diffusers: max |diff| = {diff:e}");
    assert!(diff <= DECODE_TOL, "latents: max |diff| {diff}");

    let quantized = model.quantize(latents.clone()).unwrap();
    let indices: Tensor<B, 2, Int> = quantized.indices;
    assert_eq!(indices.into_data(), reference("vqvae.enc.indices"), "code indices differ");
    let diff = max_abs_diff(quantized.quantized, reference_float("vqvae.enc.quantized"));
    assert!(diff <= DECODE_TOL, "quantized: max |diff| {diff}");

    // Legacy commitment loss, recomputed from diffusers' tensors: 1.25 · mean((e − z)²).
    let z = values(reference_float::<4>("vqvae.enc.latents"));
    let e = values(reference_float::<4>("vqvae.enc.quantized"));
    let mse = z.iter().zip(&e).map(|(z, e)| f64::from(e - z).powi(2)).sum::<f64>() / z.len() as f64;
    let loss = values(quantized.commit_loss)[0];
    assert!((f64::from(loss) - 1.25 * mse).abs() <= 1e-6 * (1.25 * mse).max(1e-3), "{loss} vs {}", 1.25 * mse);

    let decoded = model.decode(latents, true).unwrap();
    let diff = max_abs_diff(decoded, reference_float("vqvae.enc.decoded"));
    println!("decode(quantize) vs diffusers: max |diff| = {diff:e}");
    assert!(diff <= DECODE_TOL, "reconstruction: max |diff| {diff}");
}

#[test]
fn fp16_weights_decode_within_half_precision_rounding() {
    // The fp16 file holds the f32 weights rounded to 11 significant bits (relative error
    // ≤ 2⁻¹¹ ≈ 4.9e-4 each). diffusers itself, decoding these indices with the fp16 weights
    // upcast to f32, lands 2.3e-3 from its f32 output (outputs up to 1.6 in magnitude); the
    // tolerance allows twice that.
    let model = VQModel::<B>::from_pretrained(&vqvae_dir("hub"), Some("fp16"), &Default::default()).unwrap();
    let diff = max_abs_diff(decode_reference_indices(&model), reference_float("vqvae.decoded"));
    println!("fp16 weights vs diffusers f32: max |diff| = {diff:e}");
    assert!(diff <= 5e-3, "max |diff| {diff}");
    assert!(diff > 0.0, "fp16 weights cannot reproduce the f32 output exactly");
}

fn bad_inputs_are_typed_errors(model: &VQModel<B>) {
    let device = Default::default();
    // The mask class of VQ-Diffusion (= codebook size) has no codebook entry.
    let indices = Tensor::<B, 2, Int>::full([1, 64], 31, &device);
    assert!(matches!(
        model.decode_indices(indices, (8, 8)),
        Err(InputError::IndexOutOfRange { index: 31, num_embeddings: 31 })
    ));
    let indices = Tensor::<B, 2, Int>::zeros([1, 64], &device);
    assert!(matches!(model.decode_indices(indices, (8, 7)), Err(InputError::Shape { .. })));
    assert!(matches!(model.encode(Tensor::zeros([1, 4, 16, 16], &device)), Err(InputError::Shape { .. })));
    assert!(matches!(model.encode(Tensor::zeros([1, 3, 1, 16], &device)), Err(InputError::Shape { .. })));
    assert!(matches!(model.decode(Tensor::zeros([1, 12, 8, 8], &device), false), Err(InputError::Shape { .. })));
}
