//! Truncation (diffusers' `VQDiffusionPipeline.truncate`): per pixel, keep the most probable
//! classes up to and including the one whose cumulative probability reaches the rate.
//!
//! torch's CPU semantics, which this reproduces: sort the classes by descending log-probability;
//! p = exp in f32; `cumsum` accumulates in **f64** in sorted order and rounds each partial sum
//! to f32; a class is kept iff it is the first or the partial sum before it is < rate (compared
//! in f32). At rate 1.0 this still cuts the tail once the f32 partial sum reaches 1.
//!
//! Computed on the host: burn 0.21's sort is itself a host sort on NdArray and CubeCL (the
//! backend's default `sort_with_indices` reads the tensor back), so a device path would not
//! avoid the transfer, and the host gives torch's f64 accumulation on every backend. A full sort
//! per pixel is avoided: a selection search (O(K) per pixel instead of O(K log K)) finds the
//! cut, and falls back to the full sort whenever its f64 sums, taken in another order than
//! torch's, could round to a different side of the rate (see [`kept_count_by_selection`]).

use std::thread;

use burn::tensor::{backend::Backend, Bool, Tensor, TensorData};

/// Pixels per work unit: their K classes are gathered together from the `[K, pixels]` rows.
const PIXEL_BLOCK: usize = 16;
/// Below this many elements truncation runs on the calling thread only.
const PARALLEL_MIN_ELEMENTS: usize = 1 << 20;
/// Segment length below which the selection search sorts and scans.
const SCAN_WINDOW: usize = 32;

/// Applies truncation to `[batch, K, pixels]` log-probabilities: removed entries become −inf.
/// `rate` is the pipeline's `truncation_rate` as f32 (torch compares in f32).
///
/// The top class of every pixel is always kept. Exact ties in log-probability are ordered by
/// ascending class id (torch's unstable sort leaves their order unspecified).
///
/// # Shapes
/// - `log_p`: `[batch, K, pixels]`
/// - output: `[batch, K, pixels]`
pub fn truncate<B: Backend>(log_p: Tensor<B, 3>, rate: f32) -> Tensor<B, 3> {
    let [batch, classes, pixels] = log_p.dims();
    let values = log_p
        .clone()
        .into_data()
        .convert::<f32>()
        .into_vec::<f32>()
        .expect("a tensor converted to f32 reads back as f32");
    let removed: Vec<bool> =
        truncation_keep_mask(&values, [batch, classes, pixels], rate).into_iter().map(|keep| !keep).collect();
    // The mask comes class-minor ([batch, pixels, K]); swap to [batch, K, pixels].
    let removed = Tensor::<B, 3, Bool>::from_data(TensorData::new(removed, [batch, pixels, classes]), &log_p.device())
        .swap_dims(1, 2);
    log_p.mask_fill(removed, f32::NEG_INFINITY)
}

/// The keep mask of [`truncate`] for row-major `[batch, K, pixels]` log-probabilities, returned
/// **class-minor**: entry `(b, pixel, class)` at `(b · pixels + pixel) · K + class`.
///
/// Large inputs are split over the available cores.
///
/// # Panics
/// If `log_p.len()` is not the product of `shape`.
pub fn truncation_keep_mask(log_p: &[f32], shape: [usize; 3], rate: f32) -> Vec<bool> {
    let [_, classes, pixels] = shape;
    assert_eq!(log_p.len(), shape.iter().product::<usize>(), "log_p does not match shape {shape:?}");
    let mut keep = vec![false; log_p.len()];
    if keep.is_empty() {
        return keep;
    }
    // One job per (batch row, pixel block): a contiguous run of the class-minor output.
    let mut jobs: Vec<(usize, usize, &mut [bool])> = Vec::new();
    for (b, row) in keep.chunks_mut(pixels * classes).enumerate() {
        for (block, out) in row.chunks_mut(PIXEL_BLOCK * classes).enumerate() {
            jobs.push((b, block * PIXEL_BLOCK, out));
        }
    }
    let workers = if log_p.len() < PARALLEL_MIN_ELEMENTS {
        1
    } else {
        thread::available_parallelism().map_or(1, |n| n.get()).min(jobs.len())
    };
    let run = |jobs: Vec<(usize, usize, &mut [bool])>| {
        let mut scratch = Scratch::new(classes);
        for (b, first_pixel, out) in jobs {
            keep_block(log_p, shape, rate, b, first_pixel, out, &mut scratch);
        }
    };
    if workers <= 1 {
        run(jobs);
    } else {
        let mut shares: Vec<Vec<_>> = (0..workers).map(|_| Vec::new()).collect();
        for (i, job) in jobs.into_iter().enumerate() {
            shares[i % workers].push(job);
        }
        thread::scope(|scope| {
            for share in shares {
                // Named `vq-…`: a program thread (the scope resumes its panic on the caller).
                let spawned = thread::Builder::new().name("vq-truncation".into()).spawn_scoped(scope, || run(share));
                spawned.expect("failed to spawn thread");
            }
        });
    }
    keep
}

/// Per-thread buffers for one pixel block: sort keys and probabilities, pixel-major.
struct Scratch {
    keys: Vec<u64>,
    p: Vec<f64>,
}

impl Scratch {
    fn new(classes: usize) -> Self {
        Self { keys: vec![0; PIXEL_BLOCK * classes], p: vec![0.0; PIXEL_BLOCK * classes] }
    }
}

/// Fills the keep mask of one batch row's pixels `first_pixel..first_pixel + width`
/// (`out` = their class-minor mask, `width · K` entries).
fn keep_block(
    log_p: &[f32],
    [_, classes, pixels]: [usize; 3],
    rate: f32,
    b: usize,
    first_pixel: usize,
    out: &mut [bool],
    scratch: &mut Scratch,
) {
    let width = out.len() / classes;
    // Row `class` of the block is contiguous in log_p: (b, class, first_pixel..+width).
    for class in 0..classes {
        let start = (b * classes + class) * pixels + first_pixel;
        for (j, &value) in log_p[start..start + width].iter().enumerate() {
            scratch.keys[j * classes + class] = sort_key(value, class);
            scratch.p[j * classes + class] = f64::from(value.exp());
        }
    }
    for (j, column_out) in out.chunks_mut(classes).enumerate() {
        let keys = &mut scratch.keys[j * classes..(j + 1) * classes];
        let p = &scratch.p[j * classes..(j + 1) * classes];
        let kept = kept_count_by_selection(keys, p, rate).unwrap_or_else(|| kept_count_by_sorting(keys, p, rate));
        // Both searches leave the kept classes in keys[..kept].
        for &key in &keys[..kept] {
            column_out[class_of(key)] = true;
        }
    }
}

/// A u64 whose ascending order is torch's descending sort order: NaN first, then larger values
/// first (−0 and +0 equal), exact ties by ascending class id (low 32 bits).
fn sort_key(value: f32, class: usize) -> u64 {
    let descending = if value.is_nan() {
        0
    } else {
        let bits = (if value == 0.0 { 0.0f32 } else { value }).to_bits();
        // Order-preserving map of f32 bits to u32 (negative: flip all; positive: set the sign),
        // inverted for descending order; never 0 for a non-NaN value.
        let ascending = if bits >> 31 == 1 { !bits } else { bits | 0x8000_0000 };
        !ascending
    };
    (u64::from(descending) << 32) | class as u64
}

fn class_of(key: u64) -> usize {
    (key & 0xffff_ffff) as usize
}

/// Number of kept classes by the definition: sort, then accumulate p in f64 in sorted order;
/// position j ≥ 1 is kept while the f32-rounded sum of positions < j is < rate. Exact torch
/// semantics, including NaN (sorted first; a NaN sum keeps nothing more).
fn kept_count_by_sorting(keys: &mut [u64], p: &[f64], rate: f32) -> usize {
    keys.sort_unstable();
    let mut cumulative = 0.0f64;
    for (position, &key) in keys.iter().enumerate() {
        let below_rate = (cumulative as f32) < rate;
        if position > 0 && !below_rate {
            return position;
        }
        cumulative += p[class_of(key)];
    }
    keys.len()
}

/// Whether the f32 rounding of every value within `tolerance` of `sum` is ≥ `rate` (`Some(true)`)
/// or < `rate` (`Some(false)`); `None` if that depends on where in the interval the sum lies.
fn reaches_rate(sum: f64, tolerance: f64, rate: f32) -> Option<bool> {
    if ((sum - tolerance) as f32) >= rate {
        Some(true)
    } else if ((sum + tolerance) as f32) < rate {
        Some(false)
    } else {
        None
    }
}

/// The kept count without a full sort, or `None` when it cannot be certain to equal
/// [`kept_count_by_sorting`].
///
/// The partial sums only grow with the position, so the first position whose partial sum
/// reaches the rate is found by bisection: `select_nth_unstable` splits the undecided segment at
/// its middle rank, and the mass of the upper half decides which half holds the cut. Invariant:
/// `keys[..lo]` are the `lo` most probable classes (mass `above`), `keys[lo..hi]` the next ones
/// in any order, position `lo` (or 0) is kept and position `hi` is cut (or `hi` = K).
///
/// These sums add the same f64 terms as torch but in another order; each of the two sums is
/// within (K − 1)·2⁻⁵³·sum of the exact one, so they differ by less than K·2⁻⁵²·sum. A decision
/// is accepted only if it holds for every value in that interval; otherwise (a partial sum
/// within ~1e−12 of an f32 rounding boundary at the rate, or NaN/inf) this returns `None`.
fn kept_count_by_selection(keys: &mut [u64], p: &[f64], rate: f32) -> Option<usize> {
    let relative_tolerance = keys.len() as f64 * f64::EPSILON;
    let mass = |keys: &[u64]| keys.iter().map(|&key| p[class_of(key)]).sum::<f64>();
    let (mut lo, mut hi, mut above) = (0, keys.len(), 0.0f64);
    while hi - lo > SCAN_WINDOW {
        let mid = lo + (hi - lo) / 2;
        keys[lo..hi].select_nth_unstable(mid - lo);
        let sum = above + mass(&keys[lo..mid]);
        if reaches_rate(sum, relative_tolerance * sum, rate)? {
            hi = mid;
        } else {
            (lo, above) = (mid, sum);
        }
    }
    keys[lo..hi].sort_unstable();
    let mut sum = above;
    for position in lo + 1..hi {
        sum += p[class_of(keys[position - 1])];
        if reaches_rate(sum, relative_tolerance * sum, rate)? {
            return Some(position);
        }
    }
    Some(hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The selection search gives up exactly when the order of the f64 additions could decide
    /// the f32 rounding: here the partial sum is the midpoint between 0.5 − 2⁻²⁵ and 0.5 (which
    /// rounds to 0.5, even mantissa), so ±1 ulp of f64 would round to either side.
    #[test]
    fn selection_defers_to_sorting_at_an_f32_rounding_midpoint() {
        let midpoint = 0.5 - 2f64.powi(-26);
        let mut p = vec![midpoint / 2.0, midpoint / 2.0, 0.2, 0.1];
        p.extend(std::iter::repeat_n((1.0 - midpoint - 0.3) / 60.0, 60));
        let keys = |p: &[f64]| -> Vec<u64> {
            p.iter().enumerate().map(|(class, &q)| sort_key(q.ln() as f32, class)).collect()
        };
        let mut by_selection = keys(&p);
        assert_eq!(kept_count_by_selection(&mut by_selection, &p, 0.5), None);
        // The definition: position 2's partial sum rounds to 0.5 ≥ 0.5, so 2 classes are kept.
        assert_eq!(kept_count_by_sorting(&mut keys(&p), &p, 0.5), 2);
        // Away from the midpoint the selection decides, and agrees.
        for rate in [0.3f32, 0.45, 0.55, 0.7, 0.99, 1.0] {
            let (mut a, mut b) = (keys(&p), keys(&p));
            assert_eq!(kept_count_by_selection(&mut a, &p, rate), Some(kept_count_by_sorting(&mut b, &p, rate)));
        }
    }

    #[test]
    fn sort_keys_order_like_torch_descending() {
        let values = [f32::NAN, f32::INFINITY, 1.0, 0.0, -0.0, -1e-30, -1.0, f32::NEG_INFINITY];
        let keys: Vec<u64> = values.iter().enumerate().map(|(c, &v)| sort_key(v, c)).collect();
        // Strictly ascending except the ±0 pair, which ties on value and is ordered by class.
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(keys[3] >> 32, keys[4] >> 32);
    }
}
