//! The PyTorch zip archive + pickle index and tensor reads, from bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vq_weights::checkpoint::{Checkpoint, Format};

fuzz_target!(|data: &[u8]| {
    if let Ok(mut checkpoint) = Checkpoint::from_bytes(data, Format::PyTorch) {
        // Every tensor lies inside its storage, which lies inside the file.
        assert!(checkpoint.total_elements() <= data.len() as u64 * 8, "more elements than bits");
        vq_fuzz::read_every_tensor(&mut checkpoint);
    }
});
