//! Keeping freed tensor memory in the process on glibc, for CPU backends.
//!
//! A CPU forward allocates and frees buffers of tens of megabytes per layer (an ITHQ feed-forward
//! activation is 46 MB). glibc's `malloc` serves blocks above its mmap threshold (at most 32 MB)
//! with fresh `mmap`s and returns them on `free`, and trims the heap top after large frees, so
//! every such buffer is faulted in and zeroed by the kernel again on each layer: on a 2-core Xeon
//! 825 k page faults and 3.1 s of system time in one 4-block benchmark run; kept, 345–490 k and
//! a 10–20 % faster forward (BENCHMARKS.md, session 11). Served from the heap, freed blocks are
//! reused.

/// Makes glibc's `malloc` keep freed memory for reuse: no `mmap` for large blocks (they come from
/// the heaps; one larger than a thread arena's heap falls back to the main heap) and no trimming
/// of a heap's top below 2 GiB. Call once at the start of a program that runs models on a CPU
/// backend, before other threads start; the command line and `xtask` do. Memory the process freed
/// stays counted in its resident size (up to its peak). Does nothing on other platforms and C
/// libraries.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; called before other threads allocate.
    unsafe {
        libc::mallopt(libc::M_MMAP_MAX, 0);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
    }
}
