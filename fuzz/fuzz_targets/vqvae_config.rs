//! Fuzz target `vqvae_config`: see [`vq_fuzz::vqvae_config`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vq_fuzz::vqvae_config(data));
