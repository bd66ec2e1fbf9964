//! Diffusion timesteps fed to the AdaLayerNorms.

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};

/// The timestep(s) of a forward pass.
///
/// diffusers accepts only a single timestep for the whole batch (a per-sample tensor makes
/// `AdaLayerNorm` split the batch instead of scale/shift, huggingface/diffusers#7460).
/// Training and batches that mix denoising steps need one per sample; both give the same
/// numbers as diffusers where diffusers works.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Timesteps {
    /// One timestep shared by every sample (what `VQDiffusionPipeline` passes).
    Shared(usize),
    /// One timestep per sample, in batch order.
    PerSample(Vec<usize>),
}

impl From<usize> for Timesteps {
    fn from(t: usize) -> Self {
        Self::Shared(t)
    }
}

impl From<Vec<usize>> for Timesteps {
    fn from(ts: Vec<usize>) -> Self {
        Self::PerSample(ts)
    }
}

impl Timesteps {
    /// The timestep ids as an embedding index tensor `[1, 1]` (shared) or `[batch, 1]`.
    ///
    /// # Panics
    ///
    /// If a per-sample list does not have `batch` entries or a timestep is not below
    /// `num_embeds` (`num_embeds_ada_norm`, the number of training timesteps).
    pub(crate) fn to_ids<B: Backend>(&self, batch: usize, num_embeds: usize, device: &B::Device) -> Tensor<B, 2, Int> {
        let values = self.checked(batch, num_embeds);
        let ids: Vec<i64> = values.iter().map(|&t| t as i64).collect();
        Tensor::from_data(TensorData::new(ids, [values.len(), 1]), device)
    }

    /// One timestep per sample of a batch of `batch`.
    ///
    /// # Panics
    ///
    /// As [`to_ids`](Self::to_ids).
    pub(crate) fn per_sample(&self, batch: usize, num_embeds: usize) -> Vec<usize> {
        let values = self.checked(batch, num_embeds);
        match self {
            Self::Shared(_) => vec![values[0]; batch],
            Self::PerSample(_) => values.to_vec(),
        }
    }

    /// [`values`](Self::values), each checked to be below `num_embeds`.
    fn checked(&self, batch: usize, num_embeds: usize) -> &[usize] {
        let values = self.values(batch);
        if let Some(t) = values.iter().find(|&&t| t >= num_embeds) {
            panic!("timestep {t} out of range: the model has {num_embeds} timestep embeddings (0..{num_embeds})");
        }
        values
    }

    /// The timesteps of the samples `range` of a batch of `batch`.
    ///
    /// # Panics
    ///
    /// As [`to_ids`](Self::to_ids), if a per-sample list does not have `batch` entries.
    pub(crate) fn part(&self, batch: usize, range: std::ops::Range<usize>) -> Self {
        match self {
            Self::Shared(t) => Self::Shared(*t),
            Self::PerSample(_) => Self::PerSample(self.values(batch)[range].to_vec()),
        }
    }

    /// The one shared timestep, or the per-sample list checked to have `batch` entries.
    fn values(&self, batch: usize) -> &[usize] {
        match self {
            Self::Shared(t) => std::slice::from_ref(t),
            Self::PerSample(ts) => {
                assert_eq!(ts.len(), batch, "got {} per-sample timesteps for a batch of {batch}", ts.len());
                ts
            }
        }
    }
}
