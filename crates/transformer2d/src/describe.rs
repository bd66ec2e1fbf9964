//! The model as a transformer engine sees it ([`vq_kernels::engine`]): its sizes and its
//! weights under their checkpoint names, plus one generation's text.

use burn::nn::{Embedding, LayerNorm, Linear};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use vq_kernels::engine::{
    Activation, Layer, Param, TransformerDescription, TransformerSizes, TransformerWeights, WeightId, WeightTensor,
};

use crate::model::NORM_OUT_EPS;
use crate::norm::ADA_NORM_EPS;
use crate::{AdaLayerNorm, Attention, FeedForwardActivation, Transformer2DModel};

impl<B: Backend> Transformer2DModel<B> {
    /// This model's forward over `text` (`[batch, l, cross_attention_dim]`, cast to the
    /// weights' float type) as an engine is built from.
    pub fn describe(&self, text: Tensor<B, 3>) -> TransformerDescription<B> {
        let [batch, text_len, text_dim] = text.dims();
        let first = &self.transformer_blocks[0];
        let [dim, _] = first.attn1.to_q.weight.dims();
        let heads = first.attn1.heads;
        let [ff_inner, _] = first.ff.proj_out.weight.dims();
        let [_, classes] = self.out.weight.dims();
        let embedding = &self.latent_image_embedding;
        let sizes = TransformerSizes {
            batch,
            height: embedding.height_emb.weight.dims()[0],
            width: embedding.width_emb.weight.dims()[0],
            heads,
            head_dim: dim / heads,
            text_len,
            text_dim,
            ff_inner,
            activation: activation(first.ff.activation),
            classes,
            timesteps: self.num_embeds_ada_norm,
            layers: self.transformer_blocks.len(),
            attention_bias: first.attn1.to_q.bias.is_some(),
            ada_norm_eps: ADA_NORM_EPS,
            ff_norm_eps: self.norm_eps,
            norm_out_eps: NORM_OUT_EPS,
        };

        let mut weights = TransformerWeights::default();
        let top = |layer| move |param| WeightId::top(layer, param);
        embedding_weight(&mut weights, top(Layer::ClassEmbedding), &embedding.emb);
        embedding_weight(&mut weights, top(Layer::HeightEmbedding), &embedding.height_emb);
        embedding_weight(&mut weights, top(Layer::WidthEmbedding), &embedding.width_emb);
        for (i, block) in self.transformer_blocks.iter().enumerate() {
            let at = |layer| move |param| WeightId::block(i, layer, param);
            ada_norm_weights(&mut weights, at(Layer::Norm1Embedding), at(Layer::Norm1Linear), &block.norm1);
            ada_norm_weights(&mut weights, at(Layer::Norm2Embedding), at(Layer::Norm2Linear), &block.norm2);
            let attn1 = [Layer::Attn1Q, Layer::Attn1K, Layer::Attn1V, Layer::Attn1Out];
            attention_weights(&mut weights, attn1.map(at), &block.attn1);
            let attn2 = [Layer::Attn2Q, Layer::Attn2K, Layer::Attn2V, Layer::Attn2Out];
            attention_weights(&mut weights, attn2.map(at), &block.attn2);
            norm_weights(&mut weights, at(Layer::Norm3), &block.norm3);
            linear_weights(&mut weights, at(Layer::FfIn), &block.ff.proj_in);
            linear_weights(&mut weights, at(Layer::FfOut), &block.ff.proj_out);
        }
        norm_weights(&mut weights, top(Layer::NormOut), &self.norm_out);
        linear_weights(&mut weights, top(Layer::Out), &self.out);

        let dtype = self.out.weight.val().dtype();
        let text = if text.dtype() == dtype { text } else { text.cast(dtype) };
        TransformerDescription { sizes, weights, text }
    }
}

/// The engine's name of a feed-forward activation.
fn activation(activation: FeedForwardActivation) -> Activation {
    match activation {
        FeedForwardActivation::Gelu => Activation::Gelu,
        FeedForwardActivation::GeluApproximate => Activation::GeluTanh,
        FeedForwardActivation::Geglu => Activation::Geglu,
        FeedForwardActivation::GegluApproximate => Activation::QuickGelu,
        FeedForwardActivation::Swiglu => Activation::Swiglu,
        FeedForwardActivation::LinearSilu => Activation::Silu,
    }
}

fn linear_weights<B: Backend>(weights: &mut TransformerWeights<B>, id: impl Fn(Param) -> WeightId, linear: &Linear<B>) {
    weights.insert(id(Param::Weight), WeightTensor::Matrix(linear.weight.val()));
    if let Some(bias) = &linear.bias {
        weights.insert(id(Param::Bias), WeightTensor::Vector(bias.val()));
    }
}

fn norm_weights<B: Backend>(weights: &mut TransformerWeights<B>, id: impl Fn(Param) -> WeightId, norm: &LayerNorm<B>) {
    weights.insert(id(Param::Weight), WeightTensor::Vector(norm.gamma.val()));
    if let Some(beta) = &norm.beta {
        weights.insert(id(Param::Bias), WeightTensor::Vector(beta.val()));
    }
}

fn embedding_weight<B: Backend>(
    weights: &mut TransformerWeights<B>,
    id: impl Fn(Param) -> WeightId,
    table: &Embedding<B>,
) {
    weights.insert(id(Param::Weight), WeightTensor::Matrix(table.weight.val()));
}

fn ada_norm_weights<B: Backend>(
    weights: &mut TransformerWeights<B>,
    emb: impl Fn(Param) -> WeightId,
    linear: impl Fn(Param) -> WeightId,
    norm: &AdaLayerNorm<B>,
) {
    embedding_weight(weights, emb, &norm.emb);
    linear_weights(weights, linear, &norm.linear);
}

fn attention_weights<B: Backend, F: Fn(Param) -> WeightId>(
    weights: &mut TransformerWeights<B>,
    [q, k, v, out]: [F; 4],
    attention: &Attention<B>,
) {
    linear_weights(weights, q, &attention.to_q);
    linear_weights(weights, k, &attention.to_k);
    linear_weights(weights, v, &attention.to_v);
    linear_weights(weights, out, &attention.to_out);
}
