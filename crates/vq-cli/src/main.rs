//! `vq-diffusion`: the command line of VQ-Diffusion text-to-image on burn
//! (Gu et al., *Vector Quantized Diffusion Model for Text-to-Image Synthesis*,
//! [arXiv:2111.14822](https://arxiv.org/abs/2111.14822)), on top of `vq-pipeline`.
//!
//! Exit status: 0 on success, 2 on usage errors, 1 on any other error, always with a
//! one-line `error: …` on stderr — also when something panics (see [`main`]).

mod args;
mod backend;
mod codec;
mod edit;
#[cfg(shipped_model)]
mod embedded;
mod error;
mod exif;
mod format;
mod generate;
mod info;
mod model;
mod output;
mod serve;
mod staging;
mod words;

use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::process::ExitCode;

use clap::Parser;
use vq_kernels::setup::PanicExit;

use crate::args::{Cli, Command};
use crate::error::CliError;

/// Parses the command line (clap prints its own errors and exits with 2, help with 0), runs
/// it, and turns every failure into one `error: …` line and an exit status. A panic (a bug:
/// every expected failure is an error value) is caught as a last resort and reported the same
/// way, without the default panic message and backtrace; one on a library's thread (a backend's
/// polling thread, which the computation waits for) ends the process with that line at once.
fn main() -> ExitCode {
    vq_kernels::setup::keep_freed_memory();
    let cli = Cli::parse();
    std::panic::set_hook(Box::new(|_| {}));
    vq_kernels::setup::exit_on_panic(PanicExit::LibraryThreads);
    match guarded(|| execute(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            report(&format!("error: {}", error.one_line()));
            ExitCode::from(error.exit_code())
        }
    }
}

/// Runs `f`, turning a panic into a [`CliError::Failure`] with the panic's message.
fn guarded(f: impl FnOnce() -> Result<(), CliError>) -> Result<(), CliError> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        let message = vq_kernels::setup::panic_message(payload.as_ref());
        Err(CliError::Failure(format!("internal error (a bug, please report it): {message}")))
    })
}

fn execute(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Generate(args) => {
            args.check()?;
            backend::dispatch(&args)
        }
        Command::Serve(args) => {
            args.config()?;
            backend::dispatch(&args)
        }
        Command::Encode(args) => backend::dispatch(&args),
        Command::Decode(args) => backend::dispatch(&args),
        Command::Info(args) => info::run(&args),
    }
}

/// A message line on stderr (a closed stderr is not worth a panic).
pub(crate) fn report(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// A written file's path on stdout, one per line, for scripts.
pub(crate) fn print_path(path: &Path) {
    let _ = writeln!(std::io::stdout(), "{}", path.display());
}

/// A line on stdout, for scripts (e.g. the address a server listens on).
pub(crate) fn print_line(line: &str) {
    let _ = writeln!(std::io::stdout(), "{line}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_a_one_line_failure() {
        let error = guarded(|| panic!("index {} out of\nbounds", 7)).unwrap_err();
        assert_eq!(error.exit_code(), 1);
        assert_eq!(error.one_line(), "internal error (a bug, please report it): index 7 out of bounds");
        let error = guarded(|| std::panic::panic_any(42u8)).unwrap_err();
        assert_eq!(error.one_line(), "internal error (a bug, please report it): unknown panic");
    }

    #[test]
    fn errors_pass_through_unchanged() {
        assert!(guarded(|| Ok(())).is_ok());
        let error = guarded(|| Err(CliError::Usage("--steps must be at least 1, got 0".into()))).unwrap_err();
        assert_eq!((error.exit_code(), error.one_line()), (2, "--steps must be at least 1, got 0".to_string()));
    }
}
