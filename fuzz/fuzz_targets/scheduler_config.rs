//! `VQDiffusionSchedulerConfig::from_json_str`: a validated config builds its scheduler or
//! fails with a typed error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vq_scheduler::VQDiffusionSchedulerConfig;

fuzz_target!(|data: &[u8]| {
    let Ok(json) = std::str::from_utf8(data) else { return };
    let Ok(config) = VQDiffusionSchedulerConfig::from_json_str(json) else { return };
    if config.num_vec_classes <= 1 << 16 {
        let _ = config.init::<vq_fuzz::B>(&Default::default());
    }
});
