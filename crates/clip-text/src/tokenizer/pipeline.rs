//! The CLIP tokenizers pipeline built from `vocab.json` + `merges.txt`, with the components
//! transformers 5's `CLIPTokenizer` sets (`docs/reference.md`, "Tokenizer"):
//!
//! | stage | setting |
//! |---|---|
//! | normalizer | NFC → Replace(regex `\s+` → `" "`) → Lowercase |
//! | pre-tokenizer | Split(CLIP regex, Removed, inverted: the matches are the pieces) → ByteLevel(no prefix space, GPT-2 regex on) |
//! | model | BPE, `end_of_word_suffix = "</w>"`, no continuing-subword prefix, unk `<|endoftext|>`, no dropout, no byte fallback |
//! | post-processor | RobertaProcessing: `<|startoftext|>` + tokens + `<|endoftext|>`, offsets untrimmed |
//! | decoder | ByteLevel |
//!
//! The regexes run on `fancy-regex` (the workspace builds `tokenizers` without Oniguruma); the
//! CLIP regex uses only alternation and `\p{L}` / `\p{N}` / `\s` classes, which fancy-regex hands
//! to the `regex` crate unchanged.

use std::path::Path;

use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::BPE;
use tokenizers::normalizers::replace::ReplacePattern;
use tokenizers::normalizers::{Lowercase, Replace, Sequence as NormalizerSequence, NFC};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence as PreTokenizerSequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::processors::roberta::RobertaProcessing;
use tokenizers::{SplitDelimiterBehavior, Tokenizer};

use super::files;
use crate::error::TokenizerError;

/// CLIP's pre-tokenisation regex: special-token texts, English contractions, letter runs,
/// single digits, runs of other non-space characters.
pub const CLIP_SPLIT_REGEX: &str =
    r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+";

/// The ids of the BOS and EOS tokens the post-processor adds.
#[derive(Debug, Clone)]
pub struct PostProcessorTokens {
    /// BOS text and id (`<|startoftext|>`, 49406).
    pub bos: (String, u32),
    /// EOS text and id (`<|endoftext|>`, 49407).
    pub eos: (String, u32),
}

/// Builds the CLIP pipeline around the BPE of `vocab.json` + `merges.txt`; special tokens are
/// registered by the caller.
pub fn build_from_vocab_merges(vocab: &Path, merges: &Path, unk_token: &str) -> Result<Tokenizer, TokenizerError> {
    let vocab = files::read_vocab(vocab)?;
    let merges = files::read_merges(merges, &vocab)?;
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .end_of_word_suffix("</w>".into())
        .continuing_subword_prefix(String::new())
        .unk_token(unk_token.into())
        .build()
        .map_err(TokenizerError::Tokenizers)?;

    let normalizer = NormalizerSequence::new(vec![
        NFC.into(),
        Replace::new(ReplacePattern::Regex(r"\s+".into()), " ").map_err(TokenizerError::Tokenizers)?.into(),
        Lowercase.into(),
    ]);
    let split = Split::new(SplitPattern::Regex(CLIP_SPLIT_REGEX.into()), SplitDelimiterBehavior::Removed, true)
        .map_err(TokenizerError::Tokenizers)?;
    let pre_tokenizer = PreTokenizerSequence::new(vec![split.into(), ByteLevel::new(false, true, true).into()]);

    let mut tokenizer = Tokenizer::new(bpe);
    tokenizer.with_normalizer(Some(normalizer)).map_err(TokenizerError::Tokenizers)?;
    tokenizer.with_pre_tokenizer(Some(pre_tokenizer)).with_decoder(Some(ByteLevelDecoder::default()));
    Ok(tokenizer)
}

/// Sets CLIP's post-processor: `bos + tokens + eos` (RobertaProcessing without offset trimming).
pub fn set_post_processor(tokenizer: &mut Tokenizer, tokens: PostProcessorTokens) {
    let processor = RobertaProcessing::new(tokens.eos, tokens.bos).trim_offsets(false).add_prefix_space(false);
    tokenizer.with_post_processor(Some(processor));
}
