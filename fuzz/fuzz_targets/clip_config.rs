//! Fuzz target `clip_config`: see [`vq_fuzz::clip_config`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vq_fuzz::clip_config(data));
