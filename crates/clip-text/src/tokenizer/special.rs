//! The special tokens and `model_max_length` of a transformers tokenizer folder
//! (`tokenizer_config.json`, `special_tokens_map.json`), read as transformers 5 does.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use tokenizers::AddedToken;

use crate::error::TokenizerError;

/// CLIP's start-of-text token (id 49406 in the OpenAI vocabulary).
pub const BOS_TOKEN: &str = "<|startoftext|>";
/// CLIP's end-of-text token (id 49407); also transformers' default unk and pad token for CLIP.
pub const EOS_TOKEN: &str = "<|endoftext|>";
/// CLIP's context length, used when `tokenizer_config.json` gives no usable `model_max_length`.
pub const CLIP_CONTEXT_LENGTH: usize = 77;

/// A special token as written in a config: a plain string, or an `AddedToken` object.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum TokenSpec {
    /// `"pad_token": "!"` — transformers registers it special and **not** normalized.
    Text(String),
    /// `{"content": "<|startoftext|>", "normalized": true, …}`.
    Object {
        /// The token text.
        content: String,
        /// Match only whole words.
        #[serde(default)]
        single_word: bool,
        /// Swallow whitespace on the left.
        #[serde(default)]
        lstrip: bool,
        /// Swallow whitespace on the right.
        #[serde(default)]
        rstrip: bool,
        /// Match after normalisation (lower-casing); Python's `AddedToken` default is
        /// `not special`.
        normalized: Option<bool>,
        /// The `special` flag, when written.
        special: Option<bool>,
    },
}

impl TokenSpec {
    /// The token text.
    pub fn content(&self) -> &str {
        match self {
            Self::Text(content) | Self::Object { content, .. } => content,
        }
    }

    /// The token as the `tokenizers` added vocabulary registers it (always special, like
    /// transformers' named special tokens).
    pub fn to_added_token(&self) -> AddedToken {
        match self {
            Self::Text(content) => AddedToken::from(content.clone(), true).normalized(false),
            Self::Object { content, single_word, lstrip, rstrip, normalized, special } => {
                AddedToken::from(content.clone(), true)
                    .single_word(*single_word)
                    .lstrip(*lstrip)
                    .rstrip(*rstrip)
                    .normalized(normalized.unwrap_or(!special.unwrap_or(false)))
            }
        }
    }
}

/// Largest `model_max_length` taken from a config (CLIP's text encoders have 77 positions;
/// [`CLIPTextConfig`](crate::CLIPTextConfig) allows at most 65,536).
const MAX_MODEL_MAX_LENGTH: usize = 65_536;

/// The fields of `tokenizer_config.json` / `special_tokens_map.json` this crate reads; every
/// other field is ignored.
#[derive(Debug, Clone, Default, Deserialize)]
struct TokenizerConfigFile {
    bos_token: Option<TokenSpec>,
    eos_token: Option<TokenSpec>,
    unk_token: Option<TokenSpec>,
    pad_token: Option<TokenSpec>,
    /// transformers 4.3x writes every added token here, keyed by id.
    #[serde(default)]
    added_tokens_decoder: BTreeMap<String, TokenSpec>,
    /// Kept as JSON: transformers writes `1e30`-like integers for "no limit".
    model_max_length: Option<serde_json::Value>,
}

/// The special tokens of a tokenizer folder, resolved with transformers' precedence:
/// `tokenizer_config.json`, then `special_tokens_map.json`, then CLIPTokenizer's defaults
/// (`<|startoftext|>`, `<|endoftext|>` for eos, unk and pad).
#[derive(Debug, Clone, PartialEq)]
pub struct SpecialTokens {
    /// Beginning-of-sequence token.
    pub bos: TokenSpec,
    /// End-of-sequence token.
    pub eos: TokenSpec,
    /// Unknown token.
    pub unk: TokenSpec,
    /// Padding token (`!` for VQ-Diffusion's ITHQ tokenizer).
    pub pad: TokenSpec,
    /// Extra added tokens listed in `tokenizer_config.json`'s `added_tokens_decoder`.
    pub added_tokens: Vec<TokenSpec>,
    /// Length every padded sequence gets ([`CLIP_CONTEXT_LENGTH`] when the config has none).
    pub model_max_length: usize,
}

impl Default for SpecialTokens {
    /// A stock CLIP tokenizer: pad = `<|endoftext|>`, 77 tokens.
    fn default() -> Self {
        Self {
            bos: TokenSpec::Text(BOS_TOKEN.into()),
            eos: TokenSpec::Text(EOS_TOKEN.into()),
            unk: TokenSpec::Text(EOS_TOKEN.into()),
            pad: TokenSpec::Text(EOS_TOKEN.into()),
            added_tokens: Vec::new(),
            model_max_length: CLIP_CONTEXT_LENGTH,
        }
    }
}

impl SpecialTokens {
    /// Reads `tokenizer_config.json` and `special_tokens_map.json` from `dir` (either may be
    /// absent).
    pub fn from_dir(dir: &Path) -> Result<Self, TokenizerError> {
        let config = read_optional(&dir.join("tokenizer_config.json"))?;
        let map = read_optional(&dir.join("special_tokens_map.json"))?;
        let defaults = Self::default();
        let pick = |from_config: Option<TokenSpec>, from_map: Option<TokenSpec>, default| {
            from_config.or(from_map).unwrap_or(default)
        };
        Ok(Self {
            bos: pick(config.bos_token, map.bos_token, defaults.bos),
            eos: pick(config.eos_token, map.eos_token, defaults.eos),
            unk: pick(config.unk_token, map.unk_token, defaults.unk),
            pad: pick(config.pad_token, map.pad_token, defaults.pad),
            added_tokens: config.added_tokens_decoder.into_values().collect(),
            model_max_length: config
                .model_max_length
                .as_ref()
                .and_then(serde_json::Value::as_u64)
                .and_then(|n| usize::try_from(n).ok())
                // Longer than any text encoder's positions means "no limit" (transformers writes
                // 1e30), and padding to it would allocate gigabytes.
                .filter(|&n| n > 0 && n <= MAX_MODEL_MAX_LENGTH)
                .unwrap_or(CLIP_CONTEXT_LENGTH),
        })
    }

    /// Every token to register, in transformers' order (listed added tokens, then bos, eos,
    /// unk, pad). A content registered earlier keeps its flags.
    pub fn registration_order(&self) -> impl Iterator<Item = &TokenSpec> {
        self.added_tokens.iter().chain([&self.bos, &self.eos, &self.unk, &self.pad])
    }
}

fn read_optional(path: &Path) -> Result<TokenizerConfigFile, TokenizerError> {
    if !path.exists() {
        return Ok(TokenizerConfigFile::default());
    }
    let text = super::files::read_text(path)?;
    serde_json::from_str(&text).map_err(|source| TokenizerError::Json { path: path.to_path_buf(), source })
}
