//! The index of a PyTorch checkpoint: a `torch.save` zip archive (torch ≥ 1.6).
//!
//! The archive holds `<name>/data.pkl` (the pickled state dict, read by [`super::pickle`]) and
//! one entry `<name>/data/<key>` per storage. torch stores every entry uncompressed, so a
//! storage's bytes are a byte range of the file; a compressed entry is refused (no
//! decompression, so no zip bomb). Every tensor is checked against its storage: the storage
//! entry exists, holds exactly the bytes its declaration says, and the tensor's view (offset,
//! shape, strides) stays inside it — with overflow-checked arithmetic, before any allocation.
//! The legacy formats (torch < 1.6 raw pickles, old tar archives) are named and refused.

use std::collections::{HashMap, HashSet};
use std::io::{Read, Seek, SeekFrom};
use std::rc::Rc;

use zip::{CompressionMethod, ZipArchive};

use super::pickle::{self, Value};
use super::{checked_num_elements, view_extent, FormatError, Layout, TensorInfo};

/// Largest `data.pkl` read: 64 MiB (a state dict pickle takes about 300 bytes per tensor).
pub const MAX_PICKLE_BYTES: u64 = 64 << 20;
/// Most dict entries visited while collecting tensors (nested dicts shared through the memo
/// could otherwise describe exponentially many keys); a state dict has a few thousand.
const MAX_VISITS: usize = 1 << 18;
/// Most bytes of tensor keys collected.
const MAX_KEY_BYTES: usize = 64 << 20;

/// A stored (uncompressed) archive entry: its byte range in the file.
struct Entry {
    start: u64,
    len: u64,
    stored: bool,
}

pub(super) fn parse<R: Read + Seek>(reader: &mut R, len: u64) -> Result<Vec<TensorInfo>, FormatError> {
    check_zip_magic(reader, len)?;
    let entries = read_entries(reader, len)?;

    let pickles: Vec<&String> = entries.keys().filter(|name| is_data_pkl(name)).collect();
    let pickle_name = match pickles.as_slice() {
        [one] => (*one).clone(),
        [] => return Err(FormatError::file("the zip archive has no `data.pkl`: not a torch.save checkpoint")),
        many => {
            return Err(FormatError::file(format!(
                "the zip archive has {} `data.pkl` entries, expected one",
                many.len()
            )))
        }
    };
    let prefix = &pickle_name[..pickle_name.len() - "data.pkl".len()];

    if let Some(entry) = entries.get(&format!("{prefix}byteorder")) {
        let bytes = read_entry(reader, entry, 16, "byteorder")?;
        if bytes.as_slice() != b"little" {
            return Err(FormatError::file(format!(
                "the archive's byte order is `{}`; only little-endian checkpoints are supported",
                String::from_utf8_lossy(&bytes)
            )));
        }
    }
    let pickle_entry = &entries[&pickle_name];
    let data = read_entry(reader, pickle_entry, MAX_PICKLE_BYTES, &pickle_name)?;
    let root = pickle::read(&data).map_err(|e| FormatError::file(format!("{pickle_name}: {e}")))?;

    let mut found = Vec::new();
    let Value::Dict(_) = root else {
        return Err(FormatError::file(format!(
            "{pickle_name} holds a pickled {}, not a dict of tensors (a whole pickled model rather than a state_dict?)",
            root.type_name()
        )));
    };
    let mut walk = Walk { visits: 0, key_bytes: 0, tensors: &mut found };
    walk.collect(&root, "")?;

    let mut seen = HashSet::new();
    found
        .into_iter()
        .map(|(key, tensor)| {
            if !seen.insert(key.clone()) {
                return Err(FormatError::tensor(&key, "the key appears twice"));
            }
            tensor_info(key, &tensor, prefix, &entries)
        })
        .collect()
}

/// Recognises a zip archive, or names the legacy format the file is in.
fn check_zip_magic<R: Read + Seek>(reader: &mut R, len: u64) -> Result<(), FormatError> {
    let mut head = [0u8; 262];
    let n = (len.min(262)) as usize;
    reader.seek(SeekFrom::Start(0))?;
    reader.read_exact(&mut head[..n])?;
    let head = &head[..n];
    if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        return Ok(());
    }
    if head.starts_with(&[0x80]) {
        return Err(FormatError::file(
            "a raw pickle (the legacy format of torch < 1.6), not a zip archive: re-save it with a recent torch \
             or convert it to safetensors",
        ));
    }
    if head.len() >= 262 && &head[257..262] == b"ustar" {
        return Err(FormatError::file(
            "a tar archive (the format of torch < 0.4), not a zip archive: re-save it with a recent torch",
        ));
    }
    Err(FormatError::file("not a PyTorch checkpoint: neither a zip archive nor a known legacy format"))
}

/// The byte range of every archive entry, by name.
fn read_entries<R: Read + Seek>(reader: &mut R, len: u64) -> Result<HashMap<String, Entry>, FormatError> {
    let zip_error = |e: zip::result::ZipError| FormatError::file(format!("invalid zip archive: {e}"));
    reader.seek(SeekFrom::Start(0))?;
    let mut archive = ZipArchive::new(&mut *reader).map_err(zip_error)?;
    let mut entries = HashMap::with_capacity(archive.len().min(super::MAX_TENSORS));
    for i in 0..archive.len() {
        if i >= super::MAX_TENSORS * 2 {
            return Err(FormatError::file("the zip archive has too many entries"));
        }
        let file = archive.by_index_raw(i).map_err(zip_error)?;
        let name = file.name().to_string();
        let start =
            file.data_start().ok_or_else(|| FormatError::file(format!("zip entry `{name}` has no data offset")))?;
        let stored = file.compression() == CompressionMethod::Stored && !file.encrypted();
        let entry_len = file.compressed_size();
        if stored && file.size() != entry_len {
            return Err(FormatError::file(format!("zip entry `{name}` is stored but its two sizes differ")));
        }
        let end = start.checked_add(entry_len);
        if end.is_none_or(|end| end > len) {
            return Err(FormatError::file(format!(
                "zip entry `{name}` ({entry_len} bytes at {start}) runs past the end of the file ({len} bytes)"
            )));
        }
        if entries.insert(name.clone(), Entry { start, len: entry_len, stored }).is_some() {
            return Err(FormatError::file(format!("zip entry `{name}` appears twice")));
        }
    }
    Ok(entries)
}

/// `data.pkl` at the root or one folder deep (torch names the folder after the file).
fn is_data_pkl(name: &str) -> bool {
    name == "data.pkl"
        || name.strip_suffix("/data.pkl").is_some_and(|folder| !folder.is_empty() && !folder.contains('/'))
}

fn read_entry<R: Read + Seek>(reader: &mut R, entry: &Entry, max: u64, name: &str) -> Result<Vec<u8>, FormatError> {
    if !entry.stored {
        return Err(FormatError::file(format!(
            "zip entry `{name}` is compressed or encrypted; torch.save stores entries uncompressed"
        )));
    }
    if entry.len > max {
        return Err(FormatError::file(format!(
            "zip entry `{name}` has {} bytes, more than the limit of {max}",
            entry.len
        )));
    }
    reader.seek(SeekFrom::Start(entry.start))?;
    let mut bytes = vec![0u8; entry.len as usize];
    reader.read_exact(&mut bytes)?;
    Ok(bytes)
}

struct Walk<'a> {
    visits: usize,
    key_bytes: usize,
    tensors: &'a mut Vec<(String, Rc<pickle::TensorRef>)>,
}

impl Walk<'_> {
    /// Collects the tensors of a (nested) dict under dotted keys. Other values (ints, strings,
    /// lists, …) carry no weights and are skipped. Recursion is bounded by the pickle's
    /// nesting limit; the work by [`MAX_VISITS`] and [`MAX_KEY_BYTES`].
    fn collect(&mut self, value: &Value, prefix: &str) -> Result<(), FormatError> {
        let Value::Dict(dict) = value else { return Ok(()) };
        for (key, value) in dict.items.borrow().iter() {
            self.visits += 1;
            if self.visits > MAX_VISITS {
                return Err(FormatError::file(format!("the state dict has more than {MAX_VISITS} entries")));
            }
            if !matches!(value, Value::Dict(_) | Value::Tensor(_)) {
                continue;
            }
            let Value::Str(key) = key else {
                return Err(FormatError::file(format!(
                    "a dict key under `{prefix}` is a {}, not a string",
                    key.type_name()
                )));
            };
            let full = match prefix.is_empty() {
                true => key.to_string(),
                false => format!("{prefix}.{key}"),
            };
            self.key_bytes += full.len();
            if self.key_bytes > MAX_KEY_BYTES {
                return Err(FormatError::file(format!("the tensor keys take more than {MAX_KEY_BYTES} bytes")));
            }
            match value {
                Value::Tensor(t) => self.tensors.push((full, t.clone())),
                _ => self.collect(value, &full)?,
            }
        }
        Ok(())
    }
}

/// Checks a tensor against its storage entry (whose range [`read_entries`] checked against
/// the file).
fn tensor_info(
    key: String,
    tensor: &pickle::TensorRef,
    prefix: &str,
    entries: &HashMap<String, Entry>,
) -> Result<TensorInfo, FormatError> {
    let fail = |message: String| Err(FormatError::tensor(&key, message));
    let storage = &tensor.storage;
    let record = format!("data/{}", storage.key);
    let Some(entry) = entries.get(&format!("{prefix}{record}")) else {
        return fail(format!("its storage `{record}` is missing from the archive"));
    };
    if !entry.stored {
        return fail(format!("its storage `{record}` is compressed; torch.save stores storages uncompressed"));
    }
    let Some(size) = storage.dtype.size() else {
        return fail(format!("dtype {} has elements smaller than a byte", storage.dtype));
    };
    let declared = storage.numel.checked_mul(size as u64);
    if declared != Some(entry.len) {
        return fail(format!(
            "its storage `{record}` holds {} bytes, but the pickle declares {} {} values ({} bytes)",
            entry.len,
            storage.numel,
            storage.dtype,
            declared.map_or("too many".to_string(), |d| d.to_string())
        ));
    }
    let to_usize = |v: u64, what: &str| {
        usize::try_from(v).map_err(|_| FormatError::tensor(&key, format!("{what} {v} is too large")))
    };
    let shape = tensor.size.iter().map(|&d| to_usize(d, "dimension")).collect::<Result<Vec<_>, _>>()?;
    let strides = tensor.stride.iter().map(|&s| to_usize(s, "stride")).collect::<Result<Vec<_>, _>>()?;
    let offset = to_usize(tensor.offset, "storage offset")?;
    let numel = to_usize(storage.numel, "storage size")?;
    let num_elements = checked_num_elements(&key, &shape)?;

    if num_elements == 0 {
        if offset > numel {
            return fail(format!("storage offset {offset} is past the end of its storage `{record}` ({numel} values)"));
        }
    } else {
        // The last element the view reaches must lie inside the storage.
        let last = view_extent(&shape, &strides).and_then(|e| e.checked_add(offset));
        match last {
            Some(last) if last < numel => {}
            _ => {
                return fail(format!(
                    "shape {shape:?} with strides {strides:?} at offset {offset} reaches past the end of its \
                     storage `{record}` ({numel} {} values)",
                    storage.dtype
                ))
            }
        }
        if num_elements > numel {
            return fail(format!(
                "shape {shape:?} has {num_elements} elements but its storage `{record}` holds {numel}: \
                 broadcast (overlapping) views are not supported"
            ));
        }
    }
    Ok(TensorInfo {
        dtype: storage.dtype,
        shape,
        num_elements,
        layout: Layout::Strided { start: entry.start, offset, strides },
        key,
    })
}
