//! `vq-train`: train, export and score VQ-Diffusion models of the procedural shapes dataset
//! (see the crate README and `vq-train --help`).

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use vq_kernels::setup::{exit_on_panic, PanicExit};
use vq_train_cli::{run, Cli};

/// Parses the command line (clap prints its own errors and exits with 2, help with 0), runs the
/// command, and turns a failure into one `error: …` line and its exit status. A panic on any
/// thread ends the process with such a line: training's threads wait on each other (replicas,
/// batch workers, CubeCL's device servers), and one left waiting would hang the run.
fn main() -> ExitCode {
    vq_kernels::setup::keep_freed_memory();
    let cli = Cli::parse();
    exit_on_panic(PanicExit::AnyThread);
    match run(&cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let _ = writeln!(std::io::stderr(), "error: {}", error.one_line());
            ExitCode::from(error.exit_code())
        }
    }
}
