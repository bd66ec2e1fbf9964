//! Training batches rendered ahead of the accelerator on CPU worker threads.
//!
//! Batch `b` holds samples `b · size .. (b + 1) · size` of a split, so a run is reproducible
//! and a resumed run continues the same stream. Worker `w` of `W` renders batches
//! `first + w, first + w + W, …` into its own bounded channel and the consumer reads the
//! channels round-robin, which keeps batch order fixed whatever the thread timing.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;

use burn::tensor::{backend::Backend, Int, Tensor, TensorData};
use clip_text::{Tokenizer, Truncation};

use crate::data::{Dataset, Split};

/// Batches each worker may have ready before it waits.
const QUEUE_DEPTH: usize = 3;

/// One batch on the host.
#[derive(Debug, Clone)]
pub struct HostBatch {
    /// The batch number in the stream.
    pub index: u64,
    /// `[size, 3, image_size, image_size]` values in [−1, 1] (NCHW, row-major).
    pub images: Vec<f32>,
    /// The captions.
    pub captions: Vec<String>,
    /// `[size, model_max_length]` padded token ids when a tokenizer was given, else empty.
    pub token_ids: Vec<i64>,
    /// Batch size.
    pub size: usize,
    /// Image side.
    pub image_size: usize,
    /// Padded caption length (0 without a tokenizer).
    pub text_length: usize,
}

impl HostBatch {
    /// The images as a `[size, 3, h, w]` tensor.
    pub fn images_tensor<B: Backend>(&self, device: &B::Device) -> Tensor<B, 4> {
        let s = self.image_size;
        Tensor::from_data(TensorData::new(self.images.clone(), [self.size, 3, s, s]), device)
    }

    /// The batch split into `parts` equal consecutive shards (for data parallelism).
    ///
    /// # Panics
    /// If the batch does not split evenly.
    pub fn shards(&self, parts: usize) -> Vec<HostBatch> {
        let (image, text) = (3 * self.image_size * self.image_size, self.text_length);
        self.shard_ranges(parts)
            .into_iter()
            .map(|samples| {
                let size = samples.len();
                HostBatch {
                    images: self.images[samples.start * image..samples.end * image].to_vec(),
                    captions: self.captions[samples.clone()].to_vec(),
                    token_ids: self.token_ids[samples.start * text..samples.end * text].to_vec(),
                    size,
                    ..self.clone()
                }
            })
            .collect()
    }

    /// The sample indices of each of `parts` equal consecutive shards (what [`Self::shards`] cuts).
    ///
    /// # Panics
    /// If `parts` is 0 or does not divide the batch.
    pub fn shard_ranges(&self, parts: usize) -> Vec<std::ops::Range<usize>> {
        assert!(parts > 0 && self.size.is_multiple_of(parts), "a batch of {} in {parts} shards", self.size);
        let size = self.size / parts;
        (0..parts).map(|part| part * size..(part + 1) * size).collect()
    }

    /// `[size, 1, h, w]`: each pixel's loss weight — 1 on the background, `foreground` where it
    /// differs from its image's background ([`foreground_mask`]), and `outline`, when given, on
    /// the band where the two meet ([`outline_mask`]), whichever side it lies on.
    pub fn pixel_weights_tensor<B: Backend>(
        &self,
        foreground: f64,
        outline: Option<f64>,
        device: &B::Device,
    ) -> Tensor<B, 4> {
        let s = self.image_size;
        let mask = foreground_mask(&self.images, self.size, s);
        // (weight, band) of the outline term.
        let outline = outline.map(|weight| (weight as f32, outline_mask(&mask, self.size, s)));
        let weights = mask
            .iter()
            .enumerate()
            .map(|(p, &m)| match &outline {
                Some((weight, band)) if band[p] > 0.5 => *weight,
                _ if m > 0.5 => foreground as f32,
                _ => 1.0,
            })
            .collect();
        Tensor::from_data(TensorData::new(weights, [self.size, 1, s, s]), device)
    }

    /// The token ids as a `[size, model_max_length]` tensor.
    ///
    /// # Panics
    /// If the stream has no tokenizer.
    pub fn ids_tensor<B: Backend>(&self, device: &B::Device) -> Tensor<B, 2, Int> {
        assert!(self.text_length > 0, "the batch stream was built without a tokenizer");
        Tensor::from_data(TensorData::new(self.token_ids.clone(), [self.size, self.text_length]), device)
    }
}

/// 1.0 where a pixel of `images` (`[size, 3, side, side]`, CHW) differs in any channel from its
/// image's most common colour — the flat background of every scene — else 0.0; anti-aliased
/// edge pixels count as foreground. Returns `[size, side, side]` values.
pub fn foreground_mask(images: &[f32], size: usize, side: usize) -> Vec<f32> {
    let plane = side * side;
    assert_eq!(images.len(), size * 3 * plane, "images must be [{size}, 3, {side}, {side}]");
    let mut mask = Vec::with_capacity(size * plane);
    for image in images.chunks_exact(3 * plane) {
        let colour = |p: usize| [image[p].to_bits(), image[plane + p].to_bits(), image[2 * plane + p].to_bits()];
        let background = most_common((0..plane).map(colour)).expect("a non-empty image");
        mask.extend((0..plane).map(|p| f32::from(u8::from(colour(p) != background))));
    }
    mask
}

/// The most frequent of `values` (ties: the largest value, so the choice never depends on the
/// order), or `None` if there are none. A scene's most common colour is its background.
pub(crate) fn most_common<T: Copy + Eq + Hash + Ord>(values: impl IntoIterator<Item = T>) -> Option<T> {
    let mut counts = HashMap::new();
    for value in values {
        *counts.entry(value).or_insert(0usize) += 1;
    }
    counts.into_iter().max_by_key(|&(value, n)| (n, value)).map(|(value, _)| value)
}

/// 1.0 where a pixel's 3 × 3 neighbourhood (inside the image) holds both foreground and background
/// pixels of `mask` (`[size, side, side]`, from [`foreground_mask`]) — a two-pixel band along
/// every object's outline, on both sides of it — else 0.0.
pub fn outline_mask(mask: &[f32], size: usize, side: usize) -> Vec<f32> {
    let plane = side * side;
    assert_eq!(mask.len(), size * plane, "the mask must be [{size}, {side}, {side}]");
    let mut outline = Vec::with_capacity(mask.len());
    for image in mask.chunks_exact(plane) {
        outline.extend((0..plane).map(|p| {
            let (x, y) = (p % side, p / side);
            let rows = y.saturating_sub(1)..=(y + 1).min(side - 1);
            let mut seen = [false; 2];
            for ny in rows {
                for nx in x.saturating_sub(1)..=(x + 1).min(side - 1) {
                    seen[usize::from(image[ny * side + nx] > 0.5)] = true;
                }
            }
            f32::from(u8::from(seen[0] && seen[1]))
        }));
    }
    outline
}

/// Renders one batch (and tokenizes its captions). `free_colors`: the fraction of images
/// [`Dataset::repaint`] repaints in free colours (stage 1's augmentation; 0 for none).
///
/// # Panics
/// If images are repainted and captions tokenized: repainted images do not show their captions.
pub fn render_batch(
    dataset: &Dataset,
    split: Split,
    size: usize,
    index: u64,
    tokenizer: Option<&Tokenizer>,
    free_colors: f64,
) -> HostBatch {
    assert!(
        tokenizer.is_none() || free_colors == 0.0,
        "repainted images (free colours) do not show their captions: stage 1 only"
    );
    let image_size = dataset.config().image_size as usize;
    let plane = image_size * image_size;
    let mut images = Vec::with_capacity(size * 3 * plane);
    let mut captions = Vec::with_capacity(size);
    let mut token_ids = Vec::new();
    for i in 0..size as u64 {
        let item = index * size as u64 + i;
        let sample = dataset.sample(split, item);
        let repainted = (free_colors > 0.0).then(|| dataset.repaint(&sample, split, item, free_colors)).flatten();
        // HWC bytes → CHW floats in [−1, 1] (the convention of `data::images_to_tensor`).
        let bytes = repainted.as_ref().unwrap_or(&sample.image).as_raw();
        for channel in 0..3 {
            images.extend(bytes[channel..].iter().step_by(3).map(|&b| f32::from(b) / 127.5 - 1.0));
        }
        if let Some(tokenizer) = tokenizer {
            let padded =
                tokenizer.encode_padded(&sample.caption, Truncation::Diffusers).expect("dataset captions tokenize");
            token_ids.extend(padded.ids.into_iter().map(i64::from));
        }
        captions.push(sample.caption);
    }
    HostBatch {
        index,
        images,
        captions,
        token_ids,
        size,
        image_size,
        text_length: tokenizer.map_or(0, Tokenizer::model_max_length),
    }
}

/// An endless, ordered stream of batches rendered by worker threads.
pub struct BatchStream {
    receivers: Vec<Receiver<HostBatch>>,
    first: u64,
    next: u64,
    workers: Vec<JoinHandle<()>>,
}

impl BatchStream {
    /// Starts `workers` threads rendering batches `first, first + 1, …` of `split` (arguments as
    /// [`render_batch`]'s).
    pub fn spawn(
        dataset: Arc<Dataset>,
        split: Split,
        size: usize,
        first: u64,
        workers: usize,
        tokenizer: Option<Arc<Tokenizer>>,
        free_colors: f64,
    ) -> Self {
        let workers = workers.max(1);
        let mut receivers = Vec::with_capacity(workers);
        let mut handles = Vec::with_capacity(workers);
        for w in 0..workers as u64 {
            let (sender, receiver) = sync_channel(QUEUE_DEPTH);
            let dataset = Arc::clone(&dataset);
            let tokenizer = tokenizer.clone();
            handles.push(std::thread::spawn(move || {
                let mut index = first + w;
                // Stops when the stream is dropped (the send fails).
                let render = |index| render_batch(&dataset, split, size, index, tokenizer.as_deref(), free_colors);
                while sender.send(render(index)).is_ok() {
                    index += workers as u64;
                }
            }));
            receivers.push(receiver);
        }
        Self { receivers, first, next: first, workers: handles }
    }

    /// The next batch in order (waits for its worker).
    ///
    /// # Panics
    /// If a worker thread died (a rendering panic).
    pub fn next_batch(&mut self) -> HostBatch {
        let worker = ((self.next - self.first) % self.receivers.len() as u64) as usize;
        let batch = self.receivers[worker].recv().expect("a batch worker thread panicked");
        debug_assert_eq!(batch.index, self.next);
        self.next += 1;
        batch
    }
}

impl Drop for BatchStream {
    fn drop(&mut self) {
        // Closing the channels ends the workers after their current batch.
        self.receivers.clear();
        for handle in self.workers.drain(..) {
            handle.join().ok();
        }
    }
}

#[cfg(test)]
mod tests {
    use burn::backend::NdArray;

    use super::*;
    use crate::data::DatasetConfig;

    #[test]
    fn the_stream_is_ordered_and_matches_direct_rendering() {
        let config = DatasetConfig { image_size: 32, supersampling: 1, ..DatasetConfig::default() };
        let dataset = Arc::new(Dataset::new(config, 5).expect("dataset"));
        let mut stream = BatchStream::spawn(Arc::clone(&dataset), Split::Train, 3, 7, 3, None, 0.5);
        let mut repainted = 0;
        for expected in 7..14 {
            let batch = stream.next_batch();
            assert_eq!(batch.index, expected);
            let direct = render_batch(&dataset, Split::Train, 3, expected, None, 0.5);
            assert_eq!(batch.images, direct.images);
            assert_eq!(batch.captions[1], dataset.sample(Split::Train, expected * 3 + 1).caption);
            // Half the images (in expectation) are repainted: the batches of 21 images differ.
            repainted +=
                usize::from(batch.images != render_batch(&dataset, Split::Train, 3, expected, None, 0.0).images);
        }
        assert!(repainted > 0, "free colours 0.5 repainted none of 21 images");
    }

    #[test]
    #[should_panic(expected = "do not show their captions")]
    fn repainted_images_are_refused_with_captions() {
        let dataset = Dataset::new(DatasetConfig { image_size: 32, ..DatasetConfig::default() }, 5).expect("dataset");
        let tokenizer = Tokenizer::from_dir(
            &std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/tiny/hub/tokenizer"),
        )
        .expect("tokenizer");
        render_batch(&dataset, Split::Train, 2, 0, Some(&tokenizer), 0.5);
    }

    #[test]
    fn shards_are_consecutive_slices_that_put_the_batch_back_together() {
        let config = DatasetConfig { image_size: 32, supersampling: 1, ..DatasetConfig::default() };
        let dataset = Dataset::new(config, 5).expect("dataset");
        let tokenizer = Tokenizer::from_dir(
            &std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/tiny/hub/tokenizer"),
        )
        .expect("tokenizer");
        let batch = render_batch(&dataset, Split::Train, 6, 2, Some(&tokenizer), 0.0);
        let shards = batch.shards(3);
        assert!(shards
            .iter()
            .all(|shard| shard.size == 2 && shard.index == 2 && shard.text_length == batch.text_length));
        assert_eq!(shards.iter().flat_map(|s| s.images.clone()).collect::<Vec<_>>(), batch.images);
        assert_eq!(shards.iter().flat_map(|s| s.token_ids.clone()).collect::<Vec<_>>(), batch.token_ids);
        assert_eq!(shards.iter().flat_map(|s| s.captions.clone()).collect::<Vec<_>>(), batch.captions);
        // The second shard's first sample is the batch's third.
        assert_eq!(shards[1].captions[0], dataset.sample(Split::Train, 2 * 6 + 2).caption);
    }

    #[test]
    fn the_most_common_value_wins_and_ties_go_to_the_largest_whatever_the_order() {
        assert_eq!(most_common([3, 1, 3, 2]), Some(3));
        assert_eq!(most_common([1, 2, 2, 1]), Some(2));
        assert_eq!(most_common([2, 1, 1, 2]), Some(2));
        assert_eq!(most_common(Vec::<u8>::new()), None);
    }

    #[test]
    fn the_foreground_is_what_differs_from_the_most_common_colour() {
        // Two 3 × 3 images: a flat one, and one whose 2 top-left pixels differ in one channel each.
        let mut images = vec![0.5_f32; 2 * 3 * 9];
        images[27] = -1.0; // image 1, red, pixel 0
        images[27 + 9 + 1] = 1.0; // image 1, green, pixel 1
        let mask = foreground_mask(&images, 2, 3);
        assert_eq!(&mask[..9], &[0.0; 9]);
        assert_eq!(&mask[9..], &[1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
    }

    #[test]
    fn the_outline_is_the_band_where_foreground_meets_background() {
        // One 5 × 5 mask with a 2 × 2 object at (1, 1)–(2, 2): every pixel within one step
        // of both classes is on the outline (x and y in 0..=3); row 4 and column 4 are not.
        let mut mask = vec![0.0_f32; 25];
        for p in [6, 7, 11, 12] {
            mask[p] = 1.0;
        }
        let outline = outline_mask(&mask, 1, 5);
        #[rustfmt::skip]
        let expected = [
            1.0, 1.0, 1.0, 1.0, 0.0,
            1.0, 1.0, 1.0, 1.0, 0.0,
            1.0, 1.0, 1.0, 1.0, 0.0,
            1.0, 1.0, 1.0, 1.0, 0.0,
            0.0, 0.0, 0.0, 0.0, 0.0,
        ];
        assert_eq!(outline, expected);
        // A flat image has no outline.
        assert_eq!(outline_mask(&[0.0; 9], 1, 3), vec![0.0; 9]);
    }

    #[test]
    fn pixel_weights_follow_the_background_the_objects_and_their_outlines() {
        let config = DatasetConfig { image_size: 32, ..DatasetConfig::default() };
        let dataset = Dataset::new(config, 5).expect("dataset");
        let batch = render_batch(&dataset, Split::Train, 2, 0, None, 0.0);
        let mask = foreground_mask(&batch.images, 2, 32);
        let band = outline_mask(&mask, 2, 32);
        let weights = |outline| {
            let tensor = batch.pixel_weights_tensor::<NdArray<f32>>(10.0, outline, &Default::default());
            assert_eq!(tensor.dims(), [2, 1, 32, 32]);
            tensor.into_data().to_vec::<f32>().expect("f32 weights")
        };
        let plain: Vec<f32> = mask.iter().map(|&m| if m > 0.5 { 10.0 } else { 1.0 }).collect();
        assert_eq!(weights(None), plain);
        let outlined: Vec<f32> = plain.iter().zip(&band).map(|(&w, &o)| if o > 0.5 { 30.0 } else { w }).collect();
        assert_eq!(weights(Some(30.0)), outlined);
        assert!(band.iter().any(|&o| o > 0.5) && mask.iter().zip(&band).any(|(&m, &o)| m > 0.5 && o < 0.5));
    }

    #[test]
    fn rendered_objects_are_foreground_and_cover_a_few_percent() {
        let config = DatasetConfig { image_size: 64, ..DatasetConfig::default() };
        let dataset = Dataset::new(config, 3).expect("dataset");
        let batch = render_batch(&dataset, Split::Train, 16, 0, None, 0.0);
        let mask = foreground_mask(&batch.images, 16, 64);
        for (i, image) in mask.chunks_exact(64 * 64).enumerate() {
            let fraction = image.iter().sum::<f32>() / (64.0 * 64.0);
            // A small object's box is ≥ 0.42 of a 21-pixel cell (≥ 40 pixels even as a
            // triangle); two large ones stay under a quarter of the image.
            assert!((0.009..0.25).contains(&fraction), "image {i}: foreground {fraction}");
        }
    }
}
