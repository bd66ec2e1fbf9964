//! Input embedding of the latent classes (diffusers `models/embeddings.py`,
//! `ImagePositionalEmbeddings`; VQ-Diffusion's `DalleMaskImageEmbedding`).

use burn::module::Module;
use burn::nn::{Embedding, EmbeddingConfig};
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor};

/// Configuration of [`ImagePositionalEmbeddings`].
#[derive(Debug, Clone)]
pub(crate) struct ImagePositionalEmbeddingsConfig {
    /// Number of classes including the mask class (`num_vector_embeds`).
    pub(crate) num_embed: usize,
    /// Latent grid height h.
    pub(crate) height: usize,
    /// Latent grid width w.
    pub(crate) width: usize,
    /// Embedding width D.
    pub(crate) embed_dim: usize,
}

impl ImagePositionalEmbeddingsConfig {
    pub(crate) fn init<B: Backend>(&self, device: &B::Device) -> ImagePositionalEmbeddings<B> {
        ImagePositionalEmbeddings {
            emb: EmbeddingConfig::new(self.num_embed, self.embed_dim).init(device),
            height_emb: EmbeddingConfig::new(self.height, self.embed_dim).init(device),
            width_emb: EmbeddingConfig::new(self.width, self.embed_dim).init(device),
        }
    }
}

/// `emb[id] + (height_emb[row] + width_emb[col])` for every latent pixel, row-major
/// (pixel p sits at row p / w, column p % w).
#[derive(Module, Debug)]
pub struct ImagePositionalEmbeddings<B: Backend> {
    /// Class embeddings `[K + 1, D]`; the mask id K has its own row
    /// (`latent_image_embedding.emb.weight`).
    pub emb: Embedding<B>,
    /// Row embeddings `[h, D]` (`latent_image_embedding.height_emb.weight`).
    pub height_emb: Embedding<B>,
    /// Column embeddings `[w, D]` (`latent_image_embedding.width_emb.weight`).
    pub width_emb: Embedding<B>,
}

impl<B: Backend> ImagePositionalEmbeddings<B> {
    /// # Shapes
    ///
    /// - `ids`: `[batch, n]` class ids in `0..=K`, with `n ≤ h·w` (the first n pixels)
    /// - output: `[batch, n, D]`
    ///
    /// # Panics
    ///
    /// If `n` is zero or exceeds h·w.
    pub fn forward(&self, ids: Tensor<B, 2, Int>) -> Tensor<B, 3> {
        let [_, n] = ids.dims();
        let pos = self.positions();
        let [_, pixels, _] = pos.dims();
        assert!((1..=pixels).contains(&n), "latent length {n} must be in 1..={pixels} (sample_size²)");
        let pos = if n < pixels { pos.narrow(1, 0, n) } else { pos };
        self.emb.forward(ids) + pos
    }

    /// Latent pixels h·w.
    pub(crate) fn pixels(&self) -> usize {
        self.height_emb.weight.dims()[0] * self.width_emb.weight.dims()[0]
    }

    /// Positional table `[1, h·w, D]`: the height and width embeddings are summed first, then
    /// added to the class embedding (the order diffusers adds them in).
    fn positions(&self) -> Tensor<B, 3> {
        let [h, d] = self.height_emb.weight.dims();
        let [w, _] = self.width_emb.weight.dims();
        // [h, D] -> [h, 1, D] and [w, D] -> [1, w, D], broadcast to [h, w, D] -> [1, h·w, D].
        let rows = self.height_emb.weight.val().reshape([h, 1, d]);
        let cols = self.width_emb.weight.val().reshape([1, w, d]);
        (rows + cols).reshape([1, h * w, d])
    }
}
