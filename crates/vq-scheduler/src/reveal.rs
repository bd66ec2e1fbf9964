//! Improved VQ-Diffusion's high-quality inference (Tang et al. 2022, *Improved Vector Quantized
//! Diffusion Models*, [arXiv:2205.16007](https://arxiv.org/abs/2205.16007), §3.2 "purity prior"),
//! which diffusers lacks. The original is `sample_type` `prior_rule` 1 and 2 of
//! microsoft/VQ-Diffusion (`image_synthesis/modeling/transformers/diffusion_transformer.py`,
//! `p_sample_with_prior`); `docs/reference.md` ("Improved VQ-Diffusion's samplers") describes it.
//!
//! Posterior sampling (diffusers, [`crate::VQDiffusionScheduler::step`]) draws every pixel anew
//! at every step, each independently of the others: pixels that fit together one by one can
//! still disagree as a whole (the paper's "joint distribution issue"). A reveal step instead
//! leaves revealed pixels alone and turns a few masked pixels into tokens per step:
//!
//! 1. the model's guided, truncated log p(x₀ | x_t) gives each pixel a candidate token by
//!    Gumbel-max — with the purity prior and a weight r > 0 from a sharpened distribution,
//!    softmax((1 + r·purity) · log p), so confident pixels commit more firmly;
//! 2. ⌈m / t⌉ of the m still masked pixels of each image are revealed with their candidates, so
//!    that the last masked pixel goes at t = 1 whatever the chain's length or the start tokens;
//!    they are chosen uniformly ([`RevealOrder::Uniform`], `prior_rule` 1) or with probability
//!    ∝ purity = max_k p(x₀ = k), relative to the image's purest pixel
//!    ([`RevealOrder::Purity`], `prior_rule` 2): what the model is sure of comes first.
//!
//! The t = 0 step stays the posterior step (as in the original). The original reveals a fixed
//! table of counts written for 1,024 pixels and 100 steps (10–11 per step); ⌈m / t⌉ is the same
//! even spread for any size. Choosing n pixels with probability ∝ purity without replacement
//! (torch's `multinomial`) is done here by the Gumbel-top-n trick, the same distribution from
//! one uniform per pixel. No reference draws these tokens (diffusers has no such sampler, the
//! original's multinomial consumes torch's generator in its own way), so this sampler is
//! checked by its properties (tests below), not against fixtures.

use burn::tensor::activation::log_softmax;
use burn::tensor::{backend::Backend, FloatDType, Int, Tensor, TensorData};

use crate::{gumbel_max_sample, gumbel_noise, UniformSource, LOG_PROB_FLOOR};

/// Which masked pixels a reveal step turns into tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RevealOrder {
    /// Uniformly among the masked pixels (`prior_rule` 1 of the original).
    Uniform,
    /// With probability ∝ purity, the model's top class probability (`prior_rule` 2).
    Purity {
        /// r ≥ 0: candidates are drawn from softmax((1 + r·purity) · log p(x₀)), sharper where
        /// the model is surer (the original's `prior_weight`; 0 draws from p(x₀) itself).
        weight: f32,
    },
}

impl RevealOrder {
    /// The weight r of the sharpening (0 for [`Self::Uniform`]).
    fn weight(self) -> f32 {
        match self {
            Self::Uniform => 0.0,
            Self::Purity { weight } => weight,
        }
    }
}

/// Number of masked pixels a reveal step at timestep t ≥ 1 reveals out of `masked`: ⌈m / t⌉, an
/// even spread over the reveal steps t, t − 1, …, 1 that remain.
///
/// # Panics
/// If `t = 0` (the last step samples every pixel from the model instead).
pub fn reveal_count(masked: usize, t: usize) -> usize {
    assert!(t >= 1, "reveal steps run at t ≥ 1; t = 0 is the posterior step");
    masked.div_ceil(t)
}

/// One reveal step at timestep `t ≥ 1`: reveals [`reveal_count`] masked pixels of each image
/// with candidate tokens drawn from `log_p_x_0`; every other pixel keeps its id. On a strided
/// chain (fast sampling) pass as `t` the number of reveal steps left, this one included: the
/// masked pixels are spread over the calls that remain. Draws two
/// uniform tensors from `noise`: `[batch, K, pixels]` for the candidates, then
/// `[batch, 1, pixels]` for the choice of pixels. The choice runs on the host: the ids,
/// candidates and keys (`3 × batch × pixels` values) are read back once per step.
///
/// # Shapes
/// - `log_p_x_0`: `[batch, K, pixels]` log-probabilities (after guidance, truncation, clamp)
/// - `sample`: `[batch, pixels]`, ids in `0..=K` (K is the mask)
/// - output: `[batch, pixels]`
///
/// # Panics
/// If `t = 0` or the shapes disagree.
pub fn reveal_step<B: Backend, N: UniformSource<B> + ?Sized>(
    log_p_x_0: Tensor<B, 3>,
    t: usize,
    sample: Tensor<B, 2, Int>,
    order: RevealOrder,
    noise: &mut N,
) -> Tensor<B, 2, Int> {
    let [batch, classes, pixels] = log_p_x_0.dims();
    assert_eq!(
        sample.dims(),
        [batch, pixels],
        "reveal_step: sample {:?} does not match log_p_x_0 {:?}",
        sample.dims(),
        log_p_x_0.dims()
    );
    assert!(t >= 1, "reveal steps run at t ≥ 1; t = 0 is the posterior step");
    let device = log_p_x_0.device();
    let log_p_x_0 = log_p_x_0.cast(FloatDType::F32);
    let purity = match order {
        RevealOrder::Uniform => Tensor::ones([batch, 1, pixels], &device),
        RevealOrder::Purity { .. } => purity(log_p_x_0.clone()),
    };
    let candidate_logits = sharpen(log_p_x_0, purity.clone(), order.weight());
    let candidates = gumbel_max_sample(candidate_logits, noise.uniform([batch, classes, pixels], &device));
    // Gumbel-top-n keys: the n largest of ln w + Gumbel are n draws ∝ w without replacement.
    let keys = purity.log() + gumbel_noise(noise.uniform([batch, 1, pixels], &device));

    let mut ids = read_ints(sample);
    let candidates = read_ints(candidates);
    let keys = keys.into_data().convert::<f32>().into_vec::<f32>().expect("f32 keys read back as f32");
    for ((row, candidates), keys) in ids.chunks_mut(pixels).zip(candidates.chunks(pixels)).zip(keys.chunks(pixels)) {
        let mut masked: Vec<usize> = (0..pixels).filter(|&i| row[i] == classes as i64).collect();
        let n = reveal_count(masked.len(), t);
        // Largest key first; equal keys (−inf for zero purity) by pixel index.
        masked.sort_by(|&a, &b| keys[b].total_cmp(&keys[a]).then(a.cmp(&b)));
        for &i in &masked[..n] {
            row[i] = candidates[i];
        }
    }
    Tensor::from_data(TensorData::new(ids, [batch, pixels]), &device)
}

/// Purity of each pixel: its top class probability divided by the image's highest (+1e−10, as
/// the original, so an image of zero probabilities gives zeros instead of NaN).
///
/// # Shapes
/// - `log_p_x_0`: `[batch, K, pixels]`
/// - output: `[batch, 1, pixels]`, in [0, 1]
fn purity<B: Backend>(log_p_x_0: Tensor<B, 3>) -> Tensor<B, 3> {
    let top = log_p_x_0.max_dim(1).exp().clamp(0.0, 1.0);
    let image_max = top.clone().max_dim(2);
    top / image_max.add_scalar(1e-10)
}

/// The candidates' distribution: log softmax over classes of (1 + r·purity) · log p, clamped
/// to the −70 floor; `log_p` itself when r = 0.
///
/// # Shapes
/// - `log_p_x_0`: `[batch, K, pixels]`
/// - `purity`: `[batch, 1, pixels]`
/// - output: `[batch, K, pixels]`
fn sharpen<B: Backend>(log_p_x_0: Tensor<B, 3>, purity: Tensor<B, 3>, weight: f32) -> Tensor<B, 3> {
    if weight == 0.0 {
        return log_p_x_0;
    }
    let temperature = purity.mul_scalar(weight).add_scalar(1.0);
    log_softmax(log_p_x_0 * temperature, 1).clamp(LOG_PROB_FLOOR, 0.0)
}

fn read_ints<B: Backend>(ids: Tensor<B, 2, Int>) -> Vec<i64> {
    ids.into_data().convert::<i64>().into_vec::<i64>().expect("ids read back as i64")
}

#[cfg(test)]
mod tests {
    use burn::backend::NdArray;
    use burn::tensor::activation::log_softmax;
    use burn::tensor::{Distribution, Int, Tensor, TensorData};

    use super::*;
    use crate::{clamp_log_probs, TorchGenerator};

    type B = NdArray<f32>;

    fn ints(t: Tensor<B, 2, Int>) -> Vec<i64> {
        read_ints(t)
    }

    /// Random normalised log-probabilities `[batch, K, pixels]`.
    fn random_log_p(batch: usize, k: usize, pixels: usize, seed: u64) -> Tensor<B, 3> {
        let device = Default::default();
        <B as Backend>::seed(&device, seed);
        let logits = Tensor::<B, 3>::random([batch, k, pixels], Distribution::Normal(0.0, 2.0), &device);
        clamp_log_probs(log_softmax(logits, 1))
    }

    #[test]
    fn reveal_counts_spread_every_masked_pixel_over_the_steps_left() {
        assert_eq!(reveal_count(1024, 99), 11);
        assert_eq!(reveal_count(1024, 1), 1024);
        assert_eq!(reveal_count(0, 5), 0);
        // A 100-step chain from 1,024 masked pixels: 10 or 11 per step, none left after t = 1.
        let mut masked = 1024;
        for t in (1..100).rev() {
            let n = reveal_count(masked, t);
            assert!((10..=11).contains(&n), "t = {t}: {n}");
            masked -= n;
        }
        assert_eq!(masked, 0);
    }

    #[test]
    fn a_chain_reveals_each_pixel_once_and_keeps_it() {
        let (batch, k, pixels) = (2, 6, 40);
        let device = Default::default();
        let mut generator = TorchGenerator::new(7);
        for order in [RevealOrder::Uniform, RevealOrder::Purity { weight: 1.0 }] {
            let mut sample = Tensor::<B, 2, Int>::full([batch, pixels], k as i64, &device);
            let mut before = ints(sample.clone());
            for t in (1..10).rev() {
                let log_p = random_log_p(batch, k, pixels, t as u64);
                sample = reveal_step(log_p, t, sample, order, &mut generator);
                let after = ints(sample.clone());
                for (row_before, row_after) in before.chunks(pixels).zip(after.chunks(pixels)) {
                    let masked = row_before.iter().filter(|&&id| id == k as i64).count();
                    let still = row_after.iter().filter(|&&id| id == k as i64).count();
                    assert_eq!(masked - still, reveal_count(masked, t), "{order:?}, t = {t}");
                    for (&b, &a) in row_before.iter().zip(row_after) {
                        assert!(b == k as i64 || a == b, "{order:?}, t = {t}: revealed id {b} became {a}");
                        assert!((0..=k as i64).contains(&a));
                    }
                }
                before = after;
            }
            assert!(before.iter().all(|&id| id < k as i64), "{order:?}: masked pixels left after t = 1");
        }
    }

    #[test]
    fn revealed_pixels_take_a_class_the_truncation_kept() {
        // Each pixel keeps one class (log p = 0), the rest sit on the −70 floor.
        let (k, pixels) = (5, 12);
        let device = Default::default();
        let kept: Vec<usize> = (0..pixels).map(|i| (3 * i + 1) % k).collect();
        let mut log_p = vec![LOG_PROB_FLOOR; k * pixels];
        for (i, &class) in kept.iter().enumerate() {
            log_p[class * pixels + i] = 0.0;
        }
        let log_p = Tensor::<B, 3>::from_data(TensorData::new(log_p, [1, k, pixels]), &device);
        let sample = Tensor::<B, 2, Int>::full([1, pixels], k as i64, &device);
        let sample = reveal_step(log_p, 1, sample, RevealOrder::Purity { weight: 2.0 }, &mut TorchGenerator::new(0));
        let expected: Vec<i64> = kept.iter().map(|&c| c as i64).collect();
        assert_eq!(ints(sample), expected);
    }

    #[test]
    fn purity_reveals_confident_pixels_first_and_uniform_does_not() {
        // Even pixels are sure of class 0 (p = 0.99), odd ones spread evenly over 16 classes.
        let (k, pixels) = (16, 400);
        let device = Default::default();
        let mut log_p = vec![0.0f32; k * pixels];
        for class in 0..k {
            for i in 0..pixels {
                let p = match (i % 2, class) {
                    (0, 0) => 0.99,
                    (0, _) => 0.01 / (k - 1) as f32,
                    _ => 1.0 / k as f32,
                };
                log_p[class * pixels + i] = p.ln();
            }
        }
        let log_p = Tensor::<B, 3>::from_data(TensorData::new(log_p, [1, k, pixels]), &device);
        let confident_share = |order| {
            let sample = Tensor::<B, 2, Int>::full([1, pixels], k as i64, &device);
            // t = 10: 40 of 400 pixels revealed.
            let ids = ints(reveal_step(log_p.clone(), 10, sample, order, &mut TorchGenerator::new(3)));
            let revealed: Vec<usize> = (0..pixels).filter(|&i| ids[i] != k as i64).collect();
            assert_eq!(revealed.len(), 40);
            revealed.iter().filter(|&&i| i % 2 == 0).count() as f64 / 40.0
        };
        // Weights 0.99 against 1/16 relative: ≈ 94 % of the first draws are confident pixels.
        let purity = confident_share(RevealOrder::Purity { weight: 0.0 });
        let uniform = confident_share(RevealOrder::Uniform);
        assert!(purity >= 0.85, "purity order revealed {purity} confident pixels");
        assert!((0.3..=0.7).contains(&uniform), "uniform order revealed {uniform} confident pixels");
    }

    #[test]
    fn sharpening_is_a_per_pixel_temperature() {
        let device = Default::default();
        let p = [0.5f32, 0.3, 0.2];
        let log_p = Tensor::<B, 3>::from_data(TensorData::new(p.map(f32::ln).to_vec(), [1, 3, 1]), &device);
        let purity = Tensor::<B, 3>::from_data(TensorData::new(vec![0.5f32], [1, 1, 1]), &device);
        let sharpened = sharpen(log_p, purity, 2.0).into_data().convert::<f32>().into_vec::<f32>().unwrap();
        // (1 + 2 · 0.5) = 2: p² normalised.
        let total: f32 = p.iter().map(|v| v * v).sum();
        for (got, v) in sharpened.iter().zip(p) {
            assert!((got - (v * v / total).ln()).abs() < 1e-5, "{got} vs {}", (v * v / total).ln());
        }
    }

    #[test]
    fn purity_is_relative_to_the_image_s_purest_pixel() {
        let device = Default::default();
        // Two classes, two pixels: top probabilities 0.8 and 0.6.
        let log_p = [0.8f32, 0.6, 0.2, 0.4].map(f32::ln).to_vec();
        let log_p = Tensor::<B, 3>::from_data(TensorData::new(log_p, [1, 2, 2]), &device);
        let got = purity(log_p).into_data().convert::<f32>().into_vec::<f32>().unwrap();
        assert!((got[0] - 1.0).abs() < 1e-6 && (got[1] - 0.75).abs() < 1e-6, "{got:?}");
    }
}
