//! Fuzz target `pytorch`: see [`vq_fuzz::pytorch`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vq_fuzz::pytorch(data));
