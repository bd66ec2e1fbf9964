//! A pipeline folder from a stranger: every file is read as a regular file with a size cap, every
//! config is checked against its weights before a model is built, and the tokenizer must fit
//! the text encoder. Each test copies the tiny fixture pipeline, breaks one file, and checks
//! that loading fails with an error naming the file and the field.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use burn::backend::NdArray;
use serde_json::Value;
use vq_pipeline::VQDiffusionPipeline;

/// A copy of `fixtures/tiny/hub` in a fresh temporary folder.
fn tiny_copy(tag: &str) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/tiny/hub");
    let dst = std::env::temp_dir().join(format!("vq-untrusted-{tag}-{}", std::process::id()));
    std::fs::remove_dir_all(&dst).ok();
    copy_dir(&src, &dst);
    dst
}

fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for entry in std::fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        let target = dst.join(entry.file_name());
        match entry.file_type().unwrap().is_dir() {
            true => copy_dir(&entry.path(), &target),
            false => drop(std::fs::copy(entry.path(), &target).unwrap()),
        }
    }
}

/// Loads the folder on another thread and fails the test after a minute (a FIFO must not hang
/// the loader, so a hang is a failure, not a stuck test run).
fn load_error(dir: &Path) -> String {
    let (tx, rx) = mpsc::channel();
    let dir = dir.to_path_buf();
    std::thread::spawn(move || {
        let result = VQDiffusionPipeline::<NdArray>::from_dir(&dir, None, &Default::default());
        tx.send(result.map(|_| ()).map_err(|e| e.to_string())).ok();
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(Ok(())) => panic!("the broken folder loaded"),
        Ok(Err(message)) => message,
        Err(_) => panic!("loading did not finish within a minute"),
    }
}

/// Rewrites one field of a JSON file.
fn set_field(path: &Path, field: &str, value: Value) {
    let mut json: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    json[field] = value;
    std::fs::write(path, serde_json::to_string_pretty(&json).unwrap()).unwrap();
}

fn mkfifo(path: &Path) {
    std::fs::remove_file(path).ok();
    let status = std::process::Command::new("mkfifo").arg(path).status().unwrap();
    assert!(status.success());
}

fn assert_contains(message: &str, parts: &[&str]) {
    for part in parts {
        assert!(message.contains(part), "`{part}` missing from: {message}");
    }
}

#[test]
fn the_unbroken_copy_loads() {
    let dir = tiny_copy("ok");
    VQDiffusionPipeline::<NdArray>::from_dir(&dir, None, &Default::default()).unwrap();
}

#[test]
fn a_fifo_config_is_refused_without_blocking() {
    let dir = tiny_copy("fifo");
    let config = dir.join("transformer/config.json");
    mkfifo(&config);
    let message = load_error(&dir);
    assert_contains(&message, &[&config.display().to_string(), "is a FIFO (named pipe), not a regular file"]);

    let dir = tiny_copy("fifo-tokenizer");
    let config = dir.join("tokenizer/tokenizer_config.json");
    mkfifo(&config);
    assert_contains(&load_error(&dir), &[&config.display().to_string(), "FIFO"]);
}

#[test]
fn a_model_index_linked_to_dev_zero_is_refused_unread() {
    let dir = tiny_copy("devzero");
    let index = dir.join("model_index.json");
    std::fs::remove_file(&index).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &index).unwrap();
    let message = load_error(&dir);
    assert_contains(&message, &[&index.display().to_string(), "is a character device, not a regular file"]);
}

#[test]
fn an_oversized_config_is_refused_unread() {
    let dir = tiny_copy("big");
    let config = dir.join("scheduler/scheduler_config.json");
    let padded = format!("{}{}", std::fs::read_to_string(&config).unwrap(), " ".repeat(5 << 20));
    std::fs::write(&config, padded).unwrap();
    let message = load_error(&dir);
    assert_contains(&message, &[&config.display().to_string(), "larger than the 4194304-byte limit"]);
}

#[test]
fn a_huge_size_field_is_refused_by_name() {
    let dir = tiny_copy("layers");
    let config = dir.join("text_encoder/config.json");
    set_field(&config, "num_hidden_layers", 1_000_000.into());
    let message = load_error(&dir);
    assert_contains(&message, &[&config.display().to_string(), "num_hidden_layers", "1000000", "limit of 256"]);
}

#[test]
fn a_config_bigger_than_its_weights_is_refused_before_allocating() {
    let dir = tiny_copy("exceeds");
    let config = dir.join("transformer/config.json");
    set_field(&config, "num_layers", 200.into());
    let message = load_error(&dir);
    let weights = dir.join("transformer/diffusion_pytorch_model.safetensors");
    assert_contains(
        &message,
        &[
            &config.display().to_string(),
            "`num_layers` = 200 describes a model of 3280375 parameter values",
            &format!("{} holds only 34759", weights.display()),
        ],
    );

    let dir = tiny_copy("exceeds-vqvae");
    set_field(&dir.join("vqvae/config.json"), "layers_per_block", 40.into());
    assert_contains(&load_error(&dir), &["`layers_per_block` = 40 describes a model of"]);
}

#[test]
fn tokenizer_ids_beyond_the_text_encoder_vocabulary_are_refused() {
    // A pad token that is not in the vocabulary is added with the next id, 49408: one past the
    // text encoder's embedding table.
    let dir = tiny_copy("pad");
    for file in ["tokenizer/tokenizer_config.json", "tokenizer/special_tokens_map.json"] {
        set_field(&dir.join(file), "pad_token", "<|pad|>".into());
    }
    let message = load_error(&dir);
    assert_contains(&message, &["tokenizer ids reach 49408 but the text encoder's vocab_size is 49408"]);
}

#[test]
fn token_ids_beyond_i32_are_refused() {
    let dir = tiny_copy("vocab");
    let vocab = dir.join("tokenizer/vocab.json");
    set_field(&vocab, "zzzz", 2_147_483_648u64.into());
    let message = load_error(&dir);
    assert_contains(&message, &[&vocab.display().to_string(), "token `zzzz` has id 2147483648"]);
}

/// Writes a safetensors file holding one tensor.
fn write_safetensors(path: &Path, key: &str, dtype: &str, shape: &[usize], data: &[u8]) {
    let header = format!(r#"{{"{key}":{{"dtype":"{dtype}","shape":{shape:?},"data_offsets":[0,{}]}}}}"#, data.len());
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(data);
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn learned_embeddings_must_be_finite_floats() {
    let dir = tiny_copy("embeddings");
    let path = dir.join("learned_classifier_free_sampling_embeddings/diffusion_pytorch_model.safetensors");
    write_safetensors(&path, "embeddings", "I64", &[77, 16], &[0; 77 * 16 * 8]);
    assert_contains(&load_error(&dir), &[&path.display().to_string(), "`embeddings` has dtype I64"]);

    let mut values = vec![0.5f32; 77 * 16];
    values[5] = f32::NAN;
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    write_safetensors(&path, "embeddings", "F32", &[77, 16], &bytes);
    assert_contains(&load_error(&dir), &[&path.display().to_string(), "`embeddings` holds NaN at element 5"]);
}
