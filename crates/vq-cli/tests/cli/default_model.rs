//! Which model `generate` loads without `--model`: `$VQ_DIFFUSION_MODEL`, else the shapes model
//! shipped in `models/shapes`.

use crate::common::{png_text, read_tokens, reference, text_value, tiny, vq_diffusion_with_model_env, Scratch};

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

#[test]
fn without_flag_or_variable_the_shipped_model_is_used_or_its_absence_explained() {
    let scratch = Scratch::new("default-shipped");
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/shapes");
    let (run, tokens) = generate_case(&scratch, None, &[]);
    match shipped.join("model_index.json").is_file() {
        true => {
            run.assert_success();
            assert_eq!(tokens.len(), 256, "16 × 16 latent pixels");
            let recorded = text_value(&png_text(&scratch.join("out.png")), "model");
            assert!(recorded.ends_with("models/shapes"), "{recorded}");
        }
        false => run.assert_error(1, &["no --model given", "VQ_DIFFUSION_MODEL", "models/shapes"]),
    }
}
