//! Prompt encoding, as `VQDiffusionPipeline._encode_prompt` does it.

use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use clip_text::Truncation;
use vq_kernels::KernelBackend;

use crate::components::NegativeEmbeddings;
use crate::{PipelineError, VQDiffusionPipeline};

/// Text conditioning for a batch, plus what the tokenizer had to cut.
pub struct PromptEmbeddings<B: Backend> {
    /// `[2B, L, H]` with the unconditional rows first when guided, else `[B, L, H]`.
    pub embeddings: Tensor<B, 3>,
    /// One message per prompt that was longer than the tokenizer's `model_max_length`.
    pub warnings: Vec<String>,
}

impl<B: KernelBackend> VQDiffusionPipeline<B> {
    /// Encodes `prompts` for `images_per_prompt` images each.
    ///
    /// Every prompt is padded to `model_max_length` and cut to it (diffusers' behaviour: a
    /// prompt of more than 75 tokens loses its EOS), encoded by CLIP, and each token vector
    /// is divided by its L2 norm. With `guided`, the unconditional rows come first: the
    /// learned negative embeddings as stored, or the encoded empty prompt.
    ///
    /// # Shapes
    /// - output: `[2 · P · n, L, H]` guided, `[P · n, L, H]` otherwise (prompt-major rows)
    pub fn encode_prompts(
        &self,
        prompts: &[String],
        images_per_prompt: usize,
        guided: bool,
    ) -> Result<PromptEmbeddings<B>, PipelineError> {
        let warnings = self.prompt_warnings(prompts)?;
        let texts: Vec<&str> = prompts.iter().map(String::as_str).collect();
        let positive = repeat_interleave(self.encode_normalized(&texts)?, images_per_prompt);
        if !guided {
            return Ok(PromptEmbeddings { embeddings: positive, warnings });
        }
        let [batch, length, hidden] = positive.dims();
        let negative = match &self.negative {
            NegativeEmbeddings::Learned(e) => e.clone().unsqueeze_dim::<3>(0),
            NegativeEmbeddings::EmptyPrompt => self.encode_normalized(&[""])?,
        };
        let negative = negative.expand([batch, length, hidden]);
        Ok(PromptEmbeddings { embeddings: Tensor::cat(vec![negative, positive], 0), warnings })
    }

    /// One message per prompt longer than the tokenizer's `model_max_length`.
    pub(crate) fn prompt_warnings(&self, prompts: &[String]) -> Result<Vec<String>, PipelineError> {
        let mut warnings = Vec::new();
        for prompt in prompts {
            let padded = self.tokenizer.encode_padded(prompt, Truncation::Diffusers)?;
            if padded.truncated() {
                warnings.push(format!(
                    "the prompt {prompt:?} has {} tokens; CLIP reads the first {} (the rest is ignored)",
                    padded.untruncated_len,
                    padded.ids.len()
                ));
            }
        }
        Ok(warnings)
    }

    /// CLIP's last hidden state, each token vector divided by its L2 norm.
    fn encode_normalized(&self, texts: &[&str]) -> Result<Tensor<B, 3>, PipelineError> {
        let ids = self.tokenizer.encode_to_tensor::<B>(texts, Truncation::Diffusers, &self.device)?;
        let hidden = self.text_encoder.forward(ids).last_hidden_state;
        Ok(l2_normalize_last(hidden))
    }
}

/// `x / ‖x‖₂` over the last axis, without an epsilon (as the pipeline: CLIP states are never 0).
pub fn l2_normalize_last<B: Backend>(x: Tensor<B, 3>) -> Tensor<B, 3> {
    let norm = x.clone().powi_scalar(2).sum_dim(2).sqrt();
    x / norm
}

/// Each row `n` times in a row: `[P, …]` → `[P·n, …]` (torch's `repeat_interleave(n, 0)`).
fn repeat_interleave<B: Backend>(x: Tensor<B, 3>, n: usize) -> Tensor<B, 3> {
    let [p, length, hidden] = x.dims();
    // [P, L, H] -> [P, 1, L, H] -> [P, n, L, H] -> [P·n, L, H]
    x.unsqueeze_dim::<4>(1).expand([p, n, length, hidden]).reshape([p * n, length, hidden])
}
