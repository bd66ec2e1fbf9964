//! A small, fixed pseudo-random generator (SplitMix64, Steele, Lea & Flood 2014).
//!
//! The dataset must give the same bytes for the same `(seed, split, index)` on every platform
//! and for every future build, so it uses its own ten-line generator instead of a crate whose
//! algorithms may change between versions. SplitMix64 passes BigCrush, which is far more than
//! sampling shapes and timesteps needs.

/// SplitMix64: a 64-bit counter pushed through a bijective mixing function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitMix64 {
    state: u64,
}

/// SplitMix64's golden-ratio increment.
const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// The SplitMix64 finaliser: a bijection on u64 with full avalanche.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl SplitMix64 {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// A generator for one item of a keyed stream: every `(seed, stream, index)` triple gets an
    /// independent-looking starting state (each key is mixed in turn, so nearby keys do not
    /// give nearby states).
    pub fn for_item(seed: u64, stream: u64, index: u64) -> Self {
        let state = mix(mix(mix(seed).wrapping_add(stream).wrapping_add(GAMMA)).wrapping_add(index));
        Self::new(state)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GAMMA);
        mix(self.state)
    }

    /// A uniform float in [0, 1) with 53 random bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// A uniform integer in `0..n` (Lemire's multiply-shift with rejection, so exactly uniform).
    ///
    /// # Panics
    /// If `n == 0`.
    pub fn below(&mut self, n: usize) -> usize {
        assert!(n > 0, "SplitMix64::below needs n > 0");
        let n = n as u64;
        let threshold = n.wrapping_neg() % n;
        loop {
            let product = (self.next_u64() as u128) * (n as u128);
            if (product as u64) >= threshold {
                return (product >> 64) as usize;
            }
        }
    }

    /// `true` with probability `p`.
    pub fn bernoulli(&mut self, p: f64) -> bool {
        self.next_f64() < p
    }

    /// A uniform float in `[low, high)`.
    pub fn uniform(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.next_f64()
    }

    /// A uniformly chosen element.
    ///
    /// # Panics
    /// If `items` is empty.
    pub fn choose<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_published_splitmix64_sequence() {
        // Reference outputs of Vigna's splitmix64.c seeded with 1234567.
        let mut rng = SplitMix64::new(1_234_567);
        let expected = [
            6_457_827_717_110_365_317_u64,
            3_203_168_211_198_807_973,
            9_817_491_932_198_370_423,
            4_593_380_528_125_082_431,
            16_408_922_859_458_223_821,
        ];
        for value in expected {
            assert_eq!(rng.next_u64(), value);
        }
    }

    #[test]
    fn below_is_uniform_on_a_small_range() {
        let mut rng = SplitMix64::new(7);
        let mut counts = [0usize; 6];
        let draws = 60_000;
        for _ in 0..draws {
            counts[rng.below(6)] += 1;
        }
        // Each count ~ Binomial(60000, 1/6): sd ≈ 91; allow 5 sd.
        for count in counts {
            assert!((count as f64 - 10_000.0).abs() < 460.0, "counts {counts:?}");
        }
    }

    #[test]
    fn item_streams_differ_by_key() {
        let first = SplitMix64::for_item(1, 0, 0).next_u64();
        assert_ne!(first, SplitMix64::for_item(1, 0, 1).next_u64());
        assert_ne!(first, SplitMix64::for_item(1, 1, 0).next_u64());
        assert_ne!(first, SplitMix64::for_item(2, 0, 0).next_u64());
        assert_eq!(first, SplitMix64::for_item(1, 0, 0).next_u64());
    }
}
