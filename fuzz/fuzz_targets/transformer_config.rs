//! Fuzz target `transformer_config`: see [`vq_fuzz::transformer_config`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vq_fuzz::transformer_config(data));
