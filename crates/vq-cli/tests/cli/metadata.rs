//! The PNG text chunks, and seeds: a drawn seed is printed and recorded and reproduces the
//! images; the device generator is reproducible with a seed.

use crate::common::{default_backend, png_text, read_tokens, reference, text_value, tiny, vq_diffusion, Scratch};

#[test]
fn png_records_every_setting() {
    let scratch = Scratch::new("metadata");
    let (output, tokens) = (scratch.join("meta.png"), scratch.join("meta.json"));
    let model = tiny("hub").display().to_string();
    let prompt = "teddy bear playing in the pool";
    // The case `seed_2pow32_plus5_trunc086`: the seed is recorded as given, not reduced mod 2³².
    let run = vq_diffusion(&[
        "generate",
        "--model",
        &model,
        "--prompt",
        prompt,
        "--steps",
        "10",
        "--guidance-scale",
        "5",
        "--truncation-rate",
        "0.86",
        "--seed",
        "4294967301",
        "--rng",
        "torch",
        "--output",
        &output.display().to_string(),
        "--tokens",
        &tokens.display().to_string(),
    ]);
    run.assert_success();
    let expected = reference("e2e.seed_2pow32_plus5_trunc086.tokens").to_vec::<i64>().expect("i64 tokens");
    assert_eq!(read_tokens(&tokens).concat(), expected);

    let chunks = png_text(&output);
    let version = format!("vq-diffusion {}", env!("CARGO_PKG_VERSION"));
    for (keyword, value) in [
        ("prompt", prompt),
        ("seed", "4294967301"),
        ("rng", "torch"),
        ("steps", "10"),
        ("guidance_scale", "5"),
        ("truncation_rate", "0.86"),
        ("truncation_mode", "exact"),
        ("sampler", "posterior"),
        ("model", &model),
        ("backend", default_backend()),
        ("dtype", "f32"),
        ("software", &version),
        ("batch_index", "0"),
        ("seed_per_image", "false"),
        ("num_images_per_prompt", "1"),
        ("prompts", "[\"teddy bear playing in the pool\"]"),
    ] {
        assert_eq!(text_value(&chunks, keyword), value, "text chunk {keyword}");
    }
    assert_eq!(chunks.len(), 16, "no other text chunks: {chunks:?}");
}

/// `generate` on the tiny hub pipeline (10 steps, truncation 0.86) with `flags`; the token rows.
fn token_rows(scratch: &Scratch, name: &str, flags: &[&str]) -> (Vec<Vec<i64>>, std::path::PathBuf) {
    let (output, tokens) = (scratch.join(&format!("{name}.png")), scratch.join(&format!("{name}.json")));
    let model = tiny("hub").display().to_string();
    let (output_arg, tokens_arg) = (output.display().to_string(), tokens.display().to_string());
    let mut args = vec!["generate", "--model", &model, "--steps", "10", "--truncation-rate", "0.86"];
    args.extend(["--output", &output_arg, "--tokens", &tokens_arg]);
    args.extend(flags);
    vq_diffusion(&args).assert_success();
    (read_tokens(&tokens), output)
}

#[test]
fn seed_per_image_draws_each_image_as_its_own_run_with_seed_plus_index() {
    let scratch = Scratch::new("seed-per-image");
    let teddy = "teddy bear playing in the pool";
    let flags = ["--prompt", teddy, "--prompt", "a red car", "--num-images-per-prompt", "2", "--seed-per-image"];
    let (rows, output) = token_rows(&scratch, "batch", &[&flags[..], &["--seed", "4294967301"]].concat());
    assert_eq!(rows.len(), 4);
    // Image 0 is diffusers' single image for the seed (the case `seed_2pow32_plus5_trunc086`).
    let expected = reference("e2e.seed_2pow32_plus5_trunc086.tokens").to_vec::<i64>().expect("i64 tokens");
    assert_eq!(rows[0], expected);
    // Image i is the run of its prompt alone with seed + i, and records that.
    for (i, prompt) in [(1, teddy), (2, "a red car"), (3, "a red car")] {
        let seed = (4294967301u64 + i as u64).to_string();
        let (alone, _) = token_rows(&scratch, &format!("alone-{i}"), &["--prompt", prompt, "--seed", &seed]);
        assert_eq!(alone, [rows[i].clone()], "image {i}");
        let chunks = png_text(&output.with_file_name(format!("batch-{i}.png")));
        assert_eq!(text_value(&chunks, "seed"), seed);
        assert_eq!(text_value(&chunks, "prompt"), prompt);
        assert_eq!(text_value(&chunks, "seed_per_image"), "true");
        assert_eq!(text_value(&chunks, "batch_index"), i.to_string());
        assert_eq!(text_value(&chunks, "prompts"), format!("[\"{teddy}\",\"a red car\"]"));
    }
    // Without the flag, the batch comes from one generator: other tokens after image 0.
    let (batch, _) = token_rows(&scratch, "one-generator", &[&flags[..5], &["2", "--seed", "4294967301"]].concat());
    assert_ne!(batch[1], rows[1]);
}

#[test]
fn a_drawn_seed_is_printed_recorded_and_reproduces_the_images() {
    let scratch = Scratch::new("seed");
    let model = tiny("hub").display().to_string();
    let generate = |name: &str, seed: Option<&str>| {
        let (output, tokens) = (scratch.join(&format!("{name}.png")), scratch.join(&format!("{name}.json")));
        let mut args =
            vec!["generate".to_string(), "--model".into(), model.clone(), "--prompt".into(), "a red car".into()];
        args.extend(["--steps", "3", "--output"].map(String::from));
        args.push(output.display().to_string());
        args.extend(["--tokens".to_string(), tokens.display().to_string()]);
        if let Some(seed) = seed {
            args.extend(["--seed".to_string(), seed.to_string()]);
        }
        let run = vq_diffusion(&args);
        run.assert_success();
        (run, text_value(&png_text(&output), "seed"), read_tokens(&tokens))
    };
    let (run, recorded, drawn_tokens) = generate("drawn", None);
    let printed = run
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix("Seed ").and_then(|rest| rest.split_whitespace().next()))
        .unwrap_or_else(|| panic!("no seed line in {}", run.stderr));
    assert_eq!(printed, recorded, "the printed seed is the recorded one");
    assert!(recorded.parse::<u64>().expect("numeric seed") < 1 << 32);
    assert!(run.stderr.contains(&format!("--seed {printed}")), "tells how to reproduce: {}", run.stderr);

    let (rerun, seed_again, tokens_again) = generate("again", Some(&recorded));
    assert_eq!(seed_again, recorded);
    assert_eq!(tokens_again, drawn_tokens, "--seed with the printed seed reproduces the tokens");
    assert!(!rerun.stderr.contains("Seed "), "a given seed is not announced as drawn");
}

#[test]
fn device_generator_is_reproducible_with_a_seed() {
    let scratch = Scratch::new("device-rng");
    let model = tiny("nolearn").display().to_string();
    let tokens = |name: &str, seed: &str| {
        let (output, tokens) = (scratch.join(&format!("{name}.png")), scratch.join(&format!("{name}.json")));
        let run = vq_diffusion(&[
            "generate",
            "--model",
            &model,
            "--prompt",
            "a cat",
            "--steps",
            "3",
            "--rng",
            "device",
            "--seed",
            seed,
            "--output",
            &output.display().to_string(),
            "--tokens",
            &tokens.display().to_string(),
        ]);
        run.assert_success();
        let chunks = png_text(&output);
        assert_eq!(text_value(&chunks, "rng"), "device");
        // Device truncation is the default with device noise on GPU backends only.
        assert_eq!(text_value(&chunks, "truncation_mode"), "exact");
        read_tokens(&tokens)
    };
    let first = tokens("first", "7");
    assert_eq!(tokens("second", "7"), first, "same seed, same tokens");
    assert_ne!(tokens("other", "8"), first, "another seed, other tokens");
}

#[test]
fn the_purity_sampler_is_recorded_with_its_weight_and_reproduces_its_tokens() {
    let scratch = Scratch::new("sampler");
    let model = tiny("hub").display().to_string();
    let tokens = |name: &str, sampler: &[&str]| {
        let (output, tokens) = (scratch.join(&format!("{name}.png")), scratch.join(&format!("{name}.json")));
        let mut args = vec!["generate", "--model", &model, "--prompt", "a cat", "--steps", "6", "--seed", "5"];
        let (output_arg, tokens_arg) = (output.display().to_string(), tokens.display().to_string());
        args.extend(["--output", &output_arg, "--tokens", &tokens_arg]);
        args.extend(sampler);
        vq_diffusion(&args).assert_success();
        (png_text(&output), read_tokens(&tokens))
    };
    let (chunks, purity) = tokens("purity", &["--sampler", "purity", "--purity-weight", "0.5"]);
    assert_eq!(text_value(&chunks, "sampler"), "purity");
    assert_eq!(text_value(&chunks, "purity_weight"), "0.5");
    assert_eq!(tokens("again", &["--sampler", "purity", "--purity-weight", "0.5"]).1, purity, "same seed");
    let (chunks, posterior) = tokens("posterior", &[]);
    assert_eq!(text_value(&chunks, "sampler"), "posterior");
    assert!(chunks.iter().all(|(keyword, _)| keyword != "purity_weight"), "{chunks:?}");
    assert_ne!(posterior, purity, "the purity sampler drew diffusers' tokens");
    let (chunks, _) = tokens("reveal", &["--sampler", "reveal"]);
    assert_eq!(text_value(&chunks, "sampler"), "reveal");
}

#[test]
fn the_truncation_mode_flag_overrides_the_default_of_the_rng() {
    let scratch = Scratch::new("truncation-mode");
    let model = tiny("hub").display().to_string();
    let (output, tokens) = (scratch.join("exact.png"), scratch.join("exact.json"));
    // The e2e case `seed_2pow32_plus5_trunc086` with truncation on the device: diffusers' tokens
    // (the fixture's cases agree on every pixel, tests/pipeline_parity.rs).
    let run = vq_diffusion(&[
        "generate",
        "--model",
        &model,
        "--prompt",
        "teddy bear playing in the pool",
        "--steps",
        "10",
        "--truncation-rate",
        "0.86",
        "--seed",
        "4294967301",
        "--truncation-mode",
        "device",
        "--output",
        &output.display().to_string(),
        "--tokens",
        &tokens.display().to_string(),
    ]);
    run.assert_success();
    assert_eq!(text_value(&png_text(&output), "truncation_mode"), "device");
    assert_eq!(text_value(&png_text(&output), "rng"), "torch");
    let expected = reference("e2e.seed_2pow32_plus5_trunc086.tokens").to_vec::<i64>().expect("i64 tokens");
    assert_eq!(read_tokens(&tokens).concat(), expected);
}

#[test]
fn a_models_sampling_defaults_replace_diffusers_defaults_and_flags_replace_them() {
    // The tiny pipeline recommending truncation 0.86: without the flag, the case
    // `seed_2pow32_plus5_trunc086` (guidance 5, diffusers' default) is drawn; a flag wins.
    let scratch = Scratch::new("sampling-defaults");
    let model = scratch.copy_of("hub");
    std::fs::write(model.join("sampling_defaults.json"), r#"{"truncation_rate": 0.86}"#).expect("write defaults");
    let (output, tokens) = (scratch.join("d.png"), scratch.join("d.json"));
    let generate = |extra: &[&str]| {
        let mut args =
            vec!["generate", "--model", model.to_str().unwrap(), "--prompt", "teddy bear playing in the pool"];
        args.extend(["--steps", "10", "--seed", "4294967301", "--output", output.to_str().unwrap()]);
        args.extend(["--tokens", tokens.to_str().unwrap()]);
        args.extend(extra);
        vq_diffusion(&args)
    };
    let run = generate(&[]);
    run.assert_success();
    assert!(run.stderr.contains("truncation rate 0.86: the model's sampling_defaults.json"), "{}", run.stderr);
    let expected = reference("e2e.seed_2pow32_plus5_trunc086.tokens").to_vec::<i64>().expect("i64 tokens");
    assert_eq!(read_tokens(&tokens).concat(), expected);
    let chunks = png_text(&output);
    assert_eq!(
        (text_value(&chunks, "guidance_scale"), text_value(&chunks, "truncation_rate")),
        ("5".into(), "0.86".into())
    );

    let run = generate(&["--truncation-rate", "1", "--guidance-scale", "2"]);
    run.assert_success();
    assert!(!run.stderr.contains("sampling_defaults.json"), "{}", run.stderr);
    let chunks = png_text(&output);
    assert_eq!(
        (text_value(&chunks, "guidance_scale"), text_value(&chunks, "truncation_rate")),
        ("2".into(), "1".into())
    );
    assert_ne!(read_tokens(&tokens).concat(), expected);

    std::fs::write(model.join("sampling_defaults.json"), r#"{"truncation_rate": 2}"#).expect("write defaults");
    generate(&[]).assert_error(1, &["sampling_defaults.json", "truncation_rate 2 is outside (0, 1]"]);
}
