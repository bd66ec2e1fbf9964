//! Tests of the `transformer2d` crate, one binary: parity with diffusers 0.42.1 on the tiny
//! reference pipeline, config parsing, weight loading and the numerics of single pieces.

mod activations;
mod common;
mod config;
mod engine;
mod loading;
mod numerics;
mod parity;
