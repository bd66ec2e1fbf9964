//! Project automation: `cargo run -p xtask -- <command>`.
//!
//! * `fixtures` — rebuild the committed reference fixtures with the Python reference
//!   (diffusers 0.42.1; see the README's development section for the venv).
//! * `convert` — turn a pipeline's PyTorch `.bin` checkpoints into safetensors (optionally f16).
//! * `parity` — a table of errors of every component against the reference fixtures.
//! * `bench` — time the full-size model on a backend (see `BENCHMARKS.md`).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bench;
mod convert;
mod fixtures;
mod parity;

#[derive(Parser)]
#[command(about = "vq-diffusion-rs project automation")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Regenerate `fixtures/` with the Python reference (torch + diffusers 0.42.1).
    Fixtures(fixtures::Args),
    /// Convert every `.bin` weights file of a pipeline folder to safetensors.
    Convert(convert::Args),
    /// Compare every component and the pipeline with the reference fixtures (a table of errors).
    Parity(parity::Args),
    /// Time the ITHQ-size model on a backend (random weights).
    Bench(bench::Args),
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Fixtures(args) => fixtures::run(args),
        Command::Convert(args) => convert::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Parity(args) => parity::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}
