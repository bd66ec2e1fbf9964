//! Fuzz target `scheduler_config`: see [`vq_fuzz::scheduler_config`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vq_fuzz::scheduler_config(data));
