//! The `vq-train` command line: train the two stages of a VQ-Diffusion model of the procedural
//! shapes dataset ([`vq_train`]), export the result in the diffusers hub layout, and score it.
//!
//! The binary is `vq-train` (`src/main.rs`); this library holds its flags ([`args`]), the backend
//! dispatch ([`backend`]) and the commands, so that the project's `xtask` can offer the same
//! commands under its own names. The shared training flags map onto
//! [`vq_train::train::RunConfig`] in one place ([`args::RunArgs::run_config`]).
//!
//! Exit status: 0 on success, 2 on usage errors, 1 on any other error, always with a one-line
//! `error: …` on stderr — also when any thread panics (the binary sets up
//! `vq_kernels::setup::exit_on_panic`). Progress lines go to stderr; the written folder's path
//! (and `eval`'s tables) to stdout.

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

/// A message line on stderr (a closed stderr is not worth a panic).
pub(crate) fn report(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// A written folder's path on stdout, for scripts.
pub(crate) fn print_path(path: &Path) {
    let _ = writeln!(std::io::stdout(), "{}", path.display());
}
