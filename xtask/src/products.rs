//! The matrix products of one transformer forward, timed alone (`xtask bench --what products`).
//!
//! Where a forward's time goes: on CUDA about half of it is in the matrix products, which a
//! batch-8 forward ran at about a third of cuBLAS's rate (BENCHMARKS.md, "GPU speed"). This
//! times each kind of product of the ITHQ forward with the backend's `matmul` on random
//! operands laid out as the model lays them out (`Linear`: a `[batch, rows, in]` activation
//! times a broadcast `[1, in, out]` weight; attention: per-head strided views of
//! `[batch, len, heads, head_dim]`), so that the same list in torch (`bench_diffusers.py --what
//! products`) gives the gap product by product, with nothing else in the timing.
//!
//! Each `Linear` product is also timed with its rows flattened (`[batch·rows, in] × [in, out]`,
//! one plain product instead of a broadcast batched one): a cheap change to the model if it is
//! faster.

use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Tensor};
use transformer2d::{FeedForwardActivation, Transformer2DConfig};

/// One kind of product in a forward: `count` products `[groups, m, k] × [groups, k, n]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Product {
    /// Which layers compute it.
    pub name: &'static str,
    /// How many a forward computes.
    pub count: usize,
    /// What the operands are.
    pub form: Form,
    /// Independent products per call (batch × heads for attention, batch for `Linear`).
    pub groups: usize,
    /// Rows of the left operand.
    pub m: usize,
    /// The contracted width.
    pub k: usize,
    /// Columns of the right operand.
    pub n: usize,
}

/// How the model holds a product's operands.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Form {
    /// `Linear`: `[groups, m, k]` times a weight `[1, k, n]` broadcast over the groups.
    Linear,
    /// Attention scores `q · kᵀ`: both operands per-head views of `[batch, len, heads, head_dim]`.
    Scores,
    /// Attention output `p · v`: contiguous probabilities times a per-head view of `v`.
    Values,
}

impl Product {
    /// Floating-point operations of all `count` products.
    pub fn flops(&self) -> f64 {
        2.0 * (self.count * self.groups * self.m * self.k * self.n) as f64
    }
}

/// The products of one forward of `config` on `batch` sequences with `text_len` caption tokens
/// of width `config.cross_attention_dim` (diffusers' `BasicTransformerBlock` with AdaLayerNorm:
/// self-attention, cross-attention, feed-forward; then the output projection).
pub fn forward_products(config: &Transformer2DConfig, batch: usize, text_len: usize) -> Vec<Product> {
    let (layers, d, pixels) = (config.num_layers, config.inner_dim(), config.num_latent_pixels());
    let (heads, head_dim, text_dim) =
        (config.num_attention_heads, config.attention_head_dim, config.cross_attention_dim);
    let ff = 4 * d;
    let ff_in = match config.activation_fn {
        FeedForwardActivation::Geglu | FeedForwardActivation::Swiglu => 2 * ff,
        _ => ff,
    };
    let linear = |name, count, m, k, n| Product { name, count, form: Form::Linear, groups: batch, m, k, n };
    let attention = |name, form, m, k, n| Product { name, count: layers, form, groups: batch * heads, m, k, n };
    vec![
        linear("self-attention q, k, v, out; cross-attention q, out", 6 * layers, pixels, d, d),
        linear("cross-attention k, v (caption tokens)", 2 * layers, text_len, text_dim, d),
        linear("feed-forward in", layers, pixels, d, ff_in),
        linear("feed-forward out", layers, pixels, ff, d),
        linear("AdaLayerNorm scale and shift (one row)", 2 * layers, 1, d, 2 * d),
        linear("output projection", 1, pixels, d, config.num_classes()),
        attention("self-attention scores q·kᵀ", Form::Scores, pixels, head_dim, pixels),
        attention("self-attention p·v", Form::Values, pixels, pixels, head_dim),
        attention("cross-attention scores q·kᵀ", Form::Scores, pixels, head_dim, text_len),
        attention("cross-attention p·v", Form::Values, pixels, text_len, head_dim),
    ]
}

/// Random operands of `product` in the model's layout; `flat` gives a `Linear` product its
/// rows flattened into one `[groups·m, k] × [k, n]` product (shown as one group).
pub fn operands<B: Backend>(product: &Product, flat: bool, device: &B::Device) -> (Tensor<B, 3>, Tensor<B, 3>) {
    let normal = Distribution::Normal(0.0, 1.0);
    let Product { groups, m, k, n, .. } = *product;
    match product.form {
        Form::Linear if flat => {
            (Tensor::random([1, groups * m, k], normal, device), Tensor::random([1, k, n], normal, device))
        }
        Form::Linear => (Tensor::random([groups, m, k], normal, device), Tensor::random([1, k, n], normal, device)),
        // Per-head views as `Attention::heads` makes them: [batch, len, heads, hd] → [batch·heads, len, hd]
        // through a swap of the len and heads axes (strided, not copied) — here with batch·heads
        // folded, since burn's matmul sees the same strides either way.
        Form::Scores => (
            Tensor::random([m, groups, k], normal, device).swap_dims(0, 1),
            Tensor::random([n, groups, k], normal, device).swap_dims(0, 1).swap_dims(1, 2),
        ),
        Form::Values => (
            Tensor::random([groups, m, k], normal, device),
            Tensor::random([k, groups, n], normal, device).swap_dims(0, 1),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ithq_forward_has_the_flops_of_its_parameters_plus_attention() {
        let config = Transformer2DConfig::ithq();
        let products = forward_products(&config, 2, 77);
        let linear: f64 = products.iter().filter(|p| p.form == Form::Linear).map(Product::flops).sum();
        // Every Linear weight is used once per row: 2 · rows · weights. The transformer's weights
        // outside Linear layers (embeddings, norms, biases) are not products.
        let d = 1408usize;
        let per_block_pixels = 6 * d * d + 2 * 4 * d * d;
        let expected =
            2.0 * 2.0 * (36 * (1024 * per_block_pixels + 77 * 2 * 512 * d + 2 * d * 2 * d) + 1024 * d * 4096) as f64;
        assert_eq!(linear, expected);
        let attention: f64 = products.iter().filter(|p| p.form != Form::Linear).map(Product::flops).sum();
        assert_eq!(attention, 36.0 * 2.0 * 2.0 * 2.0 * 16.0 * 1024.0 * 88.0 * (1024.0 + 77.0));
        // ≈ 4.6 TFLOP: 460 TFLOP for a 100-step guided image.
        let total = (linear + attention) / 1e12;
        assert!((4.5..4.7).contains(&total), "{total}");
    }

    #[cfg(feature = "ndarray")]
    #[test]
    fn operands_have_the_shapes_of_their_product() {
        type B = burn::backend::NdArray;
        let device = Default::default();
        let config = Transformer2DConfig {
            num_layers: 1,
            num_attention_heads: 2,
            attention_head_dim: 4,
            cross_attention_dim: 6,
            num_vector_embeds: 10,
            sample_size: 3,
            ..Transformer2DConfig::ithq()
        };
        for product in forward_products(&config, 2, 5) {
            for flat in [false, true] {
                let (lhs, rhs) = operands::<B>(&product, flat, &device);
                let flattened = flat && product.form == Form::Linear;
                let (groups, rows) =
                    if flattened { (1, product.groups * product.m) } else { (product.groups, product.m) };
                assert_eq!(lhs.dims(), [groups, rows, product.k], "{}", product.name);
                assert_eq!(rhs.dims()[1..], [product.k, product.n], "{}", product.name);
                assert_eq!(lhs.matmul(rhs).dims(), [groups, rows, product.n], "{}", product.name);
            }
        }
    }
}
