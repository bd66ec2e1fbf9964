//! VQ-Diffusion text-to-image pipeline (in progress).

pub mod hub;
