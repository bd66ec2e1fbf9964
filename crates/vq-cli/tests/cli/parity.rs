//! Diffusers' tokens and 8-bit pixels through the command line (`--rng torch`), for one
//! image, two prompts × two images (file naming and prompt-major order), and the
//! empty-prompt negative branch.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::{case, png_text, read_tokens, reference, text_value, tiny, vq_diffusion, Scratch};

/// The float tolerance of the library's parity test: diffusers' CPU kernels and ours round
/// the last bits differently, so an 8-bit pixel may differ only where the reference float
/// times 255 lies within this × 255 (≈ 2.5e-3) of a .5 rounding boundary.
const IMAGE_TOL: f32 = 1e-5;

fn rounding_tie(x: f32) -> bool {
    let scaled = x * 255.0;
    (scaled - scaled.floor() - 0.5).abs() <= IMAGE_TOL * 255.0
}

fn prompts(case: &Value) -> Vec<String> {
    match &case["prompt"] {
        Value::String(p) => vec![p.clone()],
        Value::Array(ps) => ps.iter().map(|p| p.as_str().expect("prompt").to_string()).collect(),
        other => panic!("bad prompt {other}"),
    }
}

/// The command line of `case` on `model`, writing `output` and `tokens`.
fn args(case: &Value, model: &Path, output: &Path, tokens: &Path) -> Vec<String> {
    let mut args = vec!["generate".to_string(), "--model".into(), model.display().to_string()];
    for prompt in prompts(case) {
        args.extend(["--prompt".into(), prompt]);
    }
    for (flag, key) in [
        ("--steps", "num_inference_steps"),
        ("--guidance-scale", "guidance_scale"),
        ("--truncation-rate", "truncation_rate"),
        ("--num-images-per-prompt", "num_images_per_prompt"),
        ("--seed", "seed"),
    ] {
        args.extend([flag.to_string(), case[key].to_string()]);
    }
    args.extend(["--rng".into(), "torch".into()]);
    args.extend(["--output".into(), output.display().to_string(), "--tokens".into(), tokens.display().to_string()]);
    args
}

/// Runs `case` on pipeline `layout`; checks the files named on stdout are `images` then the
/// tokens file, the tokens equal diffusers', every PNG equals diffusers' 8-bit image (up to
/// rounding ties) and records the prompt of its batch row (prompt-major).
fn check_case(name: &str, layout: &str, output: &str, images: &[&str]) {
    let case = case(name);
    assert!(case["num_inference_steps"].as_u64().expect("steps") <= 10, "keep CLI runs short");
    let scratch = Scratch::new(name);
    let (output, tokens) = (scratch.join(output), scratch.join("tokens.json"));
    let run = vq_diffusion(&args(&case, &tiny(layout), &output, &tokens));
    run.assert_success();

    let images: Vec<PathBuf> = images.iter().map(|f| scratch.join(f)).collect();
    let mut listed: Vec<PathBuf> = images.clone();
    listed.push(tokens.clone());
    let printed: Vec<PathBuf> = run.stdout.lines().map(PathBuf::from).collect();
    assert_eq!(printed, listed, "{name}: files written, in order");
    if images.len() > 1 {
        assert!(!output.exists(), "{name}: with several images {} itself is not written", output.display());
    }

    let ids = read_tokens(&tokens);
    assert_eq!(ids.len(), images.len(), "{name}: one token row per image");
    let expected_ids = reference(&format!("e2e.{name}.tokens"));
    assert_eq!(ids.concat(), expected_ids.to_vec::<i64>().expect("i64 tokens"), "{name}: tokens");

    let expected_float = reference(&format!("e2e.{name}.image")).to_vec::<f32>().expect("f32 image");
    let expected_u8 = reference(&format!("e2e.{name}.image_u8")).to_vec::<i64>().expect("u8 image");
    let per_image = expected_u8.len() / images.len();
    let per_prompt = case["num_images_per_prompt"].as_u64().expect("images per prompt") as usize;
    for (b, path) in images.iter().enumerate() {
        let chunks = png_text(path);
        assert_eq!(text_value(&chunks, "prompt"), prompts(&case)[b / per_prompt], "{name}: prompt of image {b}");
        // Enough to draw the image again: its place in the batch, the batch's prompts and K.
        assert_eq!(text_value(&chunks, "batch_index"), b.to_string(), "{name}: image {b}");
        assert_eq!(text_value(&chunks, "num_images_per_prompt"), per_prompt.to_string());
        let listed: Vec<String> = serde_json::from_str(&text_value(&chunks, "prompts")).expect("JSON prompts");
        assert_eq!(listed, prompts(&case), "{name}: the batch's prompts");
        let image = image::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).to_rgb8();
        assert_eq!((image.width(), image.height()), (16, 16), "{name}: image size");
        for (i, &pixel) in image.as_raw().iter().enumerate() {
            let k = b * per_image + i;
            assert!(
                i64::from(pixel) == expected_u8[k] || rounding_tie(expected_float[k]),
                "{name}: image {b} byte {i} is {pixel}, diffusers {} (float {})",
                expected_u8[k],
                expected_float[k]
            );
        }
    }
}

#[test]
fn one_image_matches_diffusers() {
    check_case("g5_learned", "hub", "teddy.png", &["teddy.png"]);
}

#[test]
fn two_prompts_two_images_each_are_numbered_in_prompt_major_order() {
    check_case("two_prompts_x2", "hub", "batch.png", &["batch-0.png", "batch-1.png", "batch-2.png", "batch-3.png"]);
}

#[test]
fn empty_prompt_negatives_match_diffusers() {
    check_case("g3_nolearn", "nolearn", "nolearn.png", &["nolearn.png"]);
}
