//! The `vq-diffusion` binary on the committed tiny fixture pipelines (16×16 images, ≤ 10
//! steps): diffusers' tokens and pixels through the command line, image metadata, output files
//! (formats, atomic writes, refusals), one `error: …` line with the right exit status for every
//! bad input, and `vq-diffusion serve` (over HTTP, and its web page in headless Chromium).

mod browser;
mod common;
mod default_model;
mod edit;
mod errors;
mod help;
mod info;
mod metadata;
#[cfg(unix)]
mod outputs;
mod parity;
mod serve;
