//! Fuzz target `load_module`: see [`vq_fuzz::load`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vq_fuzz::load(data));
