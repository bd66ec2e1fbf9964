//! Fuzz target `picture`: see [`vq_fuzz::picture`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vq_fuzz::picture(data));
