//! A branch-free `e^x` that loops over slices vectorise, and a way to compile such loops for the
//! widest vector unit the CPU has — shared by the host kernels ([`host_attention`]'s softmax,
//! [`host_quick_gelu`]).
//!
//! Why: `f32::exp` is a library call (`expf`), one element at a time; burn-flex's softmax,
//! attention and sigmoid go through it (BENCHMARKS.md, session 11). Until `2^k` was built with
//! integer arithmetic (see [`exp_nonpositive`]) the AVX-512 build still converted `k` one lane at
//! a time (17 scalar conversions in the softmax's loop, quick GELU 3.5× slower than now).
//!
//! [`host_attention`]: crate::host_attention
//! [`host_quick_gelu`]: crate::host_quick_gelu

/// `fn name(args) -> ret => kernel` defines `name` to call `kernel(args)` compiled for AVX-512F or
/// AVX2 when the CPU has them (checked at run time), else for the baseline target. `kernel` must be
/// marked `#[inline(always)]`: its loops are compiled for the wider unit only where they are
/// inlined into a `target_feature` function. A macro, not a generic function taking the kernel,
/// because a kernel passed as a closure or function value is called through a shim that is not
/// inlined (in the release build all three paths then jumped to one baseline copy). Results do not
/// depend on the unit chosen as long as the kernel has no `mul_add` (no step is contracted into an
/// FMA).
macro_rules! on_widest_vectors {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? => $kernel:path) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
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
                if is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has AVX-512F.
                    return unsafe { avx512($($arg),*) };
                }
                if is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU has AVX2.
                    return unsafe { avx2($($arg),*) };
                }
            }
            $kernel($($arg),*)
        }
    };
}
pub(crate) use on_widest_vectors;

/// `e^x` for `x ≤ 0` without branches or library calls, so loops over it vectorise: `x = k·ln 2 + r`
/// with |r| ≤ ln 2 / 2, `e^r` by the degree-6 polynomial of Cephes' `expf` (≤ 2 ulp on that range),
/// `2^k` built in the exponent bits. Inputs below −87 (e^x < 2⁻¹²⁵, where the result would leave
/// the normal range) give e^−87 ≈ 1.6e−38, which no softmax sum or sigmoid notices.
#[inline(always)]
pub(crate) fn exp_nonpositive(x: f32) -> f32 {
    const LOG2_E: f32 = std::f32::consts::LOG2_E;
    // ln 2 in two parts, the first exact in few bits, so k·LN2_HI is exact (Cody–Waite).
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding and subtracting 1.5·2²³ rounds to the nearest integer without `round` (a library
    // call on baseline x86-64, which would stop vectorisation).
    const ROUND: f32 = 12_582_912.0;
    let x = x.max(-87.0);
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
    // lane at a time (it scalarised this loop's AVX-512 build; 2.5 ns per value in quick GELU).
    let biased = k_plus_round.to_bits().wrapping_sub(ROUND.to_bits()).wrapping_add(127);
    e_r * f32::from_bits(biased << 23)
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
    }

    #[test]
    fn the_widest_unit_gives_the_baseline_results() {
        #[inline(always)]
        fn exps(xs: &[f32]) -> Vec<f32> {
            xs.iter().map(|&x| exp_nonpositive(x)).collect()
        }
        on_widest_vectors!(fn widest_exps(xs: &[f32]) -> Vec<f32> => exps);
        let xs: Vec<f32> = (0..1000).map(|i| -(i as f32) * 0.0871).collect();
        assert_eq!(widest_exps(&xs), exps(&xs));
    }
}
