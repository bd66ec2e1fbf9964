//! `xtask fixtures`: runs `xtask/python/make_fixtures.py`.

use std::path::PathBuf;
use std::process::Command;

/// Arguments of `xtask fixtures`.
#[derive(clap::Args)]
pub struct Args {
    /// Python interpreter of a venv with `xtask/python/requirements.txt` installed.
    #[arg(long, env = "VQ_REFERENCE_PYTHON", default_value = "python3")]
    python: PathBuf,
    /// Output folder.
    #[arg(long, default_value = "fixtures")]
    out: PathBuf,
    /// Further arguments for the script (after `--`).
    #[arg(last = true)]
    extra: Vec<String>,
}

pub fn run(args: Args) -> Result<(), String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let script = root.join("xtask/python/make_fixtures.py");
    let status = Command::new(&args.python)
        .arg(&script)
        .arg("--out")
        .arg(&args.out)
        .args(&args.extra)
        .current_dir(&root)
        .status()
        .map_err(|e| format!("cannot run {}: {e}", args.python.display()))?;
    status.success().then_some(()).ok_or_else(|| format!("{} exited with {status}", script.display()))
}
