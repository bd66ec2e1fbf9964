//! Vector instruction sets for the host kernels, chosen at run time, and a branch-free `e^x`
//! that loops over slices vectorise.
//!
//! Why: `f32::exp` is a library call (`expf`), one element at a time; burn-flex's softmax,
//! attention and sigmoid go through it. The host kernels instead compile their loops once per
//! [`VectorUnit`] ([`vectorized!`]) and pick the widest the CPU has. Every unit gives the same
//! bits: the kernels use no `mul_add` (no step is contracted into an FMA), and NaN takes the
//! same path through every comparison on every unit (tested on each unit the machine has).

/// A vector instruction set the host kernels are compiled for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum VectorUnit {
    /// The target's baseline (SSE2 on x86-64).
    Baseline,
    /// AVX2 (256-bit).
    Avx2,
    /// AVX-512F (512-bit).
    Avx512,
}

impl VectorUnit {
    /// The widest unit this CPU has.
    pub fn widest() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx512f") {
                return Self::Avx512;
            }
            if is_x86_feature_detected!("avx2") {
                return Self::Avx2;
            }
        }
        Self::Baseline
    }

    /// Every unit this CPU can run, narrowest first: what tests compare.
    pub fn available() -> Vec<Self> {
        let widest = Self::widest();
        [Self::Baseline, Self::Avx2, Self::Avx512].into_iter().filter(|unit| *unit <= widest).collect()
    }
}

/// `fn name(args) -> ret => kernel` defines `name(unit, args)` to call `kernel(args)` compiled
/// for `unit` (or the widest unit the CPU has, if that is narrower: never an instruction the CPU
/// lacks). `kernel` must be `#[inline(always)]`: its loops are compiled for the wider unit only
/// where they are inlined into a `target_feature` function. A macro, not a generic function
/// taking the kernel, because a kernel passed as a closure or function value is called through
/// a shim that is not inlined (all units then ran one baseline copy).
macro_rules! vectorized {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? => $kernel:path) => {
        $(#[$meta])*
        $vis fn $name(unit: $crate::cpu::VectorUnit, $($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                unsafe fn avx512($($arg: $ty),*) $(-> $ret)? {
                    $kernel($($arg),*)
                }
                #[target_feature(enable = "avx2")]
                unsafe fn avx2($($arg: $ty),*) $(-> $ret)? {
                    $kernel($($arg),*)
                }
                match unit.min($crate::cpu::VectorUnit::widest()) {
                    // SAFETY: the CPU has AVX-512F (`widest` detected it).
                    $crate::cpu::VectorUnit::Avx512 => return unsafe { avx512($($arg),*) },
                    // SAFETY: the CPU has AVX2 (`widest` detected it).
                    $crate::cpu::VectorUnit::Avx2 => return unsafe { avx2($($arg),*) },
                    $crate::cpu::VectorUnit::Baseline => {}
                }
            }
            let _ = unit;
            $kernel($($arg),*)
        }
    };
}
pub(crate) use vectorized;

/// `e^x` for `x ≤ 0` without branches or library calls, so loops over it vectorise: `x = k·ln 2 + r`
/// with |r| ≤ ln 2 / 2, `e^r` by the degree-6 polynomial of Cephes' `expf` (≤ 2 ulp on that range),
/// `2^k` built in the exponent bits. Inputs below −87 (e^x < 2⁻¹²⁵, where the result would leave
/// the normal range) give e^−87 ≈ 1.6e−38, which no softmax sum or sigmoid notices. NaN gives
/// NaN: the clamp is a comparison that NaN fails (`f32::max` would return −87 for it).
#[inline(always)]
pub(crate) fn exp_nonpositive(x: f32) -> f32 {
    const LOG2_E: f32 = std::f32::consts::LOG2_E;
    // ln 2 in two parts, the first exact in few bits, so k·LN2_HI is exact (Cody–Waite).
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding and subtracting 1.5·2²³ rounds to the nearest integer without `round` (a library
    // call on baseline x86-64, which would stop vectorisation).
    const ROUND: f32 = 12_582_912.0;
    let x = if x < -87.0 { -87.0 } else { x };
    // k + 1.5·2²³: k sits in the low mantissa bits (its exponent is that of 1.5·2²³ for every k here).
    let k_plus_round = x * LOG2_E + ROUND;
    let k = k_plus_round - ROUND;
    let r = x - k * LN2_HI - k * LN2_LO;
    let p = 1.987_569_1e-4_f32;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    // (Cephes writes 5.0000001e-1: the same f32, 0.5.)
    let p = p * r + 0.5;
    let e_r = p * r * r + r + 1.0;
    // k ∈ [−126, 0]: 2^k is the normal float with biased exponent k + 127, taken from the bits of
    // k + 1.5·2²³ by integer arithmetic: `k as i32` is a saturating conversion that LLVM does one
    // lane at a time (it scalarised the AVX-512 build of these loops).
    let biased = k_plus_round.to_bits().wrapping_sub(ROUND.to_bits()).wrapping_add(127);
    e_r * f32::from_bits(biased << 23)
}

/// Whether `a` and `b` hold the same values bit for bit, any NaN counting as equal to any NaN
/// (which NaN payload survives an operation with two NaN operands is up to the instruction).
#[cfg(test)]
pub(crate) fn same_values(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_within_two_ulp_of_std_on_the_softmax_range() {
        let mut worst = 0.0_f64;
        for i in 0..=870_000 {
            let x = -(i as f32) * 1e-4;
            let (got, want) = (exp_nonpositive(x), x.exp());
            let error = (f64::from(got) - f64::from(want)).abs() / f64::from(want - want.next_down());
            worst = worst.max(error);
        }
        assert!(worst <= 2.0, "worst error {worst} ulp");
        assert_eq!(exp_nonpositive(0.0), 1.0);
        assert!(exp_nonpositive(-1000.0) > 0.0 && exp_nonpositive(-1000.0) < 1e-37);
        assert!(exp_nonpositive(f32::NEG_INFINITY) < 1e-37);
        assert!(exp_nonpositive(f32::NAN).is_nan());
    }

    #[inline(always)]
    fn exps(xs: &[f32]) -> Vec<f32> {
        xs.iter().map(|&x| exp_nonpositive(x)).collect()
    }

    vectorized!(fn exps_on(xs: &[f32]) -> Vec<f32> => exps);

    #[test]
    fn every_unit_gives_the_baseline_bits_and_keeps_nan() {
        let mut xs: Vec<f32> = (0..1000).map(|i| -(i as f32) * 0.0871).collect();
        xs.extend([f32::NAN, -f32::NAN, f32::NEG_INFINITY, -0.0, -87.0, -87.5]);
        let baseline = exps(&xs);
        for unit in VectorUnit::available() {
            let got = exps_on(unit, &xs);
            assert!(same_values(&got, &baseline), "{unit:?} differs from the baseline");
            assert!(got[1000].is_nan() && got[1001].is_nan(), "{unit:?} lost a NaN");
        }
    }

    #[test]
    fn units_are_ordered_and_the_widest_is_available() {
        let units = VectorUnit::available();
        assert_eq!(units[0], VectorUnit::Baseline);
        assert_eq!(*units.last().unwrap(), VectorUnit::widest());
        assert!(units.windows(2).all(|w| w[0] < w[1]));
    }
}
