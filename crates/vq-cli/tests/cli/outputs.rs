//! The files a run writes: the format its extension names, whole or not at all, never two
//! outputs in one file, never a FIFO, a capped batch, and overwriting said on stderr.

use std::path::{Path, PathBuf};

use crate::common::{exif_parameters, png_text, read_tokens, text_value, tiny, vq_diffusion, Run, Scratch};

/// `generate` on the committed hub pipeline: "a cat", seed 0, 2 steps unless `extra` sets them,
/// and `extra`.
fn generate(extra: &[&str]) -> Run {
    let model = tiny("hub").display().to_string();
    let mut args = vec!["generate", "--model", &model, "--prompt", "a cat", "--seed", "0"];
    if !extra.contains(&"--steps") {
        args.extend(["--steps", "2"]);
    }
    args.extend(extra);
    vq_diffusion(&args)
}

fn display(path: &Path) -> String {
    path.display().to_string()
}

/// The names in `dir`, sorted.
fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read folder")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into())
        .collect();
    names.sort();
    names
}

#[test]
fn a_huge_batch_is_a_usage_error_before_loading() {
    let scratch = Scratch::new("huge");
    let output = display(&scratch.join("out.png"));
    for (k, prompts) in [("1000000000", 1), ("9223372036854775808", 2), ("1025", 1), ("513", 2)] {
        let mut flags = vec!["--num-images-per-prompt", k, "--output", &output];
        if prompts == 2 {
            flags.extend(["--prompt", "a dog"]);
        }
        let run = generate(&flags);
        run.assert_error(2, &[&format!("--num-images-per-prompt {k} × {prompts} prompt(s)"), "1024"]);
        assert!(!run.stderr.contains("Loading"), "refused before loading: {}", run.stderr);
    }
    assert!(names_in(&scratch.0).is_empty());
}

#[test]
fn jpeg_and_webp_outputs_decode_with_the_right_size_and_parameters() {
    let scratch = Scratch::new("formats");
    let png = scratch.join("x.png");
    generate(&["--output", &display(&png)]).assert_success();
    let reference = image::open(&png).expect("PNG").to_rgb8();

    for (name, magic) in [("x.jpg", &b"\xFF\xD8\xFF"[..]), ("y.JPEG", b"\xFF\xD8\xFF"), ("z.webp", b"RIFF")] {
        let path = scratch.join(name);
        let run = generate(&["--output", &display(&path)]);
        run.assert_success();
        assert_eq!(run.stdout.trim(), display(&path), "the written file on stdout");
        let bytes = std::fs::read(&path).expect("image written");
        assert!(bytes.starts_with(magic), "{name} is not PNG bytes under another name");
        let image = image::open(&path).unwrap_or_else(|e| panic!("{name}: {e}")).to_rgb8();
        assert_eq!((image.width(), image.height()), (16, 16), "{name}");
        let error: u32 = image.as_raw().iter().zip(reference.as_raw()).map(|(&a, &b)| a.abs_diff(b) as u32).sum();
        let mean = error as f64 / image.as_raw().len() as f64;
        match name.ends_with("webp") {
            true => assert_eq!(mean, 0.0, "{name}: lossless"),
            false => assert!(mean < 8.0, "{name}: mean error {mean} at quality 95"),
        }
        let parameters = exif_parameters(&path);
        for (key, value) in [
            ("prompt", "a cat"),
            ("seed", "0"),
            ("steps", "2"),
            ("batch_index", "0"),
            ("seed_per_image", "false"),
            ("prompts", "[\"a cat\"]"),
        ] {
            assert_eq!(parameters[key], value, "{name}: {key} in {parameters:?}");
        }
        assert_eq!(parameters.len(), png_text(&png).len(), "{name}: the PNG's parameters, all of them");
    }
}

#[test]
fn an_unknown_extension_is_refused() {
    let scratch = Scratch::new("extension");
    for name in ["out.gif", "out.txt", "out.png.bak"] {
        let output = scratch.join(name);
        let run = generate(&["--output", &display(&output)]);
        run.assert_error(2, &["--output", &display(&output), "unknown image format", ".png, .jpg or .jpeg, .webp"]);
        assert!(!run.stderr.contains("Loading"), "{}", run.stderr);
    }
    assert!(names_in(&scratch.0).is_empty());
}

#[test]
fn overwriting_is_said_on_stderr_and_happens_only_on_success() {
    let scratch = Scratch::new("overwrite");
    let output = scratch.join("out.png");
    let run = generate(&["--output", &display(&output)]);
    run.assert_success();
    assert!(!run.stderr.contains("overwriting"), "a new file: {}", run.stderr);

    std::fs::write(&output, "old").expect("write");
    let run = generate(&["--output", &display(&output)]);
    run.assert_success();
    assert!(run.stderr.contains(&format!("overwriting {}", display(&output))), "{}", run.stderr);
    assert_eq!(text_value(&png_text(&output), "prompt"), "a cat");

    // A run that fails after loading leaves the old file as it was.
    std::fs::write(&output, "old").expect("write");
    let run = generate(&["--output", &display(&output), "--steps", "101"]);
    run.assert_error(2, &["--steps"]);
    assert!(!run.stderr.contains("overwriting"), "{}", run.stderr);
    assert_eq!(std::fs::read_to_string(&output).expect("read"), "old");
    assert_eq!(names_in(&scratch.0), ["out.png"]);
}

#[test]
fn two_spellings_of_one_file_are_refused() {
    let scratch = Scratch::new("same-file");
    let dir = scratch.join("d");
    std::fs::create_dir(&dir).expect("folder");
    let a = dir.join("a.png");
    std::fs::write(&a, "keep").expect("write");
    std::os::unix::fs::symlink(&a, dir.join("link.json")).expect("symlink");
    std::fs::hard_link(&a, dir.join("hard.json")).expect("hard link");
    let cases: [(&str, PathBuf); 4] = [
        ("dot-dot", dir.join("../d/a.png")),
        ("equal", a.clone()),
        ("symlink", dir.join("link.json")),
        ("hard link", dir.join("hard.json")),
    ];
    for (label, tokens) in cases {
        let run = generate(&["--output", &display(&a), "--tokens", &display(&tokens)]);
        run.assert_error(2, &["--tokens", &display(&tokens), "same file", "--output", &display(&a)]);
        assert!(!run.stderr.contains("Loading"), "{label}: {}", run.stderr);
        assert_eq!(std::fs::read_to_string(&a).expect("read"), "keep", "{label}");
    }
    // Two images of one batch: out-1.png is a symlink to out-0.png.
    std::fs::write(dir.join("out-0.png"), "keep").expect("write");
    std::os::unix::fs::symlink(dir.join("out-0.png"), dir.join("out-1.png")).expect("symlink");
    let run = generate(&["--output", &display(&dir.join("out.png")), "--num-images-per-prompt", "2"]);
    run.assert_error(2, &["out-1.png", "same file", "out-0.png"]);
    assert_eq!(names_in(&dir), ["a.png", "hard.json", "link.json", "out-0.png", "out-1.png"]);
}

#[test]
fn a_fifo_is_refused_not_waited_on() {
    let scratch = Scratch::new("fifo");
    let fifo = scratch.join("out.png");
    let name = std::ffi::CString::new(display(&fifo)).expect("path");
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o644) }, 0, "mkfifo");
    // Should the binary open the FIFO and block, a reader frees it after 10 s and the
    // assertions below fail instead of the test hanging.
    let unblock = fifo.clone();
    std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_secs(10));
        let _ = std::fs::read(&unblock);
    });
    generate(&["--output", &display(&fifo)]).assert_error(1, &["cannot write", &display(&fifo), "a FIFO"]);
    let output = display(&scratch.join("image.png"));
    generate(&["--output", &output, "--tokens", &display(&fifo)]).assert_error(1, &[&display(&fifo), "a FIFO"]);
    use std::os::unix::fs::FileTypeExt;
    assert!(std::fs::symlink_metadata(&fifo).expect("still there").file_type().is_fifo());
    assert_eq!(names_in(&scratch.0), ["out.png"]);
}

/// Runs `generate` with `flags` under a file-size limit of `bytes` (RLIMIT_FSIZE, SIGXFSZ
/// ignored, so a write past it fails with EFBIG as on a full disk); works for root too.
fn generate_with_size_limit(flags: &[&str], bytes: u64) -> Run {
    use std::os::unix::process::CommandExt;
    let model = tiny("hub").display().to_string();
    let mut args = vec!["generate", "--model", &model, "--prompt", "a cat", "--steps", "2", "--seed", "0"];
    args.extend(flags);
    let mut command = crate::common::vq_diffusion_command(&args);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        command.pre_exec(move || {
            let limit = libc::rlimit { rlim_cur: bytes, rlim_max: bytes };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            Ok(())
        });
    }
    Run::of(&mut command)
}

#[test]
fn a_failure_after_the_images_leaves_no_file_behind() {
    let scratch = Scratch::new("atomic");
    let (output, tokens) = (scratch.join("out.png"), scratch.join("tokens.json"));
    let flags = ["--num-images-per-prompt", "16", "--output", &display(&output), "--tokens", &display(&tokens)];
    // The sizes of a successful run: every PNG must be smaller than the token file.
    generate(&flags).assert_success();
    let images: Vec<PathBuf> = (0..16).map(|i| scratch.join(&format!("out-{i}.png"))).collect();
    let largest_png = images.iter().map(|p| std::fs::metadata(p).expect("PNG").len()).max().unwrap_or_default();
    let smallest_png = images.iter().map(|p| std::fs::metadata(p).expect("PNG").len()).min().unwrap_or_default();
    let tokens_size = std::fs::metadata(&tokens).expect("tokens").len();
    assert!(largest_png < tokens_size, "PNGs of {largest_png} bytes, tokens {tokens_size}");
    assert_eq!(read_tokens(&tokens).len(), 16);
    for path in images.iter().chain([&tokens]) {
        std::fs::remove_file(path).expect("remove");
    }
    // An older first image that a failed run must leave alone.
    std::fs::write(&images[0], "old").expect("write");

    // The images fit, the token file does not: the run fails after writing all images.
    let run = generate_with_size_limit(&flags, (largest_png + tokens_size) / 2);
    run.assert_error(1, &["cannot write", &display(&tokens)]);
    assert_eq!(names_in(&scratch.0), ["out-0.png"], "no image, no token file, no temporary file");
    assert_eq!(std::fs::read_to_string(&images[0]).expect("read"), "old");

    // Not even one image fits (a disk full from the start).
    let run = generate_with_size_limit(&flags, smallest_png / 2);
    run.assert_error(1, &["cannot write", "out-"]);
    assert_eq!(names_in(&scratch.0), ["out-0.png"]);
    assert_eq!(std::fs::read_to_string(&images[0]).expect("read"), "old");
}

#[test]
fn a_jpeg_too_small_for_the_batch_prompts_keeps_the_rest_and_says_so_once() {
    let scratch = Scratch::new("jpeg-exif");
    let output = scratch.join("long.jpg");
    // Two prompts of 36 KB: their list does not fit a JPEG's 64 KiB EXIF segment, one does.
    let (first, second) = ("a red circle ".repeat(2800), "a blue square ".repeat(2600));
    let model = tiny("hub").display().to_string();
    let run = vq_diffusion(&[
        "generate",
        "--model",
        &model,
        "--prompt",
        &first,
        "--prompt",
        &second,
        "--steps",
        "2",
        "--seed",
        "0",
        "--output",
        &display(&output),
    ]);
    run.assert_success();
    assert_eq!(run.stderr.matches("do not fit into a JPEG").count(), 1, "{}", run.stderr);
    for (i, prompt) in [first, second].iter().enumerate() {
        let path = scratch.join(&format!("long-{i}.jpg"));
        assert_eq!(image::open(&path).expect("a valid JPEG").to_rgb8().dimensions(), (16, 16));
        let parameters = exif_parameters(&path);
        assert_eq!(parameters["prompt"], prompt.as_str());
        assert_eq!(parameters["batch_index"], i.to_string());
        assert!(!parameters.contains_key("prompts"), "{:?}", parameters.keys());
    }
}
