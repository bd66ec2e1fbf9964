//! Which position of each sequence gives the pooled output (transformers' EOS rule in
//! `CLIPTextModel.forward`).

use burn::tensor::{backend::Backend, Int, Tensor};

/// How the pooled output's position is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EosRule {
    /// Configs with the legacy `eos_token_id == 2` (before transformers PR #24773): the position
    /// of the largest id (the EOS 49407 is the largest CLIP id); first one on ties.
    ArgmaxId,
    /// The first position holding this id; position 0 when the sequence has none
    /// (torch's argmax of an all-zero row).
    FirstMatch(i64),
}

impl EosRule {
    /// transformers' choice for a config's `eos_token_id`.
    pub fn from_eos_token_id(eos_token_id: i64) -> Self {
        if eos_token_id == 2 {
            Self::ArgmaxId
        } else {
            Self::FirstMatch(eos_token_id)
        }
    }

    /// The pooled position of every sequence.
    ///
    /// Each candidate gets the key `value·L + (L − 1 − position)`, so the maximum is unique and
    /// is the *first* position of the largest value — torch's argmax tie rule — whatever tie rule
    /// the backend's argmax has.
    ///
    /// # Shapes
    /// - `input_ids`: `[B, L]`
    /// - output: `[B]`
    pub fn positions<B: Backend>(self, input_ids: Tensor<B, 2, Int>) -> Tensor<B, 1, Int> {
        let [batch, seq_len] = input_ids.dims();
        let device = input_ids.device();
        let value = match self {
            Self::ArgmaxId => input_ids,
            Self::FirstMatch(eos) => input_ids.equal_elem(eos).int(),
        };
        // [1, L]: L−1, L−2, …, 0 — earlier positions win ties
        let earliness = Tensor::<B, 1, Int>::arange(0..seq_len as i64, &device)
            .neg()
            .add_scalar(seq_len as i64 - 1)
            .unsqueeze::<2>();
        let key = value.mul_scalar(seq_len as i64) + earliness; // [B, L]
        key.argmax(1).reshape([batch])
    }
}
