//! Fuzz target `tokenizer`: see [`vq_fuzz::tokenizer`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vq_fuzz::tokenizer(data));
