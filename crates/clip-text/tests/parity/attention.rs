//! The attention the text encoder runs (causal, optionally with a padding mask) against the
//! explicit math of transformers' eager path: softmax(QKᵀ/√d + mask)·V with masked scores at
//! f32::MIN.

use burn::tensor::activation::softmax;
use burn::tensor::{Bool, Int, Tensor, TensorData};
use clip_text::CLIPTextModel;
use vq_kernels::portable::{merge_heads, split_heads};
use vq_kernels::{AttentionOptions, KernelBackend};
use vq_scheduler::TorchGenerator;

use crate::common::{device, fixture, int_tensor, reference, B};

/// Values in [−2, 2) from a fixed torch-compatible stream.
fn uniform<const D: usize>(generator: &mut TorchGenerator, shape: [usize; D]) -> Tensor<B, D> {
    let values: Vec<f32> = generator.uniform_vec(shape.iter().product()).into_iter().map(|u| 4.0 * u - 2.0).collect();
    Tensor::from_data(TensorData::new(values, shape), &device())
}

/// `true` above the diagonal: key j is in the future of query i.
fn causal_mask(batch: usize, heads: usize, len: usize) -> Tensor<B, 4, Bool> {
    let rows = Tensor::<B, 1, Int>::arange(0..len as i64, &device()).reshape([len, 1]);
    let cols = Tensor::<B, 1, Int>::arange(0..len as i64, &device()).reshape([1, len]);
    cols.greater(rows).reshape([1, 1, len, len]).expand([batch, heads, len, len])
}

fn explicit_attention(q: Tensor<B, 4>, k: Tensor<B, 4>, v: Tensor<B, 4>, mask: Tensor<B, 4, Bool>) -> Tensor<B, 4> {
    let [_, _, _, head_dim] = q.dims();
    let scores = q.matmul(k.swap_dims(2, 3)) * (1.0 / (head_dim as f64).sqrt());
    softmax(scores.mask_fill(mask, f32::MIN), 3).matmul(v)
}

/// The text encoder's attention on `[batch, heads, L, d]` inputs.
fn causal_attention(
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
    padding: Option<Tensor<B, 2, Bool>>,
) -> Tensor<B, 4> {
    let heads = q.dims()[1];
    let options = AttentionOptions::heads(heads).with_causal().with_key_padding_mask(padding);
    split_heads(B::multi_head_attention(merge_heads(q), merge_heads(k), merge_heads(v), options), heads)
}

fn max_diff(a: Tensor<B, 4>, b: Tensor<B, 4>) -> f32 {
    (a - b).abs().max().into_scalar()
}

#[test]
fn fused_causal_attention_equals_explicit_math() {
    let mut generator = TorchGenerator::new(7);
    let shape = [2, 3, 9, 8];
    let (q, k, v) = (uniform(&mut generator, shape), uniform(&mut generator, shape), uniform(&mut generator, shape));
    let fused = causal_attention(q.clone(), k.clone(), v.clone(), None);
    let explicit = explicit_attention(q, k, v, causal_mask(2, 3, 9));
    let diff = max_diff(fused, explicit);
    println!("fused vs explicit causal attention: max |Δ| {diff:.3e}");
    assert!(diff <= 1e-6, "{diff}");
}

#[test]
fn fused_attention_with_padding_mask_equals_explicit_math() {
    let mut generator = TorchGenerator::new(8);
    let shape = [2, 2, 6, 4];
    let (q, k, v) = (uniform(&mut generator, shape), uniform(&mut generator, shape), uniform(&mut generator, shape));
    // row 0: keys 4, 5 are padding; row 1: key 5
    let padding = Tensor::<B, 2, Bool>::from_bool(
        TensorData::from([[false, false, false, false, true, true], [false, false, false, false, false, true]]),
        &device(),
    );
    let fused = causal_attention(q.clone(), k.clone(), v.clone(), Some(padding.clone()));
    let mask = causal_mask(2, 2, 6).bool_or(padding.reshape([2, 1, 1, 6]).expand([2, 2, 6, 6]));
    let diff = max_diff(fused, explicit_attention(q, k, v, mask));
    assert!(diff <= 1e-6, "{diff}");
}

/// With right padding the causal mask already hides the padding from every real token, so an
/// attention mask changes only the padding positions (tiny fixture model, prompt of 8 ids).
#[test]
fn right_padding_mask_leaves_real_tokens_unchanged() {
    let model = CLIPTextModel::<B>::from_pretrained(&fixture("tiny/hub/text_encoder"), None, &device()).unwrap();
    let ids: Tensor<B, 2, Int> = int_tensor(reference("tiny.safetensors", "tok.input_ids"));
    let ids = ids.slice([0..1, 0..77]); // "teddy bear playing in the pool": 8 ids, then pad 0
    let mut mask = vec![1i64; 8];
    mask.resize(77, 0);
    let mask = Tensor::<B, 2, Int>::from_data(TensorData::new(mask, [1, 77]), &device());
    let plain = model.forward(ids.clone()).last_hidden_state;
    let masked = model.forward_with_attention_mask(ids, mask).last_hidden_state;
    let real = |t: Tensor<B, 3>| t.slice([0..1, 0..8, 0..16]).unsqueeze::<4>();
    assert_eq!(max_diff(real(plain.clone()), real(masked.clone())), 0.0);
    let pads = |t: Tensor<B, 3>| t.slice([0..1, 8..77, 0..16]).unsqueeze::<4>();
    assert!(max_diff(pads(plain), pads(masked)) > 1e-3);
}
