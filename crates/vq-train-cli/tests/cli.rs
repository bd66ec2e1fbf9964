//! The `vq-train` binary: its help, its exit statuses with one `error: …` line, and tiny CPU runs
//! of both stages, the export and the evaluation through it (a few steps at toy sizes).

use std::path::{Path, PathBuf};
use std::process::Command;

/// What a run of the binary gave.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `vq-train` with `args`.
fn vq_train<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_vq-train")).args(args).output().expect("the binary runs");
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

impl Run {
    fn assert_success(&self) {
        assert_eq!(self.code, Some(0), "stderr:\n{}", self.stderr);
    }

    /// Asserts exit status `code` and exactly one stderr line, `error: …` containing `words`.
    fn assert_one_line_error(&self, code: i32, words: &[&str]) {
        assert_eq!(self.code, Some(code), "stderr:\n{}", self.stderr);
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "one line expected:\n{}", self.stderr);
        assert!(lines[0].starts_with("error: "), "{}", lines[0]);
        for word in words {
            assert!(lines[0].contains(word), "{word:?} missing from {}", lines[0]);
        }
    }
}

/// An empty folder under the system temp dir, unique to this test and process.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vq-train-cli-{name}-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    std::fs::create_dir_all(&dir).expect("create the temp dir");
    dir
}

/// The CLIP tokenizer of the repository's tiny fixture (stage 2 trims it).
fn clip_tokenizer() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/tiny/hub/tokenizer")
}

fn path(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 temp path")
}

#[test]
fn help_lists_the_commands_and_each_stages_defaults() {
    let run = vq_train(&["--help"]);
    run.assert_success();
    for word in ["vqvae", "transformer", "export", "eval", "Examples", "Exit status"] {
        assert!(run.stdout.contains(word), "{word:?} missing from:\n{}", run.stdout);
    }
    let run = vq_train(&["vqvae", "--help"]);
    run.assert_success();
    for flag in ["--out", "--steps", "--batch-size", "--lr", "--max-minutes", "--devices", "--init-from", "--codes"] {
        assert!(run.stdout.contains(&format!("{flag} <")), "{flag} missing from:\n{}", run.stdout);
    }
    for flag in ["--fresh", "--keep-schedule", "--decoder-only", "--keep-codes"] {
        assert!(run.stdout.contains(&format!("{flag}\n")), "{flag} missing from:\n{}", run.stdout);
    }
    // Help wraps at the terminal's width: the defaults are looked for with the line breaks folded.
    let folded = run.stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    for default in ["[default: 64 for vqvae, 128 for transformer]", "[default: 3000 for vqvae, 4000 for transformer]"] {
        assert!(folded.contains(default), "{default:?} missing from:\n{}", run.stdout);
    }
    let run = vq_train(&["transformer", "--help"]);
    run.assert_success();
    for flag in ["--vqvae", "--clip-tokenizer", "--half-checkpoints", "--keep-schedule"] {
        assert!(run.stdout.contains(flag), "{flag} missing from:\n{}", run.stdout);
    }
}

#[test]
fn usage_errors_exit_with_2() {
    // Flags clap refuses: clap's own message, status 2.
    for args in [&["vqvae", "--out", "x", "--batch-size", "0"][..], &["vqvae"], &["train"]] {
        let run = vq_train(args);
        assert_eq!(run.code, Some(2), "{args:?}: {}", run.stderr);
        assert!(run.stderr.starts_with("error: "), "{}", run.stderr);
    }
    // Flags that contradict each other: one line.
    let run = vq_train(&["eval", "--backend", "ndarray", "--vqvae", "nowhere", "--count", "3"]);
    run.assert_one_line_error(2, &["--vqvae scores the reconstructions of one prompt set"]);
    // A backend this build lacks: one line naming the feature.
    let all = ["ndarray", "flex", "wgpu", "wgpu-gl", "cuda", "cuda-unfused"];
    if let Some(missing) = all.into_iter().find(|b| !vq_train_cli::backend::compiled_in().contains(b)) {
        let run = vq_train(&["vqvae", "--out", "x", "--backend", missing]);
        run.assert_one_line_error(2, &[&format!("--backend {missing} is not compiled into this build")]);
    }
}

#[test]
fn a_failure_exits_with_1_and_one_line() {
    let dir = temp_dir("failure");
    let run = vq_train(&[
        "transformer",
        "--backend",
        "ndarray",
        "--out",
        path(&dir.join("run")),
        "--vqvae",
        path(&dir.join("no-vqvae")),
        "--clip-tokenizer",
        path(&clip_tokenizer()),
    ]);
    run.assert_one_line_error(1, &["no-vqvae"]);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn both_stages_export_and_eval_run_through_the_binary() {
    let dir = temp_dir("stages");
    let vq = dir.join("vq");
    let run = vq_train(&[
        "vqvae",
        "--backend",
        "ndarray",
        "--out",
        path(&vq),
        "--steps",
        "2",
        "--batch-size",
        "2",
        "--channels",
        "8,16",
        "--codes",
        "16",
        "--groups",
        "4",
        "--image-size",
        "24",
        "--warmup",
        "1",
        "--log-every",
        "1",
        "--workers",
        "1",
    ]);
    run.assert_success();
    assert_eq!(run.stdout.trim(), path(&vq.join("vqvae")), "the result's path on stdout");
    assert!(run.stderr.contains("step 2/2 | loss "), "progress on stderr:\n{}", run.stderr);
    assert!(run.stderr.contains("VQ-VAE: 2 steps"), "{}", run.stderr);
    for file in ["vqvae/config.json", "vqvae/diffusion_pytorch_model.safetensors", "checkpoint/state.json", "loss.png"]
    {
        assert!(vq.join(file).is_file(), "{file} missing");
    }
    let curve = std::fs::read_to_string(vq.join("loss.csv")).expect("loss.csv");
    assert_eq!(curve.lines().next(), Some("step,loss,l1,l2,commitment,restarted,lr,seconds"));
    assert_eq!(curve.lines().count(), 3);

    let tr = dir.join("tr");
    let run = vq_train(&[
        "transformer",
        "--backend",
        "ndarray",
        "--out",
        path(&tr),
        "--vqvae",
        path(&vq.join("vqvae")),
        "--clip-tokenizer",
        path(&clip_tokenizer()),
        "--steps",
        "2",
        "--batch-size",
        "2",
        "--layers",
        "1",
        "--heads",
        "2",
        "--head-dim",
        "8",
        "--text-width",
        "16",
        "--text-layers",
        "1",
        "--warmup",
        "1",
        "--log-every",
        "1",
        "--workers",
        "1",
    ]);
    run.assert_success();
    assert_eq!(run.stdout.trim(), path(&tr.join("pipeline")));
    assert!(run.stderr.contains("step 2/2 | loss ") && run.stderr.contains("transformer: "), "{}", run.stderr);
    let curve = std::fs::read_to_string(tr.join("loss.csv")).expect("loss.csv");
    assert_eq!(curve.lines().next(), Some("step,loss,vb,aux,mean_t,lr,seconds"));
    for file in ["model_index.json", "transformer/config.json", "vqvae/config.json", "tokenizer/vocab.json"] {
        assert!(tr.join("pipeline").join(file).is_file(), "pipeline/{file} missing");
    }

    // The same run again resumes its finished checkpoint and says so.
    let (vqvae_dir, tokenizer) = (vq.join("vqvae"), clip_tokenizer());
    let again = [
        "transformer",
        "--backend",
        "ndarray",
        "--out",
        path(&tr),
        "--vqvae",
        path(&vqvae_dir),
        "--clip-tokenizer",
        path(&tokenizer),
        "--steps",
        "2",
        "--batch-size",
        "2",
        "--layers",
        "1",
        "--heads",
        "2",
        "--head-dim",
        "8",
        "--text-width",
        "16",
        "--text-layers",
        "1",
    ];
    let run = vq_train(&again);
    run.assert_success();
    assert!(run.stderr.contains("resuming at step 2 of 2"), "{}", run.stderr);

    let exported = dir.join("exported");
    let run = vq_train(&[
        "export",
        "--backend",
        "ndarray",
        "--run",
        path(&tr),
        "--vqvae",
        path(&vq.join("vqvae")),
        "--out",
        path(&exported),
    ]);
    run.assert_success();
    assert_eq!(run.stdout.trim(), path(&exported));
    assert!(exported.join("model_index.json").is_file());

    let run = vq_train(&[
        "eval",
        "--backend",
        "ndarray",
        "--model",
        path(&exported),
        "--count",
        "2",
        "--batch-size",
        "2",
        "--reconstructions",
        "2",
    ]);
    run.assert_success();
    for word in ["attribute", "colour", "shape", "VQ reconstruction"] {
        assert!(run.stdout.contains(word), "{word:?} missing from:\n{}", run.stdout);
    }
    std::fs::remove_dir_all(&dir).ok();
}
