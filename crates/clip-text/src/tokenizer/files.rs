//! Reading tokenizer files: regular files only, with a size cap, ids checked.
//!
//! `tokenizers` would open the files itself, with neither a size cap nor a file-type check
//! (a FIFO would block it), and it truncates `vocab.json` ids to 32 bits without a word. The
//! files are read here instead and handed to it as bytes, vocabulary and merges.

use std::path::Path;

use tokenizers::models::bpe::{Merges, Vocab};

use crate::error::TokenizerError;

/// Largest token id: backends index the embedding table with 32-bit signed integers.
pub const MAX_TOKEN_ID: u32 = i32::MAX as u32;

/// A tokenizer file's text, read with [`vq_weights::TOKENIZER_MAX_BYTES`] as the cap.
pub fn read_text(path: &Path) -> Result<String, TokenizerError> {
    vq_weights::read_text_capped(path, vq_weights::TOKENIZER_MAX_BYTES)
        .map_err(|source| TokenizerError::Io { path: path.to_path_buf(), source })
}

/// `vocab.json`: an object of token → id, every id an integer in `0..=MAX_TOKEN_ID`.
pub fn read_vocab(path: &Path) -> Result<Vocab, TokenizerError> {
    let invalid = |message: String| TokenizerError::Invalid { path: path.to_path_buf(), message };
    let entries: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&read_text(path)?).map_err(|e| invalid(format!("not a JSON object of token ids: {e}")))?;
    entries
        .into_iter()
        .map(|(token, id)| match id.as_u64() {
            Some(id) if id <= u64::from(MAX_TOKEN_ID) => Ok((token, id as u32)),
            _ => Err(invalid(format!("token `{token}` has id {id}, expected an integer from 0 to {MAX_TOKEN_ID}"))),
        })
        .collect()
}

/// `merges.txt`: one `left right` pair per line after an optional `#version` line, as
/// `tokenizers` reads it.
pub fn read_merges(path: &Path) -> Result<Merges, TokenizerError> {
    read_text(path)?
        .lines()
        .filter(|line| !line.starts_with("#version"))
        .enumerate()
        .map(|(rank, line)| match line.split(' ').collect::<Vec<_>>().as_slice() {
            [left, right] => Ok((left.to_string(), right.to_string())),
            _ => Err(TokenizerError::Invalid {
                path: path.to_path_buf(),
                message: format!("merge {} is `{line}`, expected two tokens separated by one space", rank + 1),
            }),
        })
        .collect()
}
