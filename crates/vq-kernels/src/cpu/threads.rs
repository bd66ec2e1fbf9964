//! Running independent parts of a forward pass on scoped threads, for CPU backends.
//!
//! burn's CPU backends run element-wise ops, layout copies and (burn-flex) the attention kernel
//! on the calling thread; only matrix products use a thread pool. So on a CPU one stream of ops
//! keeps one core busy for much of a forward, and independent parts of the work — the samples of
//! a batch, groups of attention heads — each on its own thread use the others.
//!
//! Splits nest: the batch is split over threads, and each part's attention and activations split
//! their work again. A part gets its share of the cores ([`cores_here`]), so the inner splits do
//! not start more threads than there are cores.

use std::cell::Cell;
use std::sync::OnceLock;
use std::thread::Builder;

/// The machine's available parallelism, read once: on Linux `available_parallelism` reads the
/// cgroup's CPU quota files at every call, and attention asks on every layer of every step.
pub(crate) fn available_cores() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

thread_local! {
    /// The cores given to the part of a [`map_on_threads`] this thread runs; `None` outside one.
    static CORES_HERE: Cell<Option<usize>> = const { Cell::new(None) };
}

/// How many threads work started on this thread should be split over: [`available_cores`], or
/// inside a part of [`map_on_threads`] that part's share of its caller's cores (at least 1).
pub(crate) fn cores_here() -> usize {
    CORES_HERE.with(Cell::get).unwrap_or_else(available_cores)
}

/// `f()` with [`cores_here`] at `cores`, restored after (also when `f` panics).
fn with_cores<R>(cores: usize, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<usize>);
    impl Drop for Restore {
        fn drop(&mut self) {
            CORES_HERE.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(CORES_HERE.with(|c| c.replace(Some(cores))));
    f()
}

/// `f` applied to every part, each on its own scoped thread (the first on the calling thread),
/// results in the order of `parts`. Each part sees an equal share of the caller's
/// [`cores_here`]. A panic in any part is resumed on the caller.
pub(crate) fn map_on_threads<T: Send, R: Send>(parts: Vec<T>, f: impl Fn(T) -> R + Sync) -> Vec<R> {
    let share = (cores_here() / parts.len().max(1)).max(1);
    let mut parts = parts.into_iter();
    let Some(first) = parts.next() else {
        return Vec::new();
    };
    let run = |part| with_cores(share, || f(part));
    std::thread::scope(|scope| {
        let run = &run;
        // Named `vq-…`: a program thread for `setup::exit_on_panic`, whose panic is resumed below.
        let spawn = |part| Builder::new().name("vq-kernels".into()).spawn_scoped(scope, move || run(part));
        let handles: Vec<_> = parts.map(|part| spawn(part).expect("failed to spawn thread")).collect();
        let mut results = vec![run(first)];
        for handle in handles {
            results.push(handle.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)));
        }
        results
    })
}

/// `0..len` cut into at most `parts` consecutive ranges of (nearly) equal length.
pub(crate) fn split_range(len: usize, parts: usize) -> Vec<std::ops::Range<usize>> {
    let step = len.div_ceil(parts.clamp(1, len.max(1)));
    (0..len).step_by(step.max(1)).map(|start| start..(start + step).min(len)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_every_index_once_in_order() {
        for len in 0..20 {
            for parts in 1..6 {
                let ranges = split_range(len, parts);
                assert!(ranges.len() <= parts.max(1), "{len} in {parts}: {ranges:?}");
                let flat: Vec<usize> = ranges.iter().flat_map(|r| r.clone()).collect();
                assert_eq!(flat, (0..len).collect::<Vec<_>>(), "{len} in {parts}");
                assert!(ranges.iter().all(|r| !r.is_empty()));
            }
        }
        assert_eq!(split_range(16, 2), vec![0..8, 8..16]);
        assert_eq!(split_range(3, 2), vec![0..2, 2..3]);
    }

    #[test]
    fn results_keep_the_order_of_the_parts() {
        let squares = map_on_threads((0..7).collect(), |i: u64| i * i);
        assert_eq!(squares, vec![0, 1, 4, 9, 16, 25, 36]);
        assert!(map_on_threads(Vec::<u8>::new(), |i| i).is_empty());
    }

    #[test]
    fn parts_share_the_cores_of_their_caller() {
        let outer = cores_here();
        let shares = map_on_threads(vec![(); 2], |()| (cores_here(), map_on_threads(vec![(); 2], |()| cores_here())));
        for (share, inner) in shares {
            assert_eq!(share, (outer / 2).max(1));
            assert_eq!(inner, vec![(outer / 4).max(1); 2]);
        }
        assert_eq!(cores_here(), outer, "the calling thread's share is restored");
    }

    #[test]
    #[should_panic(expected = "part 2 failed")]
    fn a_panicking_part_panics_the_caller() {
        map_on_threads(vec![1, 2, 3], |i| assert!(i != 2, "part {i} failed"));
    }
}
