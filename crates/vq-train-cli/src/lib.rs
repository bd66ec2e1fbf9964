//! The `vq-train` command line: train the two stages of a VQ-Diffusion model of the procedural
//! shapes dataset ([`vq_train`]), export the result in the diffusers hub layout, and score it.
//!
//! The binary is `vq-train` (`src/main.rs`); this library holds its flags ([`args`]), the backend
//! dispatch ([`backend`]) and the commands, so that the project's `xtask` can offer the same
//! commands under its own names. The shared training flags map onto
//! [`vq_train::train::RunConfig`] in one place ([`args::RunArgs::run_config`]).
//!
//! Exit status: 0 on success, 2 on usage errors, 1 on any other error, always with a one-line
//! `error: …` on stderr — also when any thread panics ([`exit_on_panic`]). Progress lines go to
//! stderr; the written folder's path (and `eval`'s tables) to stdout.

pub mod args;
pub mod backend;
pub mod error;
mod eval;
mod export;
mod train;

use std::io::Write;
use std::path::Path;

pub use args::{Cli, Command, ExportArgs, TransformerArgs, VqVaeArgs};
pub use error::CliError;
pub use eval::{eval, EvalArgs};
pub use export::export;
pub use train::{transformer, vqvae};

/// Runs one command.
pub fn run(command: &Command) -> Result<(), CliError> {
    match command {
        Command::Vqvae(args) => vqvae(args),
        Command::Transformer(args) => transformer(args),
        Command::Export(args) => export(args),
        Command::Eval(args) => eval(args),
    }
}

/// Ends the process at the first panic of any thread with one line `error: internal error …` on
/// stderr and exit status 1. A training run has threads that wait on each other (replicas, batch
/// workers, CubeCL's device servers): without this, a thread that panicked could leave the others
/// waiting for it, and the run would hang until killed.
pub fn exit_on_panic() {
    std::panic::set_hook(Box::new(|info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        let place = info.location().map(|l| format!(" (at {}:{})", l.file(), l.line())).unwrap_or_default();
        report(&format!("error: internal error (a bug, please report it): {}{place}", error::one_line(&message)));
        std::process::exit(error::EXIT_FAILURE.into());
    }));
}

/// A message line on stderr (a closed stderr is not worth a panic).
pub(crate) fn report(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// A written folder's path on stdout, for scripts.
pub(crate) fn print_path(path: &Path) {
    let _ = writeln!(std::io::stdout(), "{}", path.display());
}
