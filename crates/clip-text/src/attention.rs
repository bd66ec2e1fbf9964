//! Causal multi-head self-attention (transformers' `CLIPAttention` with the causal mask that
//! `CLIPTextModel` builds).

use burn::module::{Initializer, Module};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{backend::Backend, Bool, Tensor};

/// Self-attention with `q/k/v/out_proj` (all with bias), scale `1/√head_dim`, causal.
#[derive(Module, Debug)]
pub struct CLIPAttention<B: Backend> {
    /// `self_attn.q_proj.{weight,bias}` `H → H`.
    pub q_proj: Linear<B>,
    /// `self_attn.k_proj.{weight,bias}` `H → H`.
    pub k_proj: Linear<B>,
    /// `self_attn.v_proj.{weight,bias}` `H → H`.
    pub v_proj: Linear<B>,
    /// `self_attn.out_proj.{weight,bias}` `H → H`.
    pub out_proj: Linear<B>,
    /// Number of heads (`H / num_heads` = head width).
    pub num_heads: usize,
}

impl<B: Backend> CLIPAttention<B> {
    /// Creates the layer for width `hidden_size` split into `num_heads` heads, with zero
    /// weights (to be loaded).
    ///
    /// # Panics
    /// If `hidden_size` is not a multiple of `num_heads` (a validated config never is).
    pub fn new(hidden_size: usize, num_heads: usize, device: &B::Device) -> Self {
        assert!(
            num_heads > 0 && hidden_size.is_multiple_of(num_heads),
            "hidden_size {hidden_size} must be a multiple of num_heads {num_heads}"
        );
        let linear = || {
            LinearConfig::new(hidden_size, hidden_size)
                .with_initializer(Initializer::Zeros)
                .init(device)
        };
        Self {
            q_proj: linear(),
            k_proj: linear(),
            v_proj: linear(),
            out_proj: linear(),
            num_heads,
        }
    }

    /// # Shapes
    /// - `hidden_states`: `[B, L, H]`
    /// - `key_padding_mask`: `[B, L]`, `true` = padding key that no query may attend to
    /// - output: `[B, L, H]`
    pub fn forward(&self, hidden_states: Tensor<B, 3>, key_padding_mask: Option<Tensor<B, 2, Bool>>) -> Tensor<B, 3> {
        let [batch, seq_len, hidden] = hidden_states.dims();
        let head_dim = hidden / self.num_heads;
        // [B, L, H] -> [B, L, heads, d] -> [B, heads, L, d]
        let split_heads = |x: Tensor<B, 3>| x.reshape([batch, seq_len, self.num_heads, head_dim]).swap_dims(1, 2);
        let query = split_heads(self.q_proj.forward(hidden_states.clone()));
        let key = split_heads(self.k_proj.forward(hidden_states.clone()));
        let value = split_heads(self.v_proj.forward(hidden_states));

        let mask = key_padding_mask.map(|mask| {
            // [B, L] -> [B, 1, 1, L] -> [B, heads, L, L]: the same keys are hidden from every query
            mask.reshape([batch, 1, 1, seq_len])
                .expand([batch, self.num_heads, seq_len, seq_len])
        });
        let context = causal_attention(query, key, value, mask); // [B, heads, L, d]
        let context = context.swap_dims(1, 2).reshape([batch, seq_len, hidden]); // [B, L, H]
        self.out_proj.forward(context)
    }
}

/// softmax(QKᵀ/√d + causal mask [+ padding mask])·V through burn's fused attention op.
///
/// transformers fills masked scores with the dtype's minimum, burn with −∞; both give an exact 0
/// after the softmax as long as a row keeps one unmasked score — always true for CLIP's causal
/// mask (position 0 attends to itself) unless a padding mask hides every earlier key (left
/// padding), where burn returns a zero row instead of transformers' uniform average.
/// The default scale (`None` = 1/√d) keeps the flash kernels eligible on GPU backends.
///
/// # Shapes
/// - `query`, `key`, `value`: `[B, heads, L, d]`
/// - `mask`: `[B, heads, L, L]`, `true` = masked
/// - output: `[B, heads, L, d]`
pub fn causal_attention<B: Backend>(
    query: Tensor<B, 4>,
    key: Tensor<B, 4>,
    value: Tensor<B, 4>,
    mask: Option<Tensor<B, 4, Bool>>,
) -> Tensor<B, 4> {
    let options = AttentionModuleOptions {
        scale: None,
        softcap: None,
        is_causal: true,
    };
    attention(query, key, value, mask, None, options)
}
