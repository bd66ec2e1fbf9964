//! Token ids against `fixtures/reference/tokenizer_ids.json` (transformers 5.24 / tokenizers
//! 0.23.3 on 23 prompts) for both loading routes, plus the spec anchors.

use std::path::Path;

use clip_text::{SpecialTokens, Tokenizer, TokenizerError, Truncation};
use serde::Deserialize;

use crate::common::{fixture, fixture_metadata, reference};

#[derive(Deserialize)]
struct Expected {
    max_length: usize,
    bos_id: u32,
    eos_id: u32,
    pad_id: u32,
    prompts: Vec<Prompt>,
}

#[derive(Deserialize)]
struct Prompt {
    name: String,
    text: String,
    ids: Vec<u32>,
    ids_stock_pad: Vec<u32>,
    pipeline_row: Vec<u32>,
    keep_eos_row: Vec<u32>,
}

fn expected() -> Expected {
    let text = std::fs::read_to_string(fixture("reference/tokenizer_ids.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// `tiny/hub/tokenizer`: vocab.json + merges.txt + special_tokens_map.json + tokenizer_config.json.
fn hub() -> Tokenizer {
    Tokenizer::from_dir(&fixture("tiny/hub/tokenizer")).unwrap()
}

/// `tiny/raw/tokenizer`: tokenizer.json + tokenizer_config.json.
fn raw() -> Tokenizer {
    Tokenizer::from_dir(&fixture("tiny/raw/tokenizer")).unwrap()
}

fn check_all(tokenizer: &Tokenizer, route: &str) {
    let expected = expected();
    assert!(expected.prompts.len() >= 20);
    assert_eq!(tokenizer.model_max_length(), expected.max_length, "{route}");
    assert_eq!(tokenizer.pad_id(), expected.pad_id, "{route}");
    assert_eq!(tokenizer.eos_id(), expected.eos_id, "{route}");
    for prompt in &expected.prompts {
        let what = format!("{route}, prompt `{}`", prompt.name);
        let ids = tokenizer.encode(&prompt.text).unwrap();
        assert_eq!(ids, prompt.ids, "{what}: ids");
        assert_eq!(ids[0], expected.bos_id, "{what}");

        let row = tokenizer.encode_padded(&prompt.text, Truncation::Diffusers).unwrap();
        assert_eq!(row.ids, prompt.pipeline_row, "{what}: pipeline_row");
        assert_eq!(row.untruncated_len, prompt.ids.len(), "{what}");
        assert_eq!(row.truncated(), prompt.ids.len() > expected.max_length, "{what}");

        let row = tokenizer.encode_padded(&prompt.text, Truncation::KeepEos).unwrap();
        assert_eq!(row.ids, prompt.keep_eos_row, "{what}: keep_eos_row");
    }
}

#[test]
fn ids_from_vocab_and_merges() {
    check_all(&hub(), "hub (vocab.json + merges.txt)");
}

#[test]
fn ids_from_tokenizer_json() {
    check_all(&raw(), "raw (tokenizer.json)");
}

/// A stock CLIP tokenizer (pad `<|endoftext|>`, `!` plain BPE) built from the same vocabulary;
/// transformers' `truncation=True` keeps EOS, as [`Truncation::KeepEos`].
#[test]
fn ids_of_a_stock_tokenizer() {
    let dir = fixture("tiny/hub/tokenizer");
    let stock =
        Tokenizer::from_vocab_merges(&dir.join("vocab.json"), &dir.join("merges.txt"), SpecialTokens::default())
            .unwrap();
    assert_eq!(stock.pad_id(), 49407);
    for prompt in &expected().prompts {
        let row = stock.encode_padded(&prompt.text, Truncation::KeepEos).unwrap();
        assert_eq!(row.ids, prompt.ids_stock_pad, "stock, prompt `{}`", prompt.name);
    }
}

/// The token-id anchors of `docs/reference.md` ("Tokenizer"), asserted directly.
#[test]
fn spec_anchors() {
    for tokenizer in [hub(), raw()] {
        let ids = |text: &str| tokenizer.encode(text).unwrap();
        // plain prompts, whitespace, the empty prompt
        assert_eq!(
            ids("A teddy bear playing in the pool."),
            [49406, 320, 11798, 4298, 1629, 530, 518, 2831, 269, 49407]
        );
        assert_eq!(ids("teddy bear playing in the pool"), [49406, 11798, 4298, 1629, 530, 518, 2831, 49407]);
        assert_eq!(
            ids("  Multiple   spaces\tand\nnewlines   here  "),
            [49406, 6470, 9006, 537, 1218, 3418, 763, 49407]
        );
        assert_eq!(ids(""), [49406, 49407]);
        // `!` is the special pad token, id 0, anywhere in a prompt
        assert_eq!(ids("hello!"), [49406, 3306, 0, 49407]);
        assert_eq!(ids("wow!!! great"), [49406, 2781, 0, 0, 0, 830, 49407]);
        assert_eq!(ids("wow!!! a teddy bear!"), [49406, 2781, 0, 0, 0, 320, 11798, 4298, 0, 49407]);
        // padding with `!` = 0; the empty negative prompt of the non-learned CFG path
        let row = tokenizer.encode_padded("", Truncation::Diffusers).unwrap();
        let mut negative = vec![49406, 49407];
        negative.resize(77, 0);
        assert_eq!(row.ids, negative);
    }
    // a stock tokenizer keeps `!` as BPE
    let dir = fixture("tiny/hub/tokenizer");
    let stock =
        Tokenizer::from_vocab_merges(&dir.join("vocab.json"), &dir.join("merges.txt"), SpecialTokens::default())
            .unwrap();
    assert_eq!(stock.encode("wow!!! a teddy bear!").unwrap(), [49406, 2781, 995, 320, 11798, 4298, 256, 49407]);
}

/// A prompt of more than 75 BPE tokens: diffusers keeps BOS + 76 tokens (no EOS), the
/// original keeps BOS + 75 tokens + EOS.
#[test]
fn long_prompt_truncation_rules() {
    let tokenizer = hub();
    let text = "cat ".repeat(100);
    let full = tokenizer.encode(&text).unwrap();
    assert_eq!(full.len(), 102);
    let diffusers = tokenizer.encode_padded(&text, Truncation::Diffusers).unwrap();
    assert_eq!(diffusers.ids, full[..77]);
    assert!(!diffusers.ids.contains(&49407) && diffusers.truncated());
    let keep_eos = tokenizer.encode_padded(&text, Truncation::KeepEos).unwrap();
    assert_eq!(keep_eos.ids[..76], full[..76]);
    assert_eq!(keep_eos.ids[76], 49407);
}

/// The pipeline rows stored with the model fixture (`tok.input_ids`) come out of both routes,
/// also through the batched tensor helper.
#[test]
fn pipeline_rows_of_the_model_fixture() {
    let metadata = fixture_metadata("tiny.safetensors");
    let prompts: Vec<String> = serde_json::from_value(metadata["tok_prompts"].clone()).unwrap();
    let prompts: Vec<&str> = prompts.iter().map(String::as_str).collect();
    let expected = reference("tiny.safetensors", "tok.input_ids");
    let lengths = reference("tiny.safetensors", "tok.untruncated_len").to_vec::<i64>().unwrap();
    for tokenizer in [hub(), raw()] {
        let ids = tokenizer
            .encode_to_tensor::<crate::common::B>(&prompts, Truncation::Diffusers, &crate::common::device())
            .unwrap();
        assert_eq!(ids.into_data().to_vec::<i64>().unwrap(), expected.to_vec::<i64>().unwrap());
        for (prompt, &len) in prompts.iter().zip(&lengths) {
            let row = tokenizer.encode_padded(prompt, Truncation::Diffusers).unwrap();
            assert_eq!(row.untruncated_len as i64, len);
        }
    }
}

/// fancy-regex runs CLIP's `\p{L}` / `\p{N}` classes: letters of any script stay one piece,
/// digits split one by one.
#[test]
fn fancy_regex_unicode_classes() {
    let tokenizer = hub();
    let pieces = |text: &str| {
        let encoding = tokenizer.inner().encode(text, false).unwrap();
        encoding.get_tokens().to_vec()
    };
    assert_eq!(pieces("123"), ["1</w>", "2</w>", "3</w>"]);
    // Cyrillic letters form a single pre-token; the BPE pieces recompose it
    let word = pieces("привет");
    assert!(word.last().unwrap().ends_with("</w>"));
    assert!(word[..word.len() - 1].iter().all(|p| !p.ends_with("</w>")));
}

#[test]
fn missing_tokenizer_files() {
    let dir = std::env::temp_dir().join(format!("clip-text-empty-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let error = Tokenizer::from_dir(&dir).unwrap_err();
    assert!(matches!(error, TokenizerError::NoTokenizerFiles { .. }), "{error}");
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(Tokenizer::from_dir(Path::new("/nonexistent/clip")).is_err());
}
