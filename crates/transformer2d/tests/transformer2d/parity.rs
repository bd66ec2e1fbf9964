//! Parity with diffusers 0.42.1 on the tiny pipeline (`fixtures/reference/tiny.safetensors`,
//! made from `fixtures/tiny/hub`; raw and bin hold the same weights).
//!
//! Inputs: `transformer.in.latents` (row 0 ≈ 70 % masked, row 1 ≈ 20 %) and
//! `encode.prompt_embeds` ([uncond, text]). Tolerance 1e-5 absolute on log-probabilities
//! (f32, NdArray), per row so both mask ratios are reported; the hidden-state taps localise
//! a failure.

use burn::tensor::{Int, Tensor};
use transformer2d::{Timesteps, Transformer2DModel};

use crate::common::{device, max_abs_diff, reference, row_max_abs_diff, sci, tiny_transformer, B};

const TOLERANCE: f32 = 1e-5;

fn load(layout: &str) -> Transformer2DModel<B> {
    Transformer2DModel::from_pretrained(&tiny_transformer(layout), None, &device()).unwrap_or_else(|e| panic!("{e}"))
}

fn inputs() -> (Tensor<B, 2, Int>, Tensor<B, 3>) {
    let latents = Tensor::from_data(reference("transformer.in.latents"), &device());
    let text = Tensor::from_data(reference("encode.prompt_embeds"), &device());
    (latents, text)
}

/// Compares the log-probabilities and taps at every reference timestep.
fn check_layout(layout: &str) {
    let model = load(layout);
    let (latents, text) = inputs();
    for t in [0, 37, 99] {
        let (log_p, taps) = model.forward_with_taps(latents.clone(), text.clone(), &Timesteps::Shared(t));
        let tapped =
            [("embed", taps.embed), ("block0", taps.block0), ("block1", taps.block_last), ("norm_out", taps.norm_out)];
        for (name, hidden) in tapped {
            let err = max_abs_diff(&hidden.into_data(), &reference(&format!("transformer.t{t}.hidden.{name}")));
            eprintln!("{layout} t={t} {name}: max abs err {err:.3e}");
            assert!(err <= TOLERANCE, "{layout} t={t}: hidden state `{name}` off by {err:e}");
        }
        let errs = row_max_abs_diff(&log_p.into_data(), &reference(&format!("transformer.t{t}.log_p_x_0")));
        eprintln!("{layout} t={t} log_p_x_0: max abs err {} (rows: 70 %, 20 % masked)", sci(&errs));
        assert!(errs.iter().all(|&e| e <= TOLERANCE), "{layout} t={t}: log-probs off by {errs:?}");
    }
}

#[test]
fn hub_layout_matches_diffusers() {
    check_layout("hub");
}

#[test]
fn raw_layout_matches_diffusers() {
    check_layout("raw");
}

#[test]
fn bin_layout_matches_diffusers() {
    check_layout("bin");
}

/// Per-sample timesteps (which diffusers cannot run batched, diffusers#7460): the reference
/// runs each row alone with its own timestep.
#[test]
fn per_sample_timesteps_match_diffusers() {
    let model = load("hub");
    let (latents, text) = inputs();
    let timesteps: Vec<usize> =
        reference("transformer.mixed.timesteps").to_vec::<i64>().unwrap().into_iter().map(|t| t as usize).collect();
    assert_ne!(timesteps[0], timesteps[1], "the fixture should mix timesteps");
    let log_p = model.forward(latents, text, &Timesteps::PerSample(timesteps.clone()));
    let errs = row_max_abs_diff(&log_p.into_data(), &reference("transformer.mixed.log_p_x_0"));
    eprintln!("mixed timesteps {timesteps:?}: max abs err {}", sci(&errs));
    assert!(errs.iter().all(|&e| e <= TOLERANCE), "per-sample log-probs off by {errs:?}");
}
