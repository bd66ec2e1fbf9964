//! Reading tokenizer files: regular files only, with a size cap, ids and merges checked.
//!
//! `tokenizers` would open the files itself, with neither a size cap nor a file-type check
//! (a FIFO would block it), and it truncates `vocab.json` ids to 32 bits without a word. The
//! files are read here instead and handed to it as bytes, vocabulary and merges.
//!
//! Merges are checked before `tokenizers` builds its BPE model: its builder copies each merge
//! into a buffer as long as the longest vocabulary token before looking the result up, so a
//! merge whose parts or result are not in the vocabulary (or whose second part does not start
//! with the `continuing_subword_prefix`) panics there, or worse. Found by the `tokenizer` fuzz
//! target; every merge's parts and result must be vocabulary tokens.

use std::path::Path;

use serde_json::Value;
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
    let json: Value =
        serde_json::from_str(&read_text(path)?).map_err(|e| invalid(format!("not a JSON object of token ids: {e}")))?;
    vocab_of(&json).map_err(invalid)
}

/// `merges.txt`: one `left right` pair per line after an optional `#version` line, as
/// `tokenizers` reads it; every merge's parts and result are checked against `vocab`.
pub fn read_merges(path: &Path, vocab: &Vocab) -> Result<Merges, TokenizerError> {
    let invalid = |message: String| TokenizerError::Invalid { path: path.to_path_buf(), message };
    let merges = read_text(path)?
        .lines()
        .filter(|line| !line.starts_with("#version"))
        .enumerate()
        .map(|(rank, line)| split_merge(line).ok_or_else(|| bad_merge(rank, line)))
        .collect::<Result<Merges, String>>()
        .map_err(invalid)?;
    check_merges(&merges, vocab, "").map_err(invalid)?;
    Ok(merges)
}

/// Checks a `tokenizer.json` before `tokenizers` parses it: the model is a BPE (CLIP's) whose
/// ids fit and whose merges are made of vocabulary tokens.
pub fn check_tokenizer_json(text: &str) -> Result<(), String> {
    let json: Value = serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
    let model = json.get("model").ok_or("no `model`")?;
    match model.get("type").and_then(Value::as_str) {
        Some("BPE") => {}
        other => return Err(format!("model type {other:?}: a CLIP tokenizer is a BPE model")),
    }
    let vocab = vocab_of(model.get("vocab").ok_or("the BPE model has no `vocab`")?)?;
    let merges = match model.get("merges").and_then(Value::as_array) {
        Some(merges) => merges
            .iter()
            .enumerate()
            .map(|(rank, merge)| {
                let pair = match merge {
                    Value::String(line) => split_merge(line),
                    Value::Array(pair) => match pair.as_slice() {
                        [Value::String(a), Value::String(b)] => Some((a.clone(), b.clone())),
                        _ => None,
                    },
                    _ => None,
                };
                pair.ok_or_else(|| bad_merge(rank, &merge.to_string()))
            })
            .collect::<Result<Merges, String>>()?,
        None => return Err("the BPE model has no `merges` list".into()),
    };
    let prefix = model.get("continuing_subword_prefix").and_then(Value::as_str).unwrap_or("");
    check_merges(&merges, &vocab, prefix)
}

/// A JSON object of token → id, every id an integer in `0..=MAX_TOKEN_ID`.
fn vocab_of(json: &Value) -> Result<Vocab, String> {
    let entries = json.as_object().ok_or("the vocabulary is not a JSON object of token ids")?;
    entries
        .iter()
        .map(|(token, id)| match id.as_u64() {
            Some(n) if n <= u64::from(MAX_TOKEN_ID) => Ok((token.clone(), n as u32)),
            _ => Err(format!("token `{token}` has id {id}, expected an integer from 0 to {MAX_TOKEN_ID}")),
        })
        .collect()
}

/// `left right`, as `tokenizers` splits a merge line (exactly one space).
fn split_merge(line: &str) -> Option<(String, String)> {
    match line.split(' ').collect::<Vec<_>>().as_slice() {
        [left, right] => Some((left.to_string(), right.to_string())),
        _ => None,
    }
}

fn bad_merge(rank: usize, merge: &str) -> String {
    format!("merge {} is `{merge}`, expected two tokens separated by one space", rank + 1)
}

/// Every merge joins two vocabulary tokens into a vocabulary token; the second part starts
/// with `prefix`, which the joined token drops.
fn check_merges(merges: &Merges, vocab: &Vocab, prefix: &str) -> Result<(), String> {
    for (rank, (a, b)) in merges.iter().enumerate() {
        let joined = b.strip_prefix(prefix).map(|rest| format!("{a}{rest}"));
        let missing = [Some(a.clone()), Some(b.clone()), joined.clone()]
            .into_iter()
            .find(|token| token.as_ref().is_none_or(|t| !vocab.contains_key(t)));
        if let Some(token) = missing {
            let what = match token {
                Some(token) => format!("`{token}` is not in the vocabulary"),
                None => format!("`{b}` does not start with the continuing-subword prefix `{prefix}`"),
            };
            return Err(format!("merge {} (`{a} {b}`): {what}", rank + 1));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bpe(vocab: &str, merges: &str, prefix: &str) -> String {
        format!(
            r#"{{"model": {{"type": "BPE", "continuing_subword_prefix": "{prefix}", "vocab": {vocab}, "merges": {merges}}}}}"#
        )
    }

    #[test]
    fn merges_must_join_vocabulary_tokens_into_a_vocabulary_token() {
        let vocab = r###"{"a": 0, "b": 1, "ab": 2, "##b": 3}"###;
        assert_eq!(check_tokenizer_json(&bpe(vocab, r#"["a b"]"#, "")), Ok(()));
        assert_eq!(check_tokenizer_json(&bpe(vocab, r#"[["a", "b"]]"#, "")), Ok(()));
        assert_eq!(check_tokenizer_json(&bpe(vocab, r###"["a ##b"]"###, "##")), Ok(()));
        // The inputs that panicked in tokenizers' BPE builder: a result longer than every
        // vocabulary token, and a second part shorter than the prefix.
        let err = check_tokenizer_json(&bpe(r#"{"a": 0, "b": 1}"#, r#"["a b"]"#, "")).unwrap_err();
        assert_eq!(err, "merge 1 (`a b`): `ab` is not in the vocabulary");
        let err = check_tokenizer_json(&bpe(vocab, r#"["a b"]"#, "##")).unwrap_err();
        assert!(err.contains("does not start with the continuing-subword prefix `##`"), "{err}");
        let err = check_tokenizer_json(&bpe(vocab, r#"["a b c"]"#, "")).unwrap_err();
        assert!(err.contains("expected two tokens"), "{err}");
    }

    #[test]
    fn only_bpe_models_with_small_ids_are_accepted() {
        let err = check_tokenizer_json(r#"{"model": {"type": "WordPiece", "vocab": {}}}"#).unwrap_err();
        assert!(err.contains("a CLIP tokenizer is a BPE model"), "{err}");
        let err = check_tokenizer_json(&bpe(r#"{"a": 2147483648}"#, "[]", "")).unwrap_err();
        assert!(err.contains("token `a` has id 2147483648"), "{err}");
    }
}
