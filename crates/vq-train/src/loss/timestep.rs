//! Importance sampling of training timesteps (the original's `sample_time` with
//! `method = "importance"`): uniform until every t has been seen more than 10 times, then
//! p_t ∝ √(L_t) + 1e−4 with L_t a running mean of the squared per-sample loss at t.

use crate::rng::SplitMix64;

/// Timesteps drawn for a batch, with the probabilities they were drawn with.
#[derive(Debug, Clone, PartialEq)]
pub struct TimestepBatch {
    /// One timestep per sample, in 0..T.
    pub t: Vec<usize>,
    /// p_t of each sample's timestep (the loss divides by it).
    pub p_t: Vec<f64>,
    /// T, the number of training timesteps.
    pub num_timesteps: usize,
}

impl TimestepBatch {
    /// Every sample at the same timestep, weighted as if drawn uniformly (p_t = 1/T).
    ///
    /// # Panics
    /// If `t ≥ num_timesteps`.
    pub fn constant(t: usize, batch: usize, num_timesteps: usize) -> Self {
        assert!(t < num_timesteps, "timestep {t} out of range 0..{num_timesteps}");
        Self { t: vec![t; batch], p_t: vec![1.0 / num_timesteps as f64; batch], num_timesteps }
    }
}

/// Draws timesteps and remembers per-timestep loss statistics (serializable, so a resumed
/// training run keeps them).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TimestepSampler {
    /// L_t: running mean of the squared per-sample loss at each t.
    loss_history: Vec<f64>,
    /// How many losses each t has reported.
    counts: Vec<u64>,
}

/// Each t must report more than this many losses before importance sampling starts.
pub const WARMUP_COUNT: u64 = 10;

impl TimestepSampler {
    /// A sampler over `num_timesteps` timesteps with empty statistics.
    ///
    /// # Panics
    /// If `num_timesteps < 2` (the t = 0 weight is copied from t = 1).
    pub fn new(num_timesteps: usize) -> Self {
        assert!(num_timesteps >= 2, "the timestep sampler needs at least two timesteps");
        Self { loss_history: vec![0.0; num_timesteps], counts: vec![0; num_timesteps] }
    }

    /// Whether importance sampling is active (every t has reported > [`WARMUP_COUNT`] losses).
    pub fn is_warm(&self) -> bool {
        self.counts.iter().all(|&count| count > WARMUP_COUNT)
    }

    /// The distribution timesteps are drawn from: uniform before warm-up; afterwards
    /// ∝ √(L_t + 1e−10) + 1e−4, with t = 0 given t = 1's weight (the decoder term has a
    /// different scale from the KL terms).
    pub fn probabilities(&self) -> Vec<f64> {
        let steps = self.loss_history.len();
        if !self.is_warm() {
            return vec![1.0 / steps as f64; steps];
        }
        let mut weights: Vec<f64> = self.loss_history.iter().map(|l| (l + 1e-10).sqrt() + 1e-4).collect();
        weights[0] = weights[1];
        let total: f64 = weights.iter().sum();
        weights.iter().map(|w| w / total).collect()
    }

    /// Draws `batch` timesteps (with replacement) and their probabilities p_t.
    pub fn sample(&self, batch: usize, rng: &mut SplitMix64) -> TimestepBatch {
        let probabilities = self.probabilities();
        let last = probabilities.len() - 1;
        let (t, p_t) = (0..batch)
            .map(|_| {
                let u = rng.next_f64();
                let mut cumulative = 0.0;
                let t = probabilities
                    .iter()
                    .position(|p| {
                        cumulative += p;
                        u < cumulative
                    })
                    .unwrap_or(last);
                (t, probabilities[t])
            })
            .unzip();
        TimestepBatch { t, p_t, num_timesteps: probabilities.len() }
    }

    /// Records per-sample losses (the `vb` of [`super::LossTerms`], before the 1/p_t weight):
    /// L_t ← 0.9 L_t + 0.1 loss², one sample at a time (the original scatters a batch at once,
    /// so duplicates of a t within a batch keep only one update there).
    ///
    /// # Panics
    /// If the slices differ in length or a timestep is out of range.
    pub fn update(&mut self, t: &[usize], losses: &[f64]) {
        assert_eq!(t.len(), losses.len(), "one loss per timestep");
        for (&t, &loss) in t.iter().zip(losses) {
            self.loss_history[t] = 0.9 * self.loss_history[t] + 0.1 * loss * loss;
            self.counts[t] += 1;
        }
    }
}
