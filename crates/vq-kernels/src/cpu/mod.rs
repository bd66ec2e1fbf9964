//! Fast paths for burn's CPU backends (NdArray, Flex): attention and quick GELU computed on
//! the host with vectorised loops, and the batch split over the CPU's cores.

// Without a CPU backend compiled in, only the public host kernels (and their tests) use this.
#![cfg_attr(not(any(feature = "ndarray", feature = "flex")), allow(dead_code, unused_imports))]

mod attention;
mod quick_gelu;
mod threads;
mod vector;

pub use attention::{host_attention, threaded_attention_op};
pub use quick_gelu::host_quick_gelu;
pub use vector::VectorUnit;

pub(crate) use attention::attention;
pub(crate) use quick_gelu::quick_gelu;

use std::ops::Range;

use threads::{available_cores, map_on_threads, split_range};

/// [`KernelBackend::split_batch`](crate::KernelBackend::split_batch) on a CPU backend: one part
/// per core (each part's inner splits then get that part's share of the cores).
pub(crate) fn split_batch<T: Send>(batch: usize, run: impl Fn(Range<usize>) -> T + Sync) -> Vec<T> {
    let cores = available_cores();
    if cores <= 1 || batch <= 1 {
        return vec![run(0..batch)];
    }
    map_on_threads(split_range(batch, cores), run)
}
