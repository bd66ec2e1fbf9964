//! Token + position embeddings (transformers' `CLIPTextEmbeddings`).

use burn::module::{Initializer, Module};
use burn::nn::{Embedding, EmbeddingConfig};
use burn::tensor::{backend::Backend, Int, Tensor};

use crate::config::CLIPTextConfig;

/// `token_embedding[ids] + position_embedding[0..L]`.
#[derive(Module, Debug)]
pub struct CLIPTextEmbeddings<B: Backend> {
    /// `embeddings.token_embedding.weight` `[vocab_size, H]`.
    pub token_embedding: Embedding<B>,
    /// `embeddings.position_embedding.weight` `[max_position_embeddings, H]`.
    /// (The checkpoint's `embeddings.position_ids` buffer is `0..max_position_embeddings` and is
    /// not stored: positions are always `0..L`.)
    pub position_embedding: Embedding<B>,
}

impl CLIPTextConfig {
    /// The embeddings of this config (zero tables until loaded).
    pub(crate) fn init_embeddings<B: Backend>(&self, device: &B::Device) -> CLIPTextEmbeddings<B> {
        CLIPTextEmbeddings {
            token_embedding: EmbeddingConfig::new(self.vocab_size, self.hidden_size)
                .with_initializer(Initializer::Zeros)
                .init(device),
            position_embedding: EmbeddingConfig::new(self.max_position_embeddings, self.hidden_size)
                .with_initializer(Initializer::Zeros)
                .init(device),
        }
    }
}

impl<B: Backend> CLIPTextEmbeddings<B> {
    /// # Shapes
    /// - `input_ids`: `[B, L]` with `L <= max_position_embeddings`
    /// - output: `[B, L, H]`
    pub fn forward(&self, input_ids: Tensor<B, 2, Int>) -> Tensor<B, 3> {
        let [_, seq_len] = input_ids.dims();
        let device = input_ids.device();
        let positions = Tensor::<B, 1, Int>::arange(0..seq_len as i64, &device).unsqueeze::<2>(); // [1, L]
        let tokens = self.token_embedding.forward(input_ids); // [B, L, H]
        tokens + self.position_embedding.forward(positions) // [1, L, H] broadcast over B
    }
}
