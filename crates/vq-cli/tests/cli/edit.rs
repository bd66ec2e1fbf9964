//! Editing on the command line: `encode` / `decode`, inpainting with `--init-image --mask`
//! (every kept latent pixel keeps its encoded token), variations with `--strength`, `--skip`,
//! and one `error: …` line naming the file for every bad picture, mask or flag.

use std::path::{Path, PathBuf};

use burn::backend::NdArray;
use vq_pipeline::VQDiffusionPipeline;

use crate::common::{png_text, read_tokens, text_value, tiny, vq_diffusion, Run, Scratch};

fn display(path: &Path) -> String {
    path.display().to_string()
}

/// `vq-diffusion` with `args` (paths as strings).
fn run(args: &[&str]) -> Run {
    vq_diffusion(args)
}

/// A 16 × 16 picture drawn by the test pipeline (seed 1), at `scratch/in.png`, and its tokens
/// as `generate` wrote them.
fn drawn_picture(scratch: &Scratch) -> (PathBuf, Vec<i64>) {
    let (picture, tokens) = (scratch.join("in.png"), scratch.join("drawn.json"));
    let model = display(&tiny("hub"));
    run(&[
        "generate",
        "--model",
        &model,
        "--prompt",
        "a cat",
        "--steps",
        "3",
        "--seed",
        "1",
        "--output",
        &display(&picture),
        "--tokens",
        &display(&tokens),
    ])
    .assert_success();
    (picture, read_tokens(&tokens).remove(0))
}

/// A 16 × 16 mask, white where `white(x, y)`.
fn mask(scratch: &Scratch, name: &str, white: impl Fn(u32, u32) -> bool) -> PathBuf {
    let path = scratch.join(name);
    image::GrayImage::from_fn(16, 16, |x, y| image::Luma([if white(x, y) { 255 } else { 0 }])).save(&path).unwrap();
    path
}

/// `encode` of `picture` on the test pipeline.
fn encode(scratch: &Scratch, picture: &Path) -> Vec<i64> {
    let tokens = scratch.join("encoded.json");
    let model = display(&tiny("hub"));
    let out = run(&["encode", &display(picture), "--tokens", &display(&tokens), "--model", &model]);
    out.assert_success();
    assert_eq!(out.stdout.trim(), display(&tokens));
    let rows = read_tokens(&tokens);
    assert_eq!(rows.len(), 1);
    rows[0].clone()
}

#[test]
fn decode_draws_exactly_the_picture_generate_wrote() {
    let scratch = Scratch::new("decode");
    let (picture, tokens) = drawn_picture(&scratch);
    let file = scratch.join("t.json");
    std::fs::write(&file, serde_json::to_string(&vec![tokens.clone(), tokens]).unwrap()).unwrap();
    let out = scratch.join("x.png");
    let model = display(&tiny("hub"));
    let decoded = run(&["decode", &display(&file), "--output", &display(&out), "--model", &model]);
    decoded.assert_success();
    let written: Vec<&str> = decoded.stdout.lines().collect();
    assert_eq!(written, [display(&scratch.join("x-0.png")), display(&scratch.join("x-1.png"))]);
    let original = image::open(&picture).unwrap().to_rgb8();
    for path in &written {
        assert_eq!(image::open(path).unwrap().to_rgb8(), original, "{path}");
    }
    assert_eq!(text_value(&png_text(Path::new(written[0])), "tokens"), display(&file));
}

#[test]
fn encode_and_decode_equal_the_library_on_the_same_files() {
    let scratch = Scratch::new("round-trip");
    let (picture, _) = drawn_picture(&scratch);
    let encoded = encode(&scratch, &picture);
    let pipeline = VQDiffusionPipeline::<NdArray>::from_dir(&tiny("hub"), None, &Default::default()).unwrap();
    let rgb = image::open(&picture).unwrap().to_rgb8();
    assert_eq!(encoded, pipeline.encode_images(&[rgb]).unwrap()[0]);
    // A flat array is accepted too.
    let flat = scratch.join("flat.json");
    std::fs::write(&flat, serde_json::to_string(&encoded).unwrap()).unwrap();
    let again = scratch.join("again.png");
    let model = display(&tiny("hub"));
    run(&["decode", &display(&flat), "--output", &display(&again), "--model", &model]).assert_success();
    assert_eq!(image::open(&again).unwrap().to_rgb8(), pipeline.decode_images(&[encoded]).unwrap()[0]);
}

#[test]
fn inpainting_keeps_the_encoded_tokens_outside_the_mask() {
    let scratch = Scratch::new("inpaint");
    let (picture, _) = drawn_picture(&scratch);
    let encoded = encode(&scratch, &picture);
    // Pixel columns 0..5: latent columns 0, 1 and 2 (the third touched by pixel column 4).
    let mask = mask(&scratch, "mask.png", |x, _| x < 5);
    let model = display(&tiny("hub"));
    let (picture, mask) = (display(&picture), display(&mask));
    // The default shows the model the kept tokens re-noised; --kept-region as-encoded as they are.
    let no_flags: &[&str] = &[];
    for (flags, how) in [(no_flags, "renoised"), (&["--kept-region", "as-encoded"][..], "as-encoded")] {
        let (out, tokens) = (scratch.join(&format!("{how}.png")), scratch.join(&format!("{how}.json")));
        let (out_arg, tokens_arg) = (display(&out), display(&tokens));
        let mut args = vec![
            "generate",
            "--model",
            &model,
            "--prompt",
            "a dog",
            "--steps",
            "6",
            "--seed",
            "2",
            "--init-image",
            &picture,
            "--mask",
            &mask,
            "--output",
            &out_arg,
            "--tokens",
            &tokens_arg,
        ];
        args.extend(flags);
        run(&args).assert_success();
        let result = read_tokens(&tokens).remove(0);
        let mut redrawn = 0;
        for (i, (&got, &kept)) in result.iter().zip(&encoded).enumerate() {
            if i % 8 < 3 {
                redrawn += usize::from(got != kept);
            } else {
                assert_eq!(got, kept, "{how}: kept latent pixel {i}");
            }
        }
        assert!(redrawn > 0, "{how}: nothing inside the mask was redrawn");
        let chunks = png_text(&out);
        assert_eq!(text_value(&chunks, "init_image"), picture);
        assert_eq!(text_value(&chunks, "mask"), mask);
        assert_eq!(text_value(&chunks, "kept_region"), how);
        assert_eq!(text_value(&chunks, "strength"), "1");
    }
}

#[test]
fn strength_1_is_the_ordinary_generation_and_skip_changes_the_chain() {
    let scratch = Scratch::new("strength");
    let (picture, _) = drawn_picture(&scratch);
    let model = display(&tiny("hub"));
    let tokens = |name: &str, extra: &[&str]| {
        let file = scratch.join(name);
        let mut args = vec!["generate", "--model", &model, "--prompt", "a dog", "--steps", "5", "--seed", "9"];
        let (file_s, out) = (display(&file), display(&scratch.join(&format!("{name}.png"))));
        args.extend(["--tokens", &file_s, "--output", &out]);
        args.extend(extra);
        run(&args).assert_success();
        read_tokens(&file).remove(0)
    };
    let plain = tokens("plain.json", &[]);
    let picture = display(&picture);
    assert_eq!(tokens("s1.json", &["--init-image", &picture, "--strength", "1"]), plain);
    assert_eq!(tokens("skip0.json", &["--skip", "0", "--skip-posterior", "exact"]), plain);
    let varied = tokens("s04.json", &["--init-image", &picture, "--strength", "0.4"]);
    assert_eq!(varied.len(), 64);
    let skipped = tokens("skip.json", &["--skip", "2"]);
    assert_ne!(skipped, plain, "a strided chain draws other tokens");
    let chunks = png_text(&scratch.join("skip.json.png"));
    assert_eq!((text_value(&chunks, "skip"), text_value(&chunks, "skip_posterior")), ("2".into(), "one-step".into()));
}

#[test]
fn resize_fits_a_picture_of_another_size() {
    let scratch = Scratch::new("resize");
    let big = scratch.join("big.png");
    image::RgbImage::from_fn(40, 24, |x, _| image::Rgb([(x * 6) as u8, 100, 30])).save(&big).unwrap();
    let model = display(&tiny("hub"));
    let big_s = display(&big);
    let tokens = display(&scratch.join("t.json"));
    run(&["encode", &big_s, "--tokens", &tokens, "--model", &model])
        .assert_error(1, &[&big_s, "is 40×24 pixels", "the model's pictures are 16×16", "--resize"]);
    run(&["encode", &big_s, "--tokens", &tokens, "--model", &model, "--resize"]).assert_success();
    let mask = scratch.join("mask.png");
    image::GrayImage::from_fn(40, 24, |x, _| image::Luma([if x < 20 { 255 } else { 0 }])).save(&mask).unwrap();
    let out = display(&scratch.join("out.png"));
    let args = [
        "generate",
        "--model",
        &model,
        "--prompt",
        "a",
        "--steps",
        "2",
        "--output",
        &out,
        "--init-image",
        &big_s,
        "--mask",
        &display(&mask),
    ];
    run(&args).assert_error(1, &[&big_s, "is 40×24 pixels", "16×16"]);
    let mut resized = args.to_vec();
    resized.push("--resize");
    run(&resized).assert_success();
}

/// `generate` with `--init-image` of the drawn picture and `extra`.
fn edit(scratch: &Scratch, model: &Path, extra: &[&str]) -> Run {
    let (picture, _) = drawn_picture(scratch);
    let (model, picture, out) = (display(model), display(&picture), display(&scratch.join("out.png")));
    let mut args = vec![
        "generate",
        "--model",
        &model,
        "--prompt",
        "a",
        "--steps",
        "2",
        "--output",
        &out,
        "--init-image",
        &picture,
    ];
    args.extend(extra);
    run(&args)
}

#[test]
fn bad_masks_are_refused_naming_the_file() {
    let scratch = Scratch::new("masks");
    let hub = tiny("hub");
    let black = mask(&scratch, "black.png", |_, _| false);
    edit(&scratch, &hub, &["--mask", &display(&black)])
        .assert_error(1, &[&display(&black), "is all black", "nothing to draw anew"]);
    let white = mask(&scratch, "white.png", |_, _| true);
    edit(&scratch, &hub, &["--mask", &display(&white)])
        .assert_error(1, &[&display(&white), "is all white", "leave out --mask"]);
    // One white pixel in every 2 × 2 patch: every latent pixel redrawn.
    let dots = mask(&scratch, "dots.png", |x, y| x % 2 == 0 && y % 2 == 0);
    edit(&scratch, &hub, &["--mask", &display(&dots)])
        .assert_error(1, &[&display(&dots), "every 2×2 patch", "nothing kept"]);
    let small = scratch.join("small.png");
    image::GrayImage::new(8, 8).save(&small).unwrap();
    edit(&scratch, &hub, &["--mask", &display(&small)])
        .assert_error(1, &[&display(&small), "is 8×8 pixels", "in.png should match"]);
    let missing = scratch.join("none.png");
    edit(&scratch, &hub, &["--mask", &display(&missing)]).assert_error(1, &["cannot read", &display(&missing)]);
}

#[test]
fn bad_pictures_are_refused_naming_the_file() {
    let scratch = Scratch::new("pictures");
    let model = display(&tiny("hub"));
    let out = display(&scratch.join("out.png"));
    let missing = display(&scratch.join("missing.png"));
    let generate = |picture: &str| {
        run(&["generate", "--model", &model, "--prompt", "a", "--output", &out, "--init-image", picture])
    };
    generate(&missing).assert_error(1, &["cannot read", &missing]);
    let text = scratch.join("text.png");
    std::fs::write(&text, "not a picture").unwrap();
    generate(&display(&text)).assert_error(1, &[&display(&text), "is not a readable picture"]);
    let tokens = display(&scratch.join("t.json"));
    run(&["encode", &missing, "--tokens", &tokens, "--model", &model]).assert_error(1, &["cannot read", &missing]);
}

#[test]
fn out_of_range_and_dependent_flags_are_usage_errors() {
    let scratch = Scratch::new("flags");
    let hub = tiny("hub");
    for strength in ["0", "1.5", "-0.2", "NaN"] {
        edit(&scratch, &hub, &["--strength", strength]).assert_error(2, &["--strength", "is outside (0, 1]"]);
    }
    let model = display(&hub);
    for flags in [["--mask", "m.png"], ["--strength", "0.5"]] {
        let mut args = vec!["generate", "--model", &model, "--prompt", "a"];
        args.extend(flags);
        run(&args).assert_clap_error(&["--init-image"]);
    }
    run(&["generate", "--model", &model, "--prompt", "a", "--resize"]).assert_clap_error(&["--init-image"]);
    run(&["generate", "--model", &model, "--prompt", "a", "--skip", "x"]).assert_clap_error(&["--skip"]);
}

/// A copy of the hub pipeline whose VQ-VAE weights lack the encoder (a decoder-only export).
fn decoder_only(scratch: &Scratch) -> PathBuf {
    let dir = scratch.copy_of("hub");
    let files = std::fs::read_dir(dir.join("vqvae")).unwrap().map(|e| e.unwrap().path());
    for weights in files.filter(|p| p.extension().is_some_and(|e| e == "safetensors")) {
        let bytes = std::fs::read(&weights).unwrap();
        let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let kept: Vec<_> = file
            .tensors()
            .into_iter()
            .filter(|(n, _)| !n.starts_with("encoder.") && !n.starts_with("quant_conv."))
            .collect();
        safetensors::serialize_to_file(kept, None, &weights).unwrap();
    }
    dir
}

#[test]
fn a_model_without_encoder_weights_draws_but_refuses_to_edit_or_encode() {
    let scratch = Scratch::new("decoder-only");
    let model = decoder_only(&scratch);
    let out = display(&scratch.join("plain.png"));
    run(&["generate", "--model", &display(&model), "--prompt", "a", "--steps", "2", "--output", &out]).assert_success();
    let mask = mask(&scratch, "mask.png", |x, _| x < 8);
    edit(&scratch, &model, &["--mask", &display(&mask)])
        .assert_error(1, &["--init-image", "cannot encode pictures", "no encoder weights"]);
    let picture = display(&scratch.join("in.png"));
    run(&["encode", &picture, "--tokens", &display(&scratch.join("t.json")), "--model", &display(&model)])
        .assert_error(1, &["cannot encode", &picture, "no encoder weights"]);
}

#[test]
fn bad_token_files_are_refused_naming_the_file() {
    let scratch = Scratch::new("tokens");
    let model = display(&tiny("hub"));
    let out = display(&scratch.join("x.png"));
    let decode = |text: &str| {
        let file = scratch.join("t.json");
        std::fs::write(&file, text).unwrap();
        (run(&["decode", &display(&file), "--output", &out, "--model", &model]), display(&file))
    };
    let (result, file) = decode("[1, 2,");
    result.assert_error(1, &[&file, "is not valid JSON"]);
    let (result, file) = decode(r#"{"tokens": [1]}"#);
    result.assert_error(1, &[&file, "must hold an array of token ids"]);
    let (result, file) = decode("[]");
    result.assert_error(1, &[&file, "holds no picture's tokens"]);
    let (result, file) = decode(&serde_json::to_string(&vec![0; 63]).unwrap());
    result.assert_error(1, &[&file, "picture 0 has 63 token ids", "8×8 has 64"]);
    let mut ids = vec![0i64; 64];
    ids[5] = 31;
    let (result, file) = decode(&serde_json::to_string(&vec![vec![0i64; 64], ids]).unwrap());
    result.assert_error(1, &[&file, "picture 1, latent pixel 5: id 31 is outside the codebook 0..=30"]);
}

#[test]
fn the_shipped_model_keeps_every_kept_token_when_inpainting() {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/shapes");
    if !shipped.join("model_index.json").is_file() {
        return; // a checkout without the model: default_model.rs tests the message
    }
    let scratch = Scratch::new("shipped-inpaint");
    // A large red disc in the centre of a blue picture, as the model draws them.
    let picture = scratch.join("in.png");
    let picture_s = display(&picture);
    image::RgbImage::from_fn(64, 64, |x, y| {
        let (dx, dy) = (f64::from(x) - 31.5, f64::from(y) - 31.5);
        image::Rgb(if dx * dx + dy * dy < 81.0 { [220, 30, 30] } else { [30, 60, 220] })
    })
    .save(&picture)
    .unwrap();
    let base = ["--steps", "50", "--skip", "12", "--seed", "0"];
    let encoded = scratch.join("encoded.json");
    run(&["encode", &picture_s, "--tokens", &display(&encoded)]).assert_success();
    let encoded = read_tokens(&encoded).remove(0);
    let mask = scratch.join("mask.png");
    // The centre cell (pixels 21..43) redrawn: latent columns and rows 5..=10.
    image::GrayImage::from_fn(64, 64, |x, y| {
        image::Luma([if (21..43).contains(&x) && (21..43).contains(&y) { 255 } else { 0 }])
    })
    .save(&mask)
    .unwrap();
    let (out, tokens) = (display(&scratch.join("out.png")), scratch.join("out.json"));
    let mut args = vec!["generate", "--prompt", "a large yellow triangle in the center on a blue background"];
    let (mask_s, tokens_s) = (display(&mask), display(&tokens));
    args.extend(base);
    args.extend(["--init-image", &picture_s, "--mask", &mask_s, "--output", &out, "--tokens", &tokens_s]);
    run(&args).assert_success();
    let result = read_tokens(&tokens).remove(0);
    let inside = |i: usize| (5..=10).contains(&(i % 16)) && (5..=10).contains(&(i / 16));
    for i in 0..256 {
        if !inside(i) {
            assert_eq!(result[i], encoded[i], "kept latent pixel {i}");
        }
    }
    assert!((0..256).any(|i| inside(i) && result[i] != encoded[i]));
}

#[test]
fn help_documents_the_editing_flags_and_subcommands() {
    let help = vq_diffusion(&["generate", "--help"]);
    help.assert_success();
    for flag in [
        "--init-image <IN.png>",
        "--mask <MASK.png>",
        "--strength <S>",
        "--resize",
        "--skip <K>",
        "--skip-posterior <JUMP>",
    ] {
        assert!(help.stdout.contains(flag), "{flag} missing from:\n{}", help.stdout);
    }
    for words in [
        "Editing a picture",
        "[default: 0]",
        "[default: one-step]",
        "grey above 50 %",
        "--init-image in.png --mask mask.png",
    ] {
        // Help wraps at the terminal's width: compare with the line breaks folded.
        let folded = help.stdout.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(folded.contains(words), "{words:?} missing from:\n{}", help.stdout);
    }
    let top = vq_diffusion(&["--help"]);
    for command in ["encode", "decode"] {
        assert!(top.stdout.contains(command), "{command} missing from:\n{}", top.stdout);
        let help = vq_diffusion(&[command, "--help"]);
        help.assert_success();
        assert!(help.stdout.contains("--model") && help.stdout.contains("Example"), "{}", help.stdout);
    }
}
