//! A tokenizer folder: the input is split at 0xFF bytes (never part of UTF-8 text) into
//! `tokenizer_config.json`, `special_tokens_map.json`, `vocab.json`, `merges.txt` and, when a
//! fifth part is there, `tokenizer.json`; empty parts are absent files. A loaded tokenizer's
//! ids never exceed its largest id, which fits in an i32.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use clip_text::tokenizer::MAX_TOKEN_ID;
use clip_text::{Tokenizer, Truncation};
use libfuzzer_sys::fuzz_target;

const FILES: [&str; 5] =
    ["tokenizer_config.json", "special_tokens_map.json", "vocab.json", "merges.txt", "tokenizer.json"];

fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| vq_fuzz::scratch("tokenizer"))
}

fuzz_target!(|data: &[u8]| {
    let dir = dir();
    let parts: Vec<&[u8]> = data.split(|&b| b == 0xff).collect();
    for (i, name) in FILES.iter().enumerate() {
        let path = dir.join(name);
        std::fs::remove_file(&path).ok();
        if let Some(part) = parts.get(i).filter(|p| !p.is_empty()) {
            std::fs::write(&path, part).expect("scratch file");
        }
    }
    let Ok(tokenizer) = Tokenizer::from_dir(dir) else { return };
    assert!(tokenizer.max_id() <= MAX_TOKEN_ID);
    let text = String::from_utf8_lossy(parts.last().copied().unwrap_or_default()).into_owned();
    for prompt in ["a photo of a cat!", text.as_str()] {
        if let Ok(padded) = tokenizer.encode_padded(prompt, Truncation::KeepEos) {
            assert_eq!(padded.ids.len(), tokenizer.model_max_length());
            assert!(padded.ids.iter().all(|&id| id <= tokenizer.max_id()), "an id beyond max_id");
        }
    }
});
