//! The EMA codebook of a VQ-VAE (van den Oord et al., arXiv 1711.00937, appendix A.1):
//! N_k ← γ N_k + (1 − γ) n_k, m_k ← γ m_k + (1 − γ) Σ_{z ↦ k} z, e_k = m_k / Ñ_k with
//! Laplace-smoothed counts Ñ_k = (N_k + ε) / (N + K ε) · N. Codes whose usage N_k falls below
//! a fraction of the mean are restarted at a random latent of the current batch.

use burn::module::{Module, Param};
use burn::tensor::{backend::Backend, Int, Tensor, TensorData};

use crate::rng::SplitMix64;

/// Laplace smoothing of the counts.
const EPSILON: f64 = 1e-5;

/// The EMA statistics of a codebook of K vectors of width D. A module so that checkpoints can
/// record it; nothing here is trained by gradients.
#[derive(Module, Debug)]
pub struct EmaCodebook<B: Backend> {
    /// N_k: moving average of the number of latents assigned to each code per step. `[K]`.
    pub cluster_size: Param<Tensor<B, 1>>,
    /// m_k: moving average of the sum of the latents assigned to each code. `[K, D]`.
    pub embed_sum: Param<Tensor<B, 2>>,
    /// γ.
    pub decay: f64,
}

impl<B: Backend> EmaCodebook<B> {
    /// Statistics that reproduce `codebook` with a pseudo-count of one per code, so that an
    /// unused code keeps its vector instead of drifting.
    ///
    /// # Shapes
    /// - codebook: `[K, D]`
    pub fn new(codebook: Tensor<B, 2>, decay: f64) -> Self {
        let [k, _] = codebook.dims();
        let device = codebook.device();
        Self {
            cluster_size: Param::from_tensor(Tensor::ones([k], &device)),
            embed_sum: Param::from_tensor(codebook),
            decay,
        }
    }

    /// The codebook the statistics define: m_k / Ñ_k. `[K, D]`.
    pub fn codebook(&self) -> Tensor<B, 2> {
        let cluster_size = self.cluster_size.val();
        let [k] = cluster_size.dims();
        let total = cluster_size.clone().sum();
        // Ñ_k = (N_k + ε) / (N + K ε) · N
        let smoothed = (cluster_size.add_scalar(EPSILON) / total.clone().add_scalar(k as f64 * EPSILON)) * total;
        self.embed_sum.val() / smoothed.reshape([k, 1])
    }

    /// One EMA step with the latents `z` and their assigned codes.
    ///
    /// # Shapes
    /// - z: `[M, D]`
    /// - indices: `[M]`, in `0..K`
    pub fn update(self, z: Tensor<B, 2>, indices: Tensor<B, 1, Int>) -> Self {
        let [m, _] = z.dims();
        let [k] = self.cluster_size.dims();
        let device = z.device();
        // [M, K] one-hot assignments.
        let classes = Tensor::<B, 1, Int>::arange(0..k as i64, &device).reshape([1, k]);
        let assignment = indices.reshape([m, 1]).equal(classes).float();
        let counts = assignment.clone().sum_dim(0).reshape([k]);
        let sums = assignment.transpose().matmul(z);
        let decay = self.decay;
        Self {
            cluster_size: self.cluster_size.map(|n| n.mul_scalar(decay) + counts.mul_scalar(1.0 - decay)),
            embed_sum: self.embed_sum.map(|s| s.mul_scalar(decay) + sums.mul_scalar(1.0 - decay)),
            decay,
        }
    }

    /// Restarts every code with N_k below `threshold` × mean(N) (every code when `all`) at a
    /// random row of `z`, with N_k = mean(N). Returns the statistics and the number of
    /// restarted codes. Reads the (small) statistics to the host.
    ///
    /// # Shapes
    /// - z: `[M, D]`
    pub fn restart_dead_codes(self, z: Tensor<B, 2>, threshold: f64, all: bool, rng: &mut SplitMix64) -> (Self, usize) {
        let [m, d] = z.dims();
        let device = z.device();
        let mut sizes = self.cluster_size.val().into_data().convert::<f32>().into_vec::<f32>().expect("f32 counts");
        let k = sizes.len();
        let mean = sizes.iter().sum::<f32>() / k as f32;
        let dead: Vec<usize> = (0..k).filter(|&i| all || (sizes[i] as f64) < threshold * mean as f64).collect();
        if dead.is_empty() {
            return (self, 0);
        }
        let rows: Vec<i64> = dead.iter().map(|_| rng.below(m) as i64).collect();
        let picked = z
            .select(0, Tensor::<B, 1, Int>::from_data(TensorData::new(rows, [dead.len()]), &device))
            .into_data()
            .convert::<f32>()
            .into_vec::<f32>()
            .expect("f32 latents");
        let mut sums = self.embed_sum.val().into_data().convert::<f32>().into_vec::<f32>().expect("f32 sums");
        let count = mean.max(1e-3);
        for (j, &code) in dead.iter().enumerate() {
            sizes[code] = count;
            for c in 0..d {
                sums[code * d + c] = picked[j * d + c] * count;
            }
        }
        let restarted = dead.len();
        let codebook = Self {
            cluster_size: self.cluster_size.map(|_| Tensor::from_data(TensorData::new(sizes, [k]), &device)),
            embed_sum: self.embed_sum.map(|_| Tensor::from_data(TensorData::new(sums, [k, d]), &device)),
            decay: self.decay,
        };
        (codebook, restarted)
    }

    /// Fraction of codes with N_k ≥ `threshold` × mean(N).
    pub fn usage(&self, threshold: f64) -> f64 {
        let sizes = self.cluster_size.val().into_data().convert::<f32>().into_vec::<f32>().expect("f32 counts");
        let mean = sizes.iter().sum::<f32>() as f64 / sizes.len() as f64;
        sizes.iter().filter(|&&n| n as f64 >= threshold * mean).count() as f64 / sizes.len() as f64
    }
}

/// Index of the nearest code of every latent (squared Euclidean distance, via
/// ‖z‖² − 2 z·e + ‖e‖²).
///
/// # Shapes
/// - z: `[M, D]`, codebook: `[K, D]`
/// - output: `[M]`
pub fn nearest_codes<B: Backend>(z: Tensor<B, 2>, codebook: Tensor<B, 2>) -> Tensor<B, 1, Int> {
    let [m, _] = z.dims();
    let [k, _] = codebook.dims();
    let z_norm = z.clone().square().sum_dim(1); // [M, 1]
    let e_norm = codebook.clone().square().sum_dim(1).reshape([1, k]);
    let distances = z_norm - z.matmul(codebook.transpose()).mul_scalar(2.0) + e_norm;
    distances.argmin(1).reshape([m])
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::NdArray;

    type B = NdArray<f32>;

    fn tensor2(values: &[f32], shape: [usize; 2]) -> Tensor<B, 2> {
        Tensor::from_data(TensorData::new(values.to_vec(), shape), &Default::default())
    }

    #[test]
    fn nearest_codes_picks_the_closest_vector() {
        let codebook = tensor2(&[0.0, 0.0, 10.0, 0.0, 0.0, 10.0], [3, 2]);
        let z = tensor2(&[9.0, 1.0, 0.5, 0.2, 1.0, 7.0, 6.0, 4.9], [4, 2]);
        let indices = nearest_codes(z, codebook).into_data().convert::<i64>().into_vec::<i64>().unwrap();
        assert_eq!(indices, [1, 0, 2, 1]);
    }

    #[test]
    fn ema_converges_to_the_mean_of_assigned_latents_and_keeps_unused_codes() {
        let initial = tensor2(&[0.0, 0.0, 5.0, 5.0, -3.0, 1.0], [3, 2]);
        let mut codebook = EmaCodebook::new(initial, 0.95);
        // Code 0 gets (1, 1) and (3, 1) every step: mean (2, 1); code 1 gets (5, 7); code 2 nothing.
        let z = tensor2(&[1.0, 1.0, 3.0, 1.0, 5.0, 7.0], [3, 2]);
        let indices = Tensor::<B, 1, Int>::from_data(TensorData::new(vec![0i64, 0, 1], [3]), &Default::default());
        for _ in 0..150 {
            codebook = codebook.update(z.clone(), indices.clone());
        }
        let values = codebook.codebook().into_data().into_vec::<f32>().unwrap();
        assert!((values[0] - 2.0).abs() < 1e-3 && (values[1] - 1.0).abs() < 1e-3, "{values:?}");
        assert!((values[2] - 5.0).abs() < 1e-3 && (values[3] - 7.0).abs() < 1e-3, "{values:?}");
        // The unused code decays in both N and m; its vector stays, up to the smoothing ε
        // against N_k = 0.95^150 ≈ 4.6e−4 (2 %).
        assert!((values[4] + 3.0).abs() < 0.1 && (values[5] - 1.0).abs() < 0.04, "{values:?}");
        assert!((codebook.usage(0.01) - 2.0 / 3.0).abs() < 1e-9);

        let mut rng = SplitMix64::new(1);
        let (restarted, count) = codebook.restart_dead_codes(z.clone(), 0.01, false, &mut rng);
        assert_eq!(count, 1);
        let values = restarted.codebook().into_data().into_vec::<f32>().unwrap();
        let row = [values[4], values[5]];
        assert!(
            [[1.0, 1.0], [3.0, 1.0], [5.0, 7.0]]
                .iter()
                .any(|r| (r[0] - row[0]).abs() < 1e-3 && (r[1] - row[1]).abs() < 1e-3),
            "{row:?}"
        );
        assert_eq!(restarted.usage(0.01), 1.0);
    }
}
