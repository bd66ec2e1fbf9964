//! The `vq-diffusion` binary on the committed tiny fixture pipelines (16×16 images, ≤ 10
//! steps): diffusers' tokens and pixels through the command line, image metadata, output files
//! (formats, atomic writes, refusals), and one `error: …` line with the right exit status for
//! every bad input.

mod common;
mod default_model;
mod errors;
mod help;
mod info;
mod metadata;
#[cfg(unix)]
mod outputs;
mod parity;
