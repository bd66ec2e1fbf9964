//! A CPU random stream identical to `torch.Generator("cpu").manual_seed(seed)` for `torch.rand`
//! in float32: the 32-bit Mersenne Twister MT19937 (Matsumoto & Nishimura, 1998) with the
//! reference `init_genrand` seeding, and each float built from the low 24 bits of one output.

/// State words of MT19937.
const STATE_WORDS: usize = 624;
/// Middle word offset of the recurrence.
const SHIFT: usize = 397;
/// Twist matrix coefficient.
const MATRIX_A: u32 = 0x9908_b0df;
const UPPER_MASK: u32 = 0x8000_0000;
const LOWER_MASK: u32 = 0x7fff_ffff;
/// Seeding multiplier of `init_genrand`.
const INIT_MULTIPLIER: u32 = 1_812_433_253;

/// The 32-bit Mersenne Twister (MT19937), reference algorithm.
#[derive(Clone)]
pub struct Mt19937 {
    state: [u32; STATE_WORDS],
    /// Next state word to temper; `STATE_WORDS` means "twist first".
    index: usize,
}

impl Mt19937 {
    /// `init_genrand(seed)`: s₀ = seed, sᵢ = 1812433253 · (sᵢ₋₁ ⊕ (sᵢ₋₁ ≫ 30)) + i (mod 2³²).
    pub fn new(seed: u32) -> Self {
        let mut state = [0u32; STATE_WORDS];
        state[0] = seed;
        for i in 1..STATE_WORDS {
            let prev = state[i - 1];
            state[i] = INIT_MULTIPLIER.wrapping_mul(prev ^ (prev >> 30)).wrapping_add(i as u32);
        }
        Self { state, index: STATE_WORDS }
    }

    /// Regenerates all 624 state words (the "twist"): sᵢ ← sᵢ₊₃₉₇ ⊕ twist(sᵢ, sᵢ₊₁), indices
    /// mod 624, split into three loops so the hot ones need no modulo.
    fn twist(&mut self) {
        #[inline(always)]
        fn mix(upper: u32, lower: u32, middle: u32) -> u32 {
            let y = (upper & UPPER_MASK) | (lower & LOWER_MASK);
            middle ^ (y >> 1) ^ (if y & 1 == 1 { MATRIX_A } else { 0 })
        }
        let s = &mut self.state;
        for i in 0..STATE_WORDS - SHIFT {
            s[i] = mix(s[i], s[i + 1], s[i + SHIFT]);
        }
        for i in STATE_WORDS - SHIFT..STATE_WORDS - 1 {
            s[i] = mix(s[i], s[i + 1], s[i + SHIFT - STATE_WORDS]);
        }
        s[STATE_WORDS - 1] = mix(s[STATE_WORDS - 1], s[0], s[SHIFT - 1]);
        self.index = 0;
    }

    /// The tempering transform applied to each state word on output.
    #[inline(always)]
    fn temper(mut y: u32) -> u32 {
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    /// The next 32-bit output.
    pub fn next_u32(&mut self) -> u32 {
        if self.index == STATE_WORDS {
            self.twist();
        }
        let y = Self::temper(self.state[self.index]);
        self.index += 1;
        y
    }

    /// Fills `out` with consecutive outputs mapped by `map`, one block of state words at a time
    /// (a tight loop the compiler can unroll, no per-element refill check).
    #[inline(always)]
    fn fill_with<T>(&mut self, out: &mut [T], map: impl Fn(u32) -> T) {
        let mut filled = 0;
        while filled < out.len() {
            if self.index == STATE_WORDS {
                self.twist();
            }
            let take = (STATE_WORDS - self.index).min(out.len() - filled);
            let words = &self.state[self.index..self.index + take];
            for (slot, &word) in out[filled..filled + take].iter_mut().zip(words) {
                *slot = map(Self::temper(word));
            }
            self.index += take;
            filled += take;
        }
    }
}

/// 2⁻²⁴: torch maps the low 24 bits of one 32-bit output to a float32 in [0, 1).
const FLOAT_SCALE: f32 = 1.0 / (1u32 << 24) as f32;

/// A torch-compatible CPU generator for float32 uniforms.
///
/// `TorchGenerator::new(seed)` followed by [`fill_uniform`](Self::fill_uniform) calls yields
/// exactly the values of `g = torch.Generator("cpu").manual_seed(seed)` followed by
/// `torch.rand(shape, generator=g)` calls (row-major; the stream continues across calls):
/// MT19937 seeded with `seed mod 2³²`, each value `(next_u32() & 0xFFFFFF) · 2⁻²⁴`
/// (exact in f32). CUDA generators (Philox) give other streams.
#[derive(Clone)]
pub struct TorchGenerator {
    engine: Mt19937,
}

impl TorchGenerator {
    /// `torch.Generator("cpu").manual_seed(seed)`; torch keeps the low 32 bits of the seed.
    pub fn new(seed: u64) -> Self {
        Self { engine: Mt19937::new(seed as u32) }
    }

    /// Fills `out` with the next `out.len()` uniforms in [0, 1), as `torch.rand` does.
    pub fn fill_uniform(&mut self, out: &mut [f32]) {
        self.engine.fill_with(out, |word| (word & 0x00ff_ffff) as f32 * FLOAT_SCALE);
    }

    /// The next `len` uniforms as a vector.
    pub fn uniform_vec(&mut self, len: usize) -> Vec<f32> {
        let mut out = vec![0.0; len];
        self.fill_uniform(&mut out);
        out
    }
}
