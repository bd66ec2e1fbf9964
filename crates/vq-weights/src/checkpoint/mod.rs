//! Checkpoint files as lists of tensors, read without burn and without trusting the file.
//!
//! [`Checkpoint::parse`] reads only the index of a file — the safetensors header, or the
//! central directory and `data.pkl` of a PyTorch zip archive — and checks every declared
//! tensor against the bytes that are really there before anything is allocated for it:
//! element type, rank, element count (overflow-checked), and that its bytes lie inside the
//! file (for PyTorch, inside its storage, which lies inside the file).
//! [`Checkpoint::read_bytes`] then reads one tensor's bytes, at most as many as the file
//! holds. A malformed file is a [`FormatError`], never a panic, an abort or an unbounded
//! allocation; the fuzz targets of `fuzz/` hold this layer to that.

mod pickle;
mod safetensors;
mod torch;

use std::collections::HashMap;
use std::io::{self, Cursor, Read, Seek, SeekFrom};
use std::path::Path;

use crate::Dtype;

/// Most dimensions a tensor may have (PyTorch allows 64; no model this workspace reads has
/// more than 5).
pub const MAX_RANK: usize = 32;

/// Most tensors a file may declare.
pub const MAX_TENSORS: usize = 1 << 20;

/// What is wrong with a checkpoint's bytes. The caller adds the file's path
/// ([`crate::WeightsError`]).
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// The file as a whole is malformed or of an unsupported kind.
    #[error("{0}")]
    File(String),
    /// One tensor's declaration does not fit the file.
    #[error("tensor `{key}`: {message}")]
    Tensor {
        /// The tensor's key in the file.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// Reading failed (the file shrank while being read, or an operating-system error).
    #[error("read error: {0}")]
    Io(#[from] io::Error),
}

impl FormatError {
    pub(crate) fn file(message: impl Into<String>) -> Self {
        Self::File(message.into())
    }

    pub(crate) fn tensor(key: &str, message: impl Into<String>) -> Self {
        Self::Tensor { key: key.to_string(), message: message.into() }
    }
}

/// The two container formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A `.safetensors` file.
    Safetensors,
    /// A PyTorch `torch.save` zip archive (`.bin`, `.pt`, `.pth`, `.ckpt`).
    PyTorch,
}

impl Format {
    /// The format a file name implies: `.safetensors` or else PyTorch.
    pub fn of_path(path: &Path) -> Self {
        match path.extension().is_some_and(|e| e == "safetensors") {
            true => Self::Safetensors,
            false => Self::PyTorch,
        }
    }
}

/// One tensor a checkpoint declares: key, element type, shape, and where its elements are.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo {
    /// The key in the file (`text_model.encoder.layers.0.mlp.fc1.weight`).
    pub key: String,
    /// Element type as stored.
    pub dtype: Dtype,
    /// Shape, outermost dimension first.
    pub shape: Vec<usize>,
    /// Number of elements (the product of `shape`, checked not to overflow).
    pub num_elements: usize,
    layout: Layout,
}

/// Where a tensor's elements lie in the file. Every field is checked against the file's length
/// when the checkpoint is parsed.
#[derive(Debug, Clone, PartialEq)]
enum Layout {
    /// `num_elements` elements in C order from byte `start` (safetensors).
    Contiguous { start: u64 },
    /// A view into a storage of `storage_len` elements at byte `start` (PyTorch): element
    /// `i` of the view (multi-index `i`) is storage element `offset + Σ iₖ·strides[k]`.
    Strided { start: u64, offset: usize, strides: Vec<usize> },
}

impl TensorInfo {
    /// Bytes of the tensor in C order, or `None` for a sub-byte type.
    pub fn num_bytes(&self) -> Option<usize> {
        self.num_elements.checked_mul(self.dtype.size()?)
    }
}

/// The index of a checkpoint file (tensors sorted by key) and the reader to fetch their bytes.
pub struct Checkpoint<R> {
    reader: R,
    tensors: Vec<TensorInfo>,
    by_key: HashMap<String, usize>,
}

impl<'a> Checkpoint<Cursor<&'a [u8]>> {
    /// Parses a checkpoint held in memory.
    pub fn from_bytes(bytes: &'a [u8], format: Format) -> Result<Self, FormatError> {
        Self::parse(Cursor::new(bytes), bytes.len() as u64, format)
    }
}

impl<R> Checkpoint<R> {
    /// Every tensor, sorted by key.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// The position of a tensor in [`tensors`](Self::tensors).
    pub fn position(&self, key: &str) -> Option<usize> {
        self.by_key.get(key).copied()
    }

    /// Total number of elements over all tensors (what a model loaded from the file can have
    /// at most).
    pub fn total_elements(&self) -> u64 {
        self.tensors.iter().map(|t| t.num_elements as u64).fold(0u64, u64::saturating_add)
    }
}

impl<R: Read + Seek> Checkpoint<R> {
    /// Parses the index of a checkpoint of `len` bytes, validating every tensor's declaration
    /// against the file. Reads no tensor data.
    pub fn parse(mut reader: R, len: u64, format: Format) -> Result<Self, FormatError> {
        let mut tensors = match format {
            Format::Safetensors => safetensors::parse(&mut reader, len)?,
            Format::PyTorch => torch::parse(&mut reader, len)?,
        };
        if tensors.len() > MAX_TENSORS {
            return Err(FormatError::file(format!(
                "declares {} tensors, more than the limit of {MAX_TENSORS}",
                tensors.len()
            )));
        }
        tensors.sort_by(|a, b| a.key.cmp(&b.key));
        let mut by_key = HashMap::with_capacity(tensors.len());
        for (i, t) in tensors.iter().enumerate() {
            if by_key.insert(t.key.clone(), i).is_some() {
                return Err(FormatError::tensor(&t.key, "the key appears twice"));
            }
        }
        Ok(Self { reader, tensors, by_key })
    }

    /// The bytes of tensor `index` (a position in [`tensors`](Self::tensors)) in C order,
    /// little-endian, in the stored element type. Reads at most the tensor's own bytes (plus,
    /// for a non-contiguous PyTorch view, the storage range it spans).
    pub fn read_bytes(&mut self, index: usize) -> Result<Vec<u8>, FormatError> {
        let Some(tensor) = self.tensors.get(index) else {
            return Err(FormatError::file(format!("no tensor number {index}")));
        };
        let key = tensor.key.as_str();
        let size = tensor.dtype.size().ok_or_else(|| {
            FormatError::tensor(key, format!("dtype {} has elements smaller than a byte", tensor.dtype))
        })?;
        let n = tensor.num_elements;
        // Parsing checked that these products and sums fit in the file.
        match &tensor.layout {
            Layout::Contiguous { start } => read_at(&mut self.reader, *start, n * size),
            Layout::Strided { start, offset, strides } => {
                if n == 0 {
                    return Ok(Vec::new());
                }
                let first = *start + (*offset * size) as u64;
                if is_contiguous(&tensor.shape, strides) {
                    return read_at(&mut self.reader, first, n * size);
                }
                let span = view_extent(&tensor.shape, strides).unwrap_or(0) + 1;
                let source = read_at(&mut self.reader, first, span * size)?;
                Ok(gather(&source, &tensor.shape, strides, size))
            }
        }
    }
}

fn read_at<R: Read + Seek>(reader: &mut R, start: u64, len: usize) -> Result<Vec<u8>, FormatError> {
    reader.seek(SeekFrom::Start(start))?;
    let mut bytes = vec![0u8; len];
    reader.read_exact(&mut bytes)?;
    Ok(bytes)
}

/// Whether a view with these strides is laid out in C order without gaps (strides of
/// dimensions of size 1 do not matter, as in PyTorch's `is_contiguous`).
fn is_contiguous(shape: &[usize], strides: &[usize]) -> bool {
    let mut expected = 1usize;
    for (&dim, &stride) in shape.iter().zip(strides).rev() {
        if dim != 1 && stride != expected {
            return false;
        }
        expected = expected.saturating_mul(dim);
    }
    true
}

/// The largest storage index a non-empty view reaches relative to its offset:
/// `Σ (shapeₖ − 1)·stridesₖ`, or `None` on overflow.
fn view_extent(shape: &[usize], strides: &[usize]) -> Option<usize> {
    shape
        .iter()
        .zip(strides)
        .try_fold(0usize, |acc, (&dim, &stride)| dim.checked_sub(1)?.checked_mul(stride)?.checked_add(acc))
}

/// Copies the elements of a strided view out of `source` (which starts at the view's first
/// element) in C order.
fn gather(source: &[u8], shape: &[usize], strides: &[usize], size: usize) -> Vec<u8> {
    let n: usize = shape.iter().product();
    let mut out = Vec::with_capacity(n * size);
    let mut index = vec![0usize; shape.len()];
    let mut position = 0usize;
    for _ in 0..n {
        out.extend_from_slice(&source[position * size..(position + 1) * size]);
        // Advance the multi-index (last dimension fastest), keeping `position` in step.
        for k in (0..shape.len()).rev() {
            // Wrapping arithmetic: a unit dimension may have any stride, and the sum steps out
            // of range only to come straight back.
            index[k] += 1;
            position = position.wrapping_add(strides[k]);
            if index[k] < shape[k] {
                break;
            }
            position = position.wrapping_sub(strides[k].wrapping_mul(shape[k]));
            index[k] = 0;
        }
    }
    out
}

/// Checks a tensor's shape: rank at most [`MAX_RANK`], and the element count (returned) does
/// not overflow.
fn checked_num_elements(key: &str, shape: &[usize]) -> Result<usize, FormatError> {
    if shape.len() > MAX_RANK {
        return Err(FormatError::tensor(
            key,
            format!("has {} dimensions, more than the limit of {MAX_RANK}", shape.len()),
        ));
    }
    shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| FormatError::tensor(key, format!("shape {shape:?} has more elements than can be counted")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contiguity_ignores_unit_dimensions() {
        assert!(is_contiguous(&[2, 3], &[3, 1]));
        assert!(is_contiguous(&[1, 3], &[0, 1]));
        assert!(is_contiguous(&[2, 1, 3], &[3, 99, 1]));
        assert!(!is_contiguous(&[2, 3], &[1, 2]));
        assert!(!is_contiguous(&[3], &[0]));
    }

    #[test]
    fn gather_reads_a_transposed_view() {
        // Storage [[0, 1, 2], [3, 4, 5]] (u8); the view is its transpose, shape [3, 2].
        let storage = [0u8, 1, 2, 3, 4, 5];
        let out = gather(&storage, &[3, 2], &[1, 3], 1);
        assert_eq!(out, vec![0, 3, 1, 4, 2, 5]);
        assert_eq!(view_extent(&[3, 2], &[1, 3]), Some(5));
        // A broadcast row: every row is the same storage row.
        assert_eq!(gather(&storage, &[2, 3], &[0, 1], 1), vec![0, 1, 2, 0, 1, 2]);
    }
}
