//! `vq-diffusion info`: what a model is and where it comes from, line by line.

use crate::common::{tiny, vq_diffusion, vq_diffusion_with_model_env, Scratch};

#[cfg(shipped_model)]
#[test]
fn info_describes_the_embedded_model() {
    let run = vq_diffusion(&["info"]);
    run.assert_success();
    let lines: Vec<&str> = run.stdout.lines().collect();
    let folder = std::env::temp_dir().join("vq-cli-test-cache/vq-diffusion/models/shapes-");
    assert_eq!(lines[0], "model: shapes, built into this binary");
    assert!(lines[1].starts_with(&format!("folder: {}", folder.display())), "{}", lines[1]);
    assert_eq!(
        lines[2..],
        [
            "image: 64 × 64 pixels",
            "latent grid: 16 × 16 tokens",
            "codebook: 256 codes (+ the mask class)",
            "transformer: 6 layers, width 192 (6 heads × 32), 50 diffusion steps",
            "text encoder: 4 layers, width 128, 603 token ids",
            "text length: 32 tokens",
            "sampling defaults: 50 steps (the model's num_train_timesteps), guidance scale 3 (sampling_defaults.json), \
             truncation rate 0.7 (sampling_defaults.json)",
            "vocabulary: 27 words: a an and at background black blue bottom center circle diamond green in large left \
             on orange purple red right small square the top triangle white yellow",
        ]
    );
    assert!(run.stderr.is_empty(), "{}", run.stderr);
}

#[test]
fn info_describes_a_folder_named_by_flag_or_variable() {
    let model = tiny("hub").display().to_string();
    let expected = |origin: &str| {
        format!(
            "model: folder {model} ({origin})\nfolder: {model}\nimage: 16 × 16 pixels\nlatent grid: 8 × 8 tokens\n\
             codebook: 31 codes (+ the mask class)\ntransformer: 2 layers, width 24 (3 heads × 8), 100 diffusion steps\n\
             text encoder: 3 layers, width 16, 49408 token ids\ntext length: 77 tokens\n\
             sampling defaults: 100 steps (diffusers'), guidance scale 5 (diffusers'), truncation rate 1 (diffusers')\n\
             vocabulary: not listed (no vocabulary.json: prompt words are not checked)\n"
        )
    };
    let run = vq_diffusion(&["info", "--model", &model]);
    run.assert_success();
    assert_eq!(run.stdout, expected("--model"));
    let run = vq_diffusion_with_model_env(&["info"], Some(&model));
    run.assert_success();
    assert_eq!(run.stdout, expected("$VQ_DIFFUSION_MODEL"));
}

#[test]
fn info_on_a_missing_or_broken_model_is_one_error_line() {
    let scratch = Scratch::new("info-errors");
    let missing = scratch.join("no/such/pipeline").display().to_string();
    vq_diffusion(&["info", "--model", &missing]).assert_error(1, &[&missing]);
    let broken = scratch.copy_of("hub");
    std::fs::write(broken.join("transformer/config.json"), "{").unwrap();
    let run = vq_diffusion(&["info", "--model", &broken.display().to_string()]);
    run.assert_error(1, &["transformer", "config.json"]);
}
