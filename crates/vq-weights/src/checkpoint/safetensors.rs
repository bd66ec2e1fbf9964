//! The index of a safetensors file.
//!
//! The header (8-byte little-endian length, then JSON) is parsed by the `safetensors` crate's
//! `Metadata`, which checks that every dtype is known, that each tensor's byte range matches
//! its shape and dtype (overflow-checked), and that the ranges tile the data section from 0
//! without gaps or overlaps. What it leaves to the caller is done here: a header-size cap
//! checked before the header is read, the header inside the file, the data section exactly as
//! long as the tensors need, and a rank limit.

use std::io::{Read, Seek, SeekFrom};

use safetensors::tensor::Metadata;

use super::{checked_num_elements, FormatError, Layout, TensorInfo};
use crate::Dtype;

/// Largest header read: 64 MiB (a header lists about 100 bytes per tensor; the safetensors
/// crate itself refuses more than 100 MB).
pub const MAX_HEADER_BYTES: u64 = 64 << 20;

pub(super) fn parse<R: Read + Seek>(reader: &mut R, len: u64) -> Result<Vec<TensorInfo>, FormatError> {
    if len < 8 {
        return Err(FormatError::file(format!(
            "the file has {len} bytes; a safetensors file starts with an 8-byte header length"
        )));
    }
    reader.seek(SeekFrom::Start(0))?;
    let mut n = [0u8; 8];
    reader.read_exact(&mut n)?;
    let header_len = u64::from_le_bytes(n);
    if header_len > MAX_HEADER_BYTES {
        return Err(FormatError::file(format!(
            "the header length field says {header_len} bytes, more than the limit of {MAX_HEADER_BYTES}"
        )));
    }
    let data_start = 8 + header_len;
    if data_start > len {
        return Err(FormatError::file(format!(
            "the header length field says {header_len} bytes, but the file has only {} after it",
            len - 8
        )));
    }
    let mut header = vec![0u8; header_len as usize];
    reader.read_exact(&mut header)?;
    let header = std::str::from_utf8(&header)
        .map_err(|e| FormatError::file(format!("the header is not UTF-8 (byte {})", e.valid_up_to())))?;
    let metadata: Metadata =
        serde_json::from_str(header).map_err(|e| FormatError::file(format!("invalid header: {e}")))?;

    let data_len = len - data_start;
    let declared = metadata.data_len() as u64;
    if declared != data_len {
        return Err(FormatError::file(format!(
            "the tensors declare {declared} bytes of data, but the file has {data_len} after the header"
        )));
    }
    let mut tensors = Vec::new();
    for (key, info) in metadata.tensors() {
        let num_elements = checked_num_elements(&key, &info.shape)?;
        let start = data_start + info.data_offsets.0 as u64;
        tensors.push(TensorInfo {
            dtype: Dtype::from_safetensors(info.dtype),
            shape: info.shape.clone(),
            num_elements,
            layout: Layout::Contiguous { start },
            key,
        });
    }
    Ok(tensors)
}
