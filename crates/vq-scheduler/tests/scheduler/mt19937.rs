//! The MT19937 stream against torch's CPU generator.

use proptest::prelude::*;
use vq_scheduler::{Mt19937, TorchGenerator, UniformSource};

use crate::common::{device, to_f32, B};

#[test]
fn raw_outputs_of_seed_0_match_torch() {
    // `docs/reference.md` ("Noise"): the first raw MT19937 outputs behind torch.rand for seed 0.
    let mut engine = Mt19937::new(0);
    let raw: Vec<u32> = (0..6).map(|_| engine.next_u32()).collect();
    assert_eq!(raw, [2357136044, 2546248239, 3071714933, 3626093760, 2588848963, 3684848379]);
}

// The literals are torch's printed values (8 digits), which round to the exact f32 uniforms.
#[allow(clippy::excessive_precision)]
#[test]
fn uniforms_match_torch_rand() {
    let seed0 = TorchGenerator::new(0).uniform_vec(6);
    let expected0: [f32; 6] = [0.49625659, 0.76822180, 0.08847743, 0.13203049, 0.30742282, 0.63407868];
    assert_eq!(seed0, expected0);
    let seed42 = TorchGenerator::new(42).uniform_vec(3);
    assert_eq!(seed42, [0.88226926f32, 0.91500396, 0.38286376]);
}

#[test]
fn seed_is_taken_mod_2_pow_32() {
    let wide = TorchGenerator::new((1u64 << 32) + 5).uniform_vec(700);
    assert_eq!(wide, TorchGenerator::new(5).uniform_vec(700));
}

#[test]
fn uniform_source_fills_the_shape_row_major_from_the_stream() {
    let mut source = TorchGenerator::new(7);
    let first = UniformSource::<B>::uniform(&mut source, [2, 3, 5], &device());
    let second = UniformSource::<B>::uniform(&mut source, [1, 2, 4], &device());
    let stream = TorchGenerator::new(7).uniform_vec(30 + 8);
    assert_eq!(first.dims(), [2, 3, 5]);
    assert_eq!(to_f32(first), stream[..30]);
    assert_eq!(to_f32(second), stream[30..]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Drawing n then m values equals drawing n + m at once (the stream continues across draws,
    /// including across the 624-word twist boundaries).
    #[test]
    fn stream_continues_across_draws(seed in any::<u64>(), n in 0usize..1500, m in 0usize..1500) {
        let mut split = TorchGenerator::new(seed);
        let mut first = split.uniform_vec(n);
        first.extend(split.uniform_vec(m));
        prop_assert_eq!(first, TorchGenerator::new(seed).uniform_vec(n + m));
    }

    /// Every uniform is a multiple of 2⁻²⁴ in [0, 1), built from the raw output's low 24 bits.
    #[test]
    fn uniforms_are_low_24_bits_of_raw_outputs(seed in any::<u32>(), n in 1usize..1300) {
        let mut engine = Mt19937::new(seed);
        let uniforms = TorchGenerator::new(u64::from(seed)).uniform_vec(n);
        for u in uniforms {
            let raw = engine.next_u32();
            prop_assert_eq!(u, (raw & 0xff_ffff) as f32 / 16_777_216.0);
            prop_assert!((0.0..1.0).contains(&u));
        }
    }
}
