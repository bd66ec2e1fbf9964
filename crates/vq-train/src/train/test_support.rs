//! Helpers of the training tests.

use std::path::{Path, PathBuf};

/// An empty folder under the system temp dir, unique to this test process.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vq-train-{name}-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    std::fs::create_dir_all(&dir).expect("create the temp dir");
    dir
}

/// (step, lr) of every row of a run's `loss.csv`.
pub fn learning_rates(run_dir: &Path) -> Vec<(usize, f64)> {
    let text = std::fs::read_to_string(run_dir.join("loss.csv")).expect("loss.csv");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("a header").split(',').collect();
    let lr = header.iter().position(|&c| c == "lr").expect("an lr column");
    lines
        .map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            (fields[0].parse().expect("step"), fields[lr].parse().expect("lr"))
        })
        .collect()
}

/// Asserts that the learning rates of a run resumed without optimizer state at step `from` are
/// the cosine schedule of `total` steps (peak 1e−3, floor 2e−5, `warmup` warm-up steps) warmed
/// up again over `warmup` steps from `from`.
pub fn assert_rewarmed(rates: &[(usize, f64)], from: usize, total: usize, warmup: usize) {
    for &(step, lr) in rates.iter().filter(|(step, _)| *step >= from) {
        let expected = crate::train::schedule::learning_rate(step, total, warmup, 1e-3, 2e-5)
            * (step - from + 1) as f64
            / warmup as f64;
        assert!((lr - expected).abs() <= 1e-5 * expected, "step {step}: lr {lr}, expected {expected}");
    }
}
