//! Integration tests of `vq-scheduler` on the NdArray backend (one test binary).

mod common;
mod config;
mod forward;
mod guidance;
mod mt19937;
mod parity;
mod posterior;
mod sampling;
mod skip;
mod tables;
