//! The CLIP tokenizer as transformers 5 runs it (the `tokenizers`-backed `CLIPTokenizer`), with
//! the padding/truncation rules of VQ-Diffusion (`docs/reference.md`, "Tokenizer").
//!
//! Loading ([`Tokenizer::from_dir`]):
//! - `tokenizer.json` when present (what transformers 5 `save_pretrained` writes), else
//! - `vocab.json` + `merges.txt` with the pipeline of [`pipeline`] (the Hub's ITHQ folder has
//!   no `tokenizer.json`);
//! - in both cases the named special tokens of `tokenizer_config.json` /
//!   `special_tokens_map.json` are registered when absent, as transformers does. For ITHQ this
//!   makes the pad token `!` (id 0) a special, non-normalised token: a `!` anywhere in a prompt
//!   becomes id 0 (`"hello!"` → `[49406, 3306, 0, 49407]`).

mod files;
pub mod pipeline;
mod special;

use std::path::Path;

use burn::tensor::{backend::Backend, Int, Tensor, TensorData};

pub use files::MAX_TOKEN_ID;
pub use pipeline::CLIP_SPLIT_REGEX;
pub use special::{SpecialTokens, TokenSpec, BOS_TOKEN, CLIP_CONTEXT_LENGTH, EOS_TOKEN};

use crate::error::TokenizerError;

/// How a sequence longer than `model_max_length` is cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Truncation {
    /// diffusers' `VQDiffusionPipeline`: pad to `model_max_length` without truncation, then
    /// keep the first `model_max_length` ids — a long prompt loses its EOS.
    #[default]
    Diffusers,
    /// The original VQ-Diffusion / OpenAI CLIP `tokenize(truncate=True)`: the first
    /// `model_max_length − 1` ids, then EOS.
    KeepEos,
}

/// One prompt encoded to exactly `model_max_length` ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaddedIds {
    /// BOS, tokens, EOS, then pad ids — cut per [`Truncation`].
    pub ids: Vec<u32>,
    /// Length of BOS + tokens + EOS before padding and truncation.
    pub untruncated_len: usize,
}

impl PaddedIds {
    /// Whether the prompt had to be cut (diffusers logs a warning then).
    pub fn truncated(&self) -> bool {
        self.untruncated_len > self.ids.len()
    }
}

/// CLIP BPE tokenizer with BOS/EOS, a pad token and a fixed sequence length.
#[derive(Debug, Clone)]
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    eos_id: u32,
    pad_id: u32,
    max_id: u32,
    model_max_length: usize,
}

impl Tokenizer {
    /// Loads a transformers tokenizer folder (e.g. a pipeline's `tokenizer/`): `tokenizer.json`
    /// when present, else `vocab.json` + `merges.txt`; special tokens and `model_max_length`
    /// from `tokenizer_config.json` / `special_tokens_map.json`.
    pub fn from_dir(dir: &Path) -> Result<Self, TokenizerError> {
        let special = SpecialTokens::from_dir(dir)?;
        let tokenizer_json = dir.join("tokenizer.json");
        if tokenizer_json.is_file() {
            Self::from_tokenizer_json(&tokenizer_json, special)
        } else if dir.join("vocab.json").is_file() && dir.join("merges.txt").is_file() {
            Self::from_vocab_merges(&dir.join("vocab.json"), &dir.join("merges.txt"), special)
        } else {
            Err(TokenizerError::NoTokenizerFiles { dir: dir.to_path_buf() })
        }
    }

    /// Loads a `tokenizer.json` as is, then registers `special`'s tokens that it lacks.
    pub fn from_tokenizer_json(path: &Path, special: SpecialTokens) -> Result<Self, TokenizerError> {
        let invalid = |message: String| TokenizerError::Invalid { path: path.to_path_buf(), message };
        let text = files::read_text(path)?;
        files::check_tokenizer_json(&text).map_err(invalid)?;
        let inner = tokenizers::Tokenizer::from_bytes(text).map_err(|e| invalid(e.to_string()))?;
        Self::with_special_tokens(inner, special)
    }

    /// Builds CLIP's pipeline (see [`pipeline`]) from `vocab.json` + `merges.txt` and registers
    /// `special`'s tokens; the post-processor adds `special.bos` and `special.eos`.
    pub fn from_vocab_merges(vocab: &Path, merges: &Path, special: SpecialTokens) -> Result<Self, TokenizerError> {
        let mut inner = pipeline::build_from_vocab_merges(vocab, merges, special.unk.content())?;
        let bos = special_id(&inner, "bos", &special.bos)?;
        let eos = special_id(&inner, "eos", &special.eos)?;
        pipeline::set_post_processor(
            &mut inner,
            pipeline::PostProcessorTokens {
                bos: (special.bos.content().to_owned(), bos),
                eos: (special.eos.content().to_owned(), eos),
            },
        );
        Self::with_special_tokens(inner, special)
    }

    /// Registers the named special tokens absent from the added vocabulary — the first
    /// registration of a content keeps its flags, as in transformers — and resolves the ids.
    fn with_special_tokens(mut inner: tokenizers::Tokenizer, special: SpecialTokens) -> Result<Self, TokenizerError> {
        for spec in special.registration_order() {
            let registered = inner.get_added_tokens_decoder().values().any(|token| token.content == spec.content());
            if !registered {
                inner.add_special_tokens([spec.to_added_token()]).map_err(TokenizerError::Tokenizers)?;
            }
        }
        // The largest id the tokenizer can produce, for the text encoder's vocabulary check.
        let (token, max_id) = inner.get_vocab(true).into_iter().max_by_key(|(_, id)| *id).unwrap_or_default();
        if max_id > MAX_TOKEN_ID {
            return Err(TokenizerError::IdOutOfRange { token, id: max_id });
        }
        Ok(Self {
            max_id,
            eos_id: special_id(&inner, "eos", &special.eos)?,
            pad_id: special_id(&inner, "pad", &special.pad)?,
            model_max_length: special.model_max_length,
            inner,
        })
    }

    /// Sets the length [`encode_padded`](Self::encode_padded) pads and cuts to.
    pub fn with_model_max_length(mut self, model_max_length: usize) -> Self {
        self.model_max_length = model_max_length;
        self
    }

    /// Length of every padded sequence (77 for CLIP).
    pub fn model_max_length(&self) -> usize {
        self.model_max_length
    }

    /// Id of the padding token (0 = `!` for ITHQ, 49407 for a stock CLIP tokenizer).
    pub fn pad_id(&self) -> u32 {
        self.pad_id
    }

    /// Id of the EOS token (49407).
    pub fn eos_id(&self) -> u32 {
        self.eos_id
    }

    /// The largest id the tokenizer can produce (49407 for CLIP): the text encoder's
    /// `vocab_size` must be larger.
    pub fn max_id(&self) -> u32 {
        self.max_id
    }

    /// The underlying `tokenizers` tokenizer.
    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }

    /// BOS + BPE ids + EOS, neither padded nor truncated (transformers' `tokenizer(text).input_ids`).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, TokenizerError> {
        let encoding = self.inner.encode(text, true).map_err(TokenizerError::Tokenizers)?;
        Ok(encoding.get_ids().to_vec())
    }

    /// Exactly `model_max_length` ids: [`encode`](Self::encode), padded with the pad id, and cut
    /// per `truncation`.
    pub fn encode_padded(&self, text: &str, truncation: Truncation) -> Result<PaddedIds, TokenizerError> {
        let ids = self.encode(text)?;
        Ok(PaddedIds {
            untruncated_len: ids.len(),
            ids: fit_to_length(ids, self.model_max_length, self.pad_id, self.eos_id, truncation),
        })
    }

    /// Encodes prompts into a `[P, model_max_length]` id tensor for [`CLIPTextModel`](crate::CLIPTextModel).
    pub fn encode_to_tensor<B: Backend>(
        &self,
        texts: &[&str],
        truncation: Truncation,
        device: &B::Device,
    ) -> Result<Tensor<B, 2, Int>, TokenizerError> {
        let mut ids = Vec::with_capacity(texts.len() * self.model_max_length);
        for text in texts {
            let row = self.encode_padded(text, truncation)?;
            ids.extend(row.ids.into_iter().map(i64::from));
        }
        let data = TensorData::new(ids, [texts.len(), self.model_max_length]);
        Ok(Tensor::from_data(data, device))
    }
}

/// Pads `ids` to `len` with `pad_id`, or cuts it to `len` per `truncation`.
fn fit_to_length(mut ids: Vec<u32>, len: usize, pad_id: u32, eos_id: u32, truncation: Truncation) -> Vec<u32> {
    if ids.len() <= len {
        ids.resize(len, pad_id);
        return ids;
    }
    ids.truncate(len);
    if truncation == Truncation::KeepEos {
        if let Some(last) = ids.last_mut() {
            *last = eos_id;
        }
    }
    ids
}

fn special_id(tokenizer: &tokenizers::Tokenizer, role: &'static str, spec: &TokenSpec) -> Result<u32, TokenizerError> {
    tokenizer
        .token_to_id(spec.content())
        .ok_or_else(|| TokenizerError::UnknownSpecialToken { role, token: spec.content().to_owned() })
}
