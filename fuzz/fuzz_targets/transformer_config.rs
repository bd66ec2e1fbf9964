//! `Transformer2DConfig::from_diffusers_json`: a validated config has a countable size, and a
//! small one builds a model.
#![no_main]

use burn::module::Module;
use libfuzzer_sys::fuzz_target;
use transformer2d::Transformer2DConfig;

fuzz_target!(|data: &[u8]| {
    let Ok(json) = std::str::from_utf8(data) else { return };
    let Ok(config) = Transformer2DConfig::from_diffusers_json(json) else { return };
    let count = config.num_parameters().expect("a validated config's size is countable");
    if count <= vq_fuzz::MAX_BUILT_PARAMETERS {
        let model = config.init::<vq_fuzz::B>(&Default::default());
        assert_eq!(model.num_params() as u64, count);
    }
});
