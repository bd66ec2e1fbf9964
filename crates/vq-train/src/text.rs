//! The caption tokenizer: OpenAI CLIP's BPE tokenizer trimmed to the dataset's closed
//! vocabulary.
//!
//! A CLIP vocabulary has 49 408 ids: 256 byte tokens, the same 256 with the end-of-word mark
//! `</w>`, one id per BPE merge (in merge order) and SOT/EOT. The captions use 27 words, so the
//! trimmed tokenizer keeps the 512 byte tokens, the merges that full BPE applies to build those
//! words (in their original relative order) and SOT/EOT: ≈ 650 ids, which keeps the text
//! encoder's embedding table at ≈ 80 k parameters instead of 6.3 M.
//!
//! Why the trimmed tokenizer splits every caption word exactly as the full one: BPE repeatedly
//! applies the lowest-ranked merge among the pairs present. Every merge the full tokenizer
//! applied to a word is kept, with its rank order, so at each step the merge the full tokenizer
//! picked is still present and still the lowest-ranked one among the (fewer) candidates.
//! Words outside the vocabulary still tokenize (into bytes and partial merges), they just
//! mean nothing to the trained model.
//!
//! The tokenizer folder written here (`vocab.json`, `merges.txt`, `tokenizer_config.json`,
//! `special_tokens_map.json`) has ITHQ's settings — pad token `!` (id 0), SOT/EOT normalized —
//! and `model_max_length` = the text encoder's positions.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use serde_json::json;

use crate::data::{Color, Position, Shape, Size};
use crate::TrainError;

/// CLIP's start-of-text token.
pub const SOT: &str = "<|startoftext|>";
/// CLIP's end-of-text token (also the unknown token).
pub const EOT: &str = "<|endoftext|>";
/// Number of byte tokens at the start of every CLIP vocabulary (256 plain + 256 with `</w>`).
pub const BYTE_TOKENS: usize = 512;

/// Every word a caption of the dataset can contain, sorted.
pub fn caption_words() -> Vec<String> {
    let mut words: BTreeSet<String> = ["a", "an", "and", "on", "background"].iter().map(|w| w.to_string()).collect();
    words.extend(Shape::ALL.iter().map(|s| s.word().to_string()));
    words.extend(Color::ALL.iter().map(|c| c.word().to_string()));
    words.extend(Size::ALL.iter().map(|s| s.word().to_string()));
    for position in Position::ALL {
        words.extend(position.phrase().split(' ').map(str::to_string));
    }
    words.into_iter().collect()
}

/// The merges BPE applies to `word` (lower-case ASCII letters only), as indices into `ranks`'
/// merge list, in application order.
///
/// `ranks` maps a merge pair to its rank (line index in `merges.txt`). The last symbol carries
/// the end-of-word mark, as CLIP's BPE does.
fn merges_of_word(word: &str, ranks: &HashMap<(String, String), usize>) -> Vec<usize> {
    let mut symbols: Vec<String> = word.chars().map(|c| c.to_string()).collect();
    if let Some(last) = symbols.last_mut() {
        last.push_str("</w>");
    }
    let mut applied = Vec::new();
    loop {
        // The lowest-ranked adjacent pair; BPE merges all its occurrences, left to right.
        let best = symbols.windows(2).filter_map(|pair| ranks.get(&(pair[0].clone(), pair[1].clone())).copied()).min();
        let Some(rank) = best else { break };
        applied.push(rank);
        let mut merged = Vec::with_capacity(symbols.len());
        let mut i = 0;
        while i < symbols.len() {
            if i + 1 < symbols.len() && ranks.get(&(symbols[i].clone(), symbols[i + 1].clone())) == Some(&rank) {
                merged.push(format!("{}{}", symbols[i], symbols[i + 1]));
                i += 2;
            } else {
                merged.push(symbols[i].clone());
                i += 1;
            }
        }
        symbols = merged;
    }
    applied
}

/// Writes the trimmed tokenizer folder to `out_dir` from a full CLIP `vocab.json` +
/// `merges.txt` in `full_dir`, keeping the merges that build `words`. Returns the vocabulary
/// size (the text encoder's `vocab_size`).
///
/// # Errors
/// If the files cannot be read or written, or do not look like a CLIP vocabulary.
pub fn write_trimmed_tokenizer(
    full_dir: &Path,
    out_dir: &Path,
    words: &[String],
    model_max_length: usize,
) -> Result<usize, TrainError> {
    let io = |path: &Path, e: std::io::Error| TrainError::Io { path: path.to_path_buf(), message: e.to_string() };
    let vocab_path = full_dir.join("vocab.json");
    let merges_path = full_dir.join("merges.txt");
    let vocab: HashMap<String, usize> =
        serde_json::from_str(&std::fs::read_to_string(&vocab_path).map_err(|e| io(&vocab_path, e))?)
            .map_err(|e| TrainError::Io { path: vocab_path.clone(), message: e.to_string() })?;
    let merges_text = std::fs::read_to_string(&merges_path).map_err(|e| io(&merges_path, e))?;
    let merges: Vec<(String, String)> = merges_text
        .lines()
        .filter(|line| !line.starts_with("#version") && !line.trim().is_empty())
        .filter_map(|line| line.split_once(' ').map(|(a, b)| (a.to_string(), b.to_string())))
        .collect();
    let mut bytes: Vec<(&String, usize)> =
        vocab.iter().filter(|(_, &id)| id < BYTE_TOKENS).map(|(t, &id)| (t, id)).collect();
    if bytes.len() != BYTE_TOKENS {
        return Err(TrainError::Io {
            path: vocab_path,
            message: format!("expected {BYTE_TOKENS} byte tokens with ids 0..{BYTE_TOKENS}, found {}", bytes.len()),
        });
    }
    bytes.sort_by_key(|&(_, id)| id);

    let ranks: HashMap<(String, String), usize> = merges.iter().cloned().enumerate().map(|(i, m)| (m, i)).collect();
    let kept: BTreeSet<usize> = words.iter().flat_map(|word| merges_of_word(word, &ranks)).collect();

    // Byte tokens keep ids 0..512; kept merges follow in rank order; then SOT and EOT.
    let mut trimmed: BTreeMap<usize, String> = bytes.into_iter().map(|(token, id)| (id, token.clone())).collect();
    let mut merge_lines = vec!["#version: 0.2".to_string()];
    for &rank in &kept {
        let (a, b) = &merges[rank];
        trimmed.insert(trimmed.len(), format!("{a}{b}"));
        merge_lines.push(format!("{a} {b}"));
    }
    trimmed.insert(trimmed.len(), SOT.to_string());
    trimmed.insert(trimmed.len(), EOT.to_string());
    let vocab_size = trimmed.len();
    let vocab_json: serde_json::Map<String, serde_json::Value> =
        trimmed.into_iter().map(|(id, token)| (token, json!(id))).collect();

    std::fs::create_dir_all(out_dir).map_err(|e| io(out_dir, e))?;
    let special = |content: &str| json!({"content": content, "lstrip": false, "normalized": true, "rstrip": false, "single_word": false});
    let special_map = json!({
        "bos_token": special(SOT), "eos_token": special(EOT), "pad_token": "!", "unk_token": special(EOT),
    });
    let config = json!({
        "add_prefix_space": false,
        "bos_token": special(SOT),
        "clean_up_tokenization_spaces": false,
        "do_lower_case": true,
        "eos_token": special(EOT),
        "errors": "replace",
        "model_max_length": model_max_length,
        "pad_token": "!",
        "tokenizer_class": "CLIPTokenizer",
        "unk_token": special(EOT),
    });
    let files = [
        ("vocab.json", serde_json::to_string(&serde_json::Value::Object(vocab_json)).expect("JSON")),
        ("merges.txt", merge_lines.join("\n") + "\n"),
        ("special_tokens_map.json", serde_json::to_string_pretty(&special_map).expect("JSON")),
        ("tokenizer_config.json", serde_json::to_string_pretty(&config).expect("JSON")),
    ];
    for (name, text) in files {
        let path = out_dir.join(name);
        std::fs::write(&path, text).map_err(|e| io(&path, e))?;
    }
    Ok(vocab_size)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Dataset, DatasetConfig, Split};
    use clip_text::Tokenizer;
    use std::path::PathBuf;

    fn hub_tokenizer() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/tiny/hub/tokenizer")
    }

    fn tokens(tokenizer: &Tokenizer, text: &str) -> Vec<String> {
        let ids = tokenizer.encode(text).expect("encodes");
        ids.iter().map(|&id| tokenizer.inner().id_to_token(id).expect("known id")).collect()
    }

    #[test]
    fn the_shipped_model_lists_the_caption_words_as_its_vocabulary() {
        let shapes = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models/shapes");
        let vocabulary = vq_pipeline::Vocabulary::from_dir(&shapes).expect("readable").expect("vocabulary.json");
        assert_eq!(vocabulary.words.into_iter().collect::<Vec<_>>(), caption_words());
    }

    #[test]
    fn the_trimmed_tokenizer_splits_every_caption_like_the_full_one() {
        let out = std::env::temp_dir().join(format!("vq-train-tokenizer-{}", std::process::id()));
        let words = caption_words();
        assert_eq!(words.len(), 27, "{words:?}");
        let vocab_size = write_trimmed_tokenizer(&hub_tokenizer(), &out, &words, 32).expect("writes");
        assert!((520..800).contains(&vocab_size), "vocab size {vocab_size}");
        let full = Tokenizer::from_dir(&hub_tokenizer()).expect("full tokenizer");
        let trimmed = Tokenizer::from_dir(&out).expect("trimmed tokenizer");
        assert_eq!(trimmed.model_max_length(), 32);
        assert_eq!(trimmed.pad_id(), 0, "pad is `!`, id 0, as in ITHQ");
        assert_eq!(trimmed.eos_id() as usize, vocab_size - 1);

        // Every word alone, then the captions of many samples of every split.
        for word in &words {
            let t = tokens(&trimmed, word);
            assert_eq!(t, tokens(&full, word), "word {word:?}");
            assert_eq!(t.len(), 3, "{word:?} is one CLIP token: {t:?}");
        }
        let dataset = Dataset::new(DatasetConfig::default(), 3).expect("dataset");
        let mut longest = 0;
        for split in [Split::Train, Split::Validation, Split::HeldOut] {
            for i in 0..300 {
                let caption = dataset.sample(split, i).caption;
                let t = tokens(&trimmed, &caption);
                assert_eq!(t, tokens(&full, &caption), "caption {caption:?}");
                longest = longest.max(t.len());
            }
        }
        assert!(longest <= 32, "a caption has {longest} tokens");
        std::fs::remove_dir_all(out).ok();
    }
}
