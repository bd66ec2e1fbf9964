//! Fuzz target `safetensors`: see [`vq_fuzz::safetensors`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vq_fuzz::safetensors(data));
