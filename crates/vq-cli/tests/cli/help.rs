//! `--help` documents every flag with its default and an example, wrapped at the terminal's width.

use crate::common::{default_backend, vq_diffusion_command, Run};

/// `vq-diffusion ARGS` as in a terminal `columns` wide (clap reads $COLUMNS where stdout is no
/// terminal).
fn help_at(columns: usize, args: &[&str]) -> Run {
    Run::of(vq_diffusion_command(args).env("COLUMNS", columns.to_string()))
}

/// Help unwrapped in practice, so that phrases can be looked for whole.
fn vq_diffusion(args: &[&str]) -> Run {
    help_at(10_000, args)
}

#[test]
fn help_wraps_at_the_terminal_width() {
    for args in [&["--help"][..], &["generate", "--help"], &["info", "--help"], &["generate", "-h"]] {
        for columns in [60, 100] {
            let run = help_at(columns, args);
            run.assert_success();
            let widest = run.stdout.lines().map(|l| l.chars().count()).max().unwrap_or(0);
            assert!(widest <= columns, "{args:?} at {columns} columns has a line of {widest}:\n{}", run.stdout);
        }
        // The long paragraphs fill the width rather than keep short lines.
        let wide = help_at(200, args);
        assert!(wide.stdout.lines().any(|l| l.chars().count() > 100), "{args:?} at 200 columns:\n{}", wide.stdout);
    }
}

#[test]
fn info_help_names_the_flag_and_what_is_printed() {
    let run = vq_diffusion(&["info", "--help"]);
    run.assert_success();
    for word in ["--model <DIR|REPO_ID>", "vocabulary.json", "built into this binary", "vq-diffusion info --model"] {
        assert!(run.stdout.contains(word), "{word:?} missing from:\n{}", run.stdout);
    }
}

#[test]
fn top_level_help_has_an_example() {
    let run = vq_diffusion(&["--help"]);
    run.assert_success();
    for word in ["generate", "info", "Example", "--prompt", "Exit status"] {
        assert!(run.stdout.contains(word), "{word:?} missing from:\n{}", run.stdout);
    }
}

#[test]
fn generate_help_documents_every_flag_and_default() {
    let run = vq_diffusion(&["generate", "--help"]);
    run.assert_success();
    let help = &run.stdout;
    for flag in [
        "--model",
        "--prompt",
        "--steps",
        "--guidance-scale",
        "--truncation-rate",
        "--num-images-per-prompt",
        "--seed",
        "--rng",
        "--sampler",
        "--purity-weight",
        "--output",
        "--tokens",
        "--backend",
        "--dtype",
        "--engine",
    ] {
        assert!(help.contains(&format!("{flag} <")), "{flag} missing from:\n{help}");
    }
    for word in ["--seed-per-image", ".jpg/.jpeg", ".webp", "overwriting FILE", "at most 1024"] {
        assert!(help.contains(word), "{word:?} missing from:\n{help}");
    }
    // --steps defaults to 100 unless the model trains fewer steps (then to that number).
    assert!(help.contains("Default: 100, or the model's num_train_timesteps"), "--steps default missing from:\n{help}");
    // Guidance and truncation: the model's recommendation, else diffusers'.
    for default in
        ["sampling_defaults.json (models/shapes: 3), else 5.0", "sampling_defaults.json (models/shapes: 0.7), else 1.0"]
    {
        assert!(help.contains(default), "{default:?} missing from:\n{help}");
    }
    for default in ["1", "torch", "posterior", "vq-diffusion.png", default_backend(), "f32", "auto"] {
        assert!(help.contains(&format!("[default: {default}]")), "default {default} missing from:\n{help}");
    }
    for word in ["random seed", "FILE-0.png", "Examples:", "vq-diffusion generate --model", "Exit status"] {
        assert!(help.contains(word), "{word:?} missing from:\n{help}");
    }
}
