//! The MLP activations against their formulas evaluated in f64.

use burn::tensor::{Tensor, TensorData};
use clip_text::HiddenAct;

use crate::common::{device, B};

fn erf(x: f64) -> f64 {
    // Abramowitz–Stegun 7.1.26 is too coarse; integrate the series instead (|x| ≤ 4 here).
    let mut sum = 0.0;
    let mut term = x;
    let mut n = 0.0;
    while term.abs() > 1e-17 {
        sum += term / (2.0 * n + 1.0);
        n += 1.0;
        term *= -x * x / n;
    }
    sum * 2.0 / std::f64::consts::PI.sqrt()
}

#[test]
fn activations_match_their_formulas() {
    let xs: Vec<f64> = (-40..=40).map(|i| i as f64 / 10.0).collect();
    let input = Tensor::<B, 1>::from_data(
        TensorData::new(xs.iter().map(|&x| x as f32).collect::<Vec<_>>(), [xs.len()]),
        &device(),
    );
    let tanh_gelu =
        |x: f64| 0.5 * x * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x * x * x)).tanh());
    type Formula = fn(f64) -> f64;
    let cases: [(HiddenAct, Formula); 4] = [
        (HiddenAct::QuickGelu, |x| x / (1.0 + (-1.702 * x).exp())),
        (HiddenAct::Gelu, |x| 0.5 * x * (1.0 + erf(x / std::f64::consts::SQRT_2))),
        (HiddenAct::GeluNew, tanh_gelu),
        (HiddenAct::GeluPytorchTanh, tanh_gelu),
    ];
    for (act, formula) in cases {
        let output = act.forward(input.clone()).into_data().to_vec::<f32>().unwrap();
        let worst = xs.iter().zip(&output).map(|(&x, &y)| (y as f64 - formula(x)).abs()).fold(0.0, f64::max);
        assert!(worst <= 2e-6, "{act}: {worst}");
    }
}
