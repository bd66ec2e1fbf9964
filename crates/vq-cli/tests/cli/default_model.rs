//! Which model `generate` loads without `--model`: `$VQ_DIFFUSION_MODEL`, else the shapes model
//! built into the binary — also for a binary copied away from the checkout, run elsewhere.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{png_text, read_tokens, reference, text_value, tiny, vq_diffusion_with_model_env, Run, Scratch};

/// `generate` of the `seed_2pow32_plus5_trunc086` case without `--model`.
fn generate_case(scratch: &Scratch, model_env: Option<&str>, extra: &[&str]) -> (crate::common::Run, Vec<i64>) {
    let (output, tokens) = (scratch.join("out.png"), scratch.join("out.json"));
    let (output, tokens) = (output.display().to_string(), tokens.display().to_string());
    let mut args = vec!["generate", "--prompt", "teddy bear playing in the pool", "--steps", "10"];
    args.extend(["--truncation-rate", "0.86", "--seed", "4294967301", "--output", &output, "--tokens", &tokens]);
    args.extend(extra);
    let run = vq_diffusion_with_model_env(&args, model_env);
    let drawn = match run.code {
        Some(0) => read_tokens(std::path::Path::new(&tokens)).concat(),
        _ => Vec::new(),
    };
    (run, drawn)
}

#[test]
fn the_environment_variable_names_the_model_when_the_flag_is_absent() {
    let scratch = Scratch::new("default-env");
    let model = tiny("hub").display().to_string();
    let (run, tokens) = generate_case(&scratch, Some(&model), &[]);
    run.assert_success();
    assert_eq!(tokens, reference("e2e.seed_2pow32_plus5_trunc086.tokens").to_vec::<i64>().expect("i64 tokens"));
    assert_eq!(text_value(&png_text(&scratch.join("out.png")), "model"), model);
}

#[test]
fn the_flag_wins_over_the_environment_variable() {
    let scratch = Scratch::new("default-flag");
    let model = tiny("hub").display().to_string();
    let missing = scratch.join("no/such/pipeline").display().to_string();
    let (run, tokens) = generate_case(&scratch, Some(&missing), &["--model", &model]);
    run.assert_success();
    assert_eq!(tokens, reference("e2e.seed_2pow32_plus5_trunc086.tokens").to_vec::<i64>().expect("i64 tokens"));
    // And the variable is used, not ignored, without the flag: its folder is reported missing.
    let (run, _) = generate_case(&scratch, Some(&missing), &[]);
    run.assert_error(1, &[&missing, "not a folder"]);
}

/// The checkout's copy of the shipped model (only to compare with).
fn checkout_model() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/shapes")
}

/// The binary copied to `scratch/bin`, as `cargo install` would put it elsewhere.
fn installed_copy(scratch: &Scratch) -> PathBuf {
    let bin = scratch.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let copy = bin.join(Path::new(env!("CARGO_BIN_EXE_vq-diffusion")).file_name().unwrap());
    std::fs::copy(env!("CARGO_BIN_EXE_vq-diffusion"), &copy).expect("copy the binary");
    copy
}

/// `binary args` in `cwd` with HOME at `home` and no other model or cache setting.
fn run_in(binary: &Path, cwd: &Path, home: &Path, args: &[&str]) -> Run {
    let mut command = Command::new(binary);
    command.args(args).current_dir(cwd).env("HOME", home);
    for var in ["VQ_DIFFUSION_MODEL", "XDG_CACHE_HOME", "HF_HOME", "HF_HUB_CACHE"] {
        command.env_remove(var);
    }
    Run::of(&mut command)
}

#[cfg(shipped_model)]
#[test]
fn an_installed_copy_draws_with_the_embedded_model_from_any_folder() {
    let scratch = Scratch::new("installed");
    let binary = installed_copy(&scratch);
    let (home, cwd) = (scratch.join("home"), scratch.join("somewhere/else"));
    std::fs::create_dir_all(&home).unwrap();
    std::fs::create_dir_all(&cwd).unwrap();

    // The binary names no path of the checkout's model: it carries the files themselves.
    let bytes = std::fs::read(&binary).unwrap();
    let checkout = checkout_model().canonicalize().unwrap().display().to_string();
    for path in [checkout.as_str(), "crates/vq-cli/../../models/shapes"] {
        assert!(!bytes.windows(path.len()).any(|w| w == path.as_bytes()), "the binary holds {path}");
    }

    let args = ["generate", "a photo of a large red circle", "--steps", "5", "--seed", "0", "--tokens", "t.json"];
    let run = run_in(&binary, &cwd, &home, &args);
    run.assert_success();
    assert_eq!(run.stdout, "vq-diffusion.png\nt.json\n");
    assert!(run.stderr.contains("warning: the model never learned \"photo\", \"of\"\n"), "{}", run.stderr);
    assert!(run.stderr.contains("Guidance scale 3, truncation rate 0.7"), "the model's own defaults: {}", run.stderr);
    let tokens = read_tokens(&cwd.join("t.json"));
    assert_eq!(tokens[0].len(), 256, "16 × 16 latent pixels");
    assert!(tokens[0].iter().all(|&t| (0..256).contains(&t)), "codebook ids");

    // It was unpacked under HOME's cache, byte for byte the checkout's model, and the PNG records
    // that folder, a --model that draws the same image again.
    let recorded = PathBuf::from(text_value(&png_text(&cwd.join("vq-diffusion.png")), "model"));
    assert!(recorded.starts_with(home.join(".cache/vq-diffusion/models")), "{}", recorded.display());
    for file in ["model_index.json", "vocabulary.json", "transformer/diffusion_pytorch_model.safetensors"] {
        assert_eq!(std::fs::read(recorded.join(file)).unwrap(), std::fs::read(checkout_model().join(file)).unwrap());
    }
    let other_cwd = scratch.join("third");
    std::fs::create_dir_all(&other_cwd).unwrap();
    let model = recorded.display().to_string();
    let args = [&args[..2], &["--steps", "5", "--seed", "0", "--tokens", "u.json", "--model", &model]].concat();
    let run = run_in(&binary, &other_cwd, &scratch.join("no-home"), &args);
    run.assert_success();
    assert_eq!(read_tokens(&other_cwd.join("u.json")), tokens, "the same words and seed draw the same tokens");
}

#[test]
fn a_model_without_a_vocabulary_names_no_word() {
    let scratch = Scratch::new("no-vocabulary");
    let output = scratch.join("out.png").display().to_string();
    let model = tiny("hub").display().to_string();
    let args = ["generate", "--model", &model, "--prompt", "a photo of a cat", "--steps", "2", "--output", &output];
    let run = vq_diffusion_with_model_env(&args, None);
    run.assert_success();
    assert!(!run.stderr.contains("never learned"), "{}", run.stderr);
}
