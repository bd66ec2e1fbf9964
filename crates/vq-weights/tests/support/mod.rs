//! Writers for checkpoint files, valid and malformed: safetensors bytes from a header JSON, and
//! PyTorch zip archives from tensors described the way `torch.save` pickles them.

#![allow(dead_code)]

use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

/// A fresh folder for one test.
pub fn tempdir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vq-weights-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// A safetensors file: the 8-byte header length, the header, the data.
pub fn safetensors(header: &str, data: &[u8]) -> Vec<u8> {
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

/// A tensor as `torch.save` pickles it: `_rebuild_tensor_v2(storage, offset, size, stride, …)`
/// with the storage's persistent id `('storage', torch.<class>, key, 'cpu', numel)`.
#[derive(Clone, Debug)]
pub struct TorchTensor {
    pub key: String,
    pub class: &'static str,
    pub storage: String,
    pub numel: i64,
    pub offset: i64,
    pub size: Vec<i64>,
    pub stride: Vec<i64>,
}

impl TorchTensor {
    /// A contiguous tensor of its own storage `storage`.
    pub fn contiguous(key: &str, class: &'static str, storage: &str, size: &[i64]) -> Self {
        let mut stride = vec![1i64; size.len()];
        for k in (0..size.len().saturating_sub(1)).rev() {
            stride[k] = stride[k + 1] * size[k + 1];
        }
        Self {
            key: key.into(),
            class,
            storage: storage.into(),
            numel: size.iter().product(),
            offset: 0,
            size: size.to_vec(),
            stride,
        }
    }
}

/// A pickle, written opcode by opcode.
#[derive(Default)]
pub struct Pickle(pub Vec<u8>);

impl Pickle {
    pub fn new() -> Self {
        Self(vec![0x80, 2])
    }
    pub fn op(&mut self, bytes: &[u8]) -> &mut Self {
        self.0.extend_from_slice(bytes);
        self
    }
    pub fn str(&mut self, s: &str) -> &mut Self {
        self.0.push(b'X');
        self.0.extend_from_slice(&(s.len() as u32).to_le_bytes());
        self.0.extend_from_slice(s.as_bytes());
        self
    }
    /// Any i64, as an 8-byte LONG1.
    pub fn int(&mut self, v: i64) -> &mut Self {
        self.0.extend_from_slice(&[0x8a, 8]);
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn global(&mut self, module: &str, name: &str) -> &mut Self {
        self.0.push(b'c');
        self.0.extend_from_slice(format!("{module}\n{name}\n").as_bytes());
        self
    }
    pub fn int_tuple(&mut self, values: &[i64]) -> &mut Self {
        self.op(b"(");
        values.iter().for_each(|&v| {
            self.int(v);
        });
        self.op(b"t")
    }
    /// Pushes a rebuilt tensor.
    pub fn tensor(&mut self, t: &TorchTensor) -> &mut Self {
        self.global("torch._utils", "_rebuild_tensor_v2").op(b"((").str("storage");
        self.global("torch", t.class).str(&t.storage).str("cpu").int(t.numel).op(b"tQ");
        self.int(t.offset).int_tuple(&t.size).int_tuple(&t.stride).op(&[0x89]);
        self.global("collections", "OrderedDict").op(b")Rt").op(b"R")
    }
    pub fn stop(&mut self) -> Vec<u8> {
        self.0.push(b'.');
        std::mem::take(&mut self.0)
    }
}

/// `{key: tensor, …}` as `torch.save(state_dict)` pickles it.
pub fn state_dict_pickle(tensors: &[TorchTensor]) -> Vec<u8> {
    let mut p = Pickle::new();
    p.op(b"}(");
    for t in tensors {
        p.str(&t.key).tensor(t);
    }
    p.op(b"u").stop()
}

/// A `torch.save` zip archive: `<prefix>/data.pkl`, `<prefix>/byteorder`, and one stored entry
/// per storage (`<prefix>/data/<key>`).
pub fn torch_archive(prefix: &str, pickle: &[u8], storages: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    // A fixed date: the same archive bytes on every run (the fuzz corpus is compared with them).
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Stored)
        .last_modified_time(zip::DateTime::default());
    let mut entry = |name: String, bytes: &[u8]| {
        zip.start_file(name, options).unwrap();
        zip.write_all(bytes).unwrap();
    };
    entry(format!("{prefix}/data.pkl"), pickle);
    entry(format!("{prefix}/byteorder"), b"little");
    for (key, bytes) in storages {
        entry(format!("{prefix}/data/{key}"), bytes);
    }
    zip.finish().unwrap().into_inner()
}

pub fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// The test module's checkpoint (keys `model.proj.*`, `model.norm.*`) in PyTorch layout.
pub fn block_tensors() -> Vec<(&'static str, Vec<i64>, Vec<f32>)> {
    vec![
        ("model.proj.weight", vec![2, 3], vec![1., 2., 3., 4., 5., 6.]),
        ("model.proj.bias", vec![2], vec![0.5, -0.5]),
        ("model.norm.weight", vec![2], vec![1.5, 2.5]),
        ("model.norm.bias", vec![2], vec![0.25, 0.75]),
    ]
}

/// The block checkpoint as a torch archive, one storage per tensor; `edit` may change the
/// pickled tensors and the storages before writing.
pub fn block_bin(edit: impl FnOnce(&mut Vec<TorchTensor>, &mut Vec<(String, Vec<u8>)>)) -> Vec<u8> {
    let mut tensors = Vec::new();
    let mut storages = Vec::new();
    for (i, (key, shape, values)) in block_tensors().into_iter().enumerate() {
        tensors.push(TorchTensor::contiguous(key, "FloatStorage", &i.to_string(), &shape));
        storages.push((i.to_string(), f32_bytes(&values)));
    }
    edit(&mut tensors, &mut storages);
    let storages: Vec<(&str, Vec<u8>)> = storages.iter().map(|(k, b)| (k.as_str(), b.clone())).collect();
    torch_archive("archive", &state_dict_pickle(&tensors), &storages)
}

/// The block checkpoint as safetensors; `edit` may change the (key, dtype, shape, bytes)
/// entries before the header is written.
pub fn block_safetensors(edit: impl FnOnce(&mut Vec<(String, String, Vec<i64>, Vec<u8>)>)) -> Vec<u8> {
    let mut entries: Vec<(String, String, Vec<i64>, Vec<u8>)> =
        block_tensors().into_iter().map(|(k, s, v)| (k.to_string(), "F32".to_string(), s, f32_bytes(&v))).collect();
    edit(&mut entries);
    let mut header = Vec::new();
    let mut data = Vec::new();
    for (key, dtype, shape, bytes) in &entries {
        let (start, end) = (data.len(), data.len() + bytes.len());
        header
            .push(format!("\"{key}\":{{\"dtype\":\"{dtype}\",\"shape\":{shape:?},\"data_offsets\":[{start},{end}]}}"));
        data.extend_from_slice(bytes);
    }
    safetensors(&format!("{{{}}}", header.join(",")), &data)
}

/// `depth` lists nested in one another: `[[[…]]]`.
pub fn nested_lists(depth: usize) -> Vec<u8> {
    let mut p = Pickle::new();
    p.op(b"}").str("junk");
    p.op(&vec![b'('; depth]).op(&vec![b'l'; depth]);
    p.op(b"s").stop()
}

/// Dicts of dicts shared through the memo: `levels` levels of `width` references each, so
/// the state dict describes `width^levels` tensor keys in a few KB.
pub fn shared_dicts(width: usize, levels: usize) -> Vec<u8> {
    let t = TorchTensor::contiguous("t", "FloatStorage", "0", &[1]);
    let mut p = Pickle::new();
    // Memo 0: the innermost dict {"t": tensor}.
    p.op(b"}").op(b"q\x00").str("t").tensor(&t).op(b"s");
    for level in 1..=levels {
        p.op(b"}").op(&[b'q', level as u8]).op(b"(");
        for i in 0..width {
            p.str(&format!("k{i}")).op(&[b'h', (level - 1) as u8]);
        }
        p.op(b"u");
    }
    p.stop()
}

/// A list of 1000 ints, a list holding it 1000 times, and one holding that 1000 times (10⁹
/// ints if copied), stored under `junk` next to the block's tensors.
pub fn shared_lists() -> Vec<u8> {
    let mut p = Pickle::new();
    p.op(b"}(").str("junk").op(b"(");
    for i in 0..1000 {
        p.int(i);
    }
    // Each list is memoized and popped; the last one stays as the value of `junk`.
    p.op(b"lq\x00");
    for level in 1..3u8 {
        p.op(b"0(");
        for _ in 0..1000 {
            p.op(&[b'h', level - 1]);
        }
        p.op(b"l").op(&[b'q', level]);
    }
    for (i, (key, shape, _)) in block_tensors().into_iter().enumerate() {
        p.str(key).tensor(&TorchTensor::contiguous(key, "FloatStorage", &i.to_string(), &shape));
    }
    p.op(b"u").stop()
}

/// Valid checkpoints of the test module, in both formats and in the PyTorch layouts torch
/// writes (the fuzz corpus starts from them too).
pub fn valid_cases() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    vec![
        ("valid_block", "safetensors", block_safetensors(|_| {})),
        ("valid_block", "bin", block_bin(|_, _| {})),
        ("valid_shared_storage", "bin", shared_storage_bin()),
        ("valid_memo_bomb_lists", "bin", shared_lists_bin()),
    ]
}

/// [`shared_lists`] with the block's storages: a valid checkpoint.
pub fn shared_lists_bin() -> Vec<u8> {
    let storages: Vec<(String, Vec<u8>)> =
        block_tensors().iter().enumerate().map(|(i, (_, _, v))| (i.to_string(), f32_bytes(v))).collect();
    let storages: Vec<(&str, Vec<u8>)> = storages.iter().map(|(k, b)| (k.as_str(), b.clone())).collect();
    torch_archive("archive", &shared_lists(), &storages)
}

/// The block with every tensor in one storage at increasing offsets, and the Linear weight
/// saved as a transposed (non-contiguous) view.
pub fn shared_storage_bin() -> Vec<u8> {
    block_bin(|t, s| {
        let mut storage = Vec::new();
        let mut offset = 0;
        for (i, tensor) in t.iter_mut().enumerate() {
            tensor.storage = "0".into();
            tensor.offset = offset;
            offset += tensor.numel;
            storage.extend_from_slice(&s[i].1);
        }
        // Storage order [[1, 4], [2, 5], [3, 6]] read through strides (1, 2) is [[1, 2, 3], [4, 5, 6]].
        storage[..24].copy_from_slice(&f32_bytes(&[1., 4., 2., 5., 3., 6.]));
        t[0].stride = vec![1, 2];
        let numel = offset;
        t.iter_mut().for_each(|t| t.numel = numel);
        *s = vec![("0".into(), storage)];
    })
}

/// Every malformed checkpoint the tests build, by name, with its file extension: the
/// cases the loader must reject with a typed error (and the seeds of the fuzz corpus).
pub fn malformed_cases() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let retype = |dtype: &'static str, bytes_per: usize| {
        block_safetensors(move |e| {
            e[0].1 = dtype.into();
            e[0].3 = vec![1u8; 6 * bytes_per];
        })
    };
    let restore = |class: &'static str, bytes_per: usize| {
        block_bin(move |t, s| {
            t[0].class = class;
            s[0].1 = vec![1u8; 6 * bytes_per];
        })
    };
    vec![
        ("dtype_i8", "safetensors", retype("I8", 1)),
        ("dtype_u8", "safetensors", retype("U8", 1)),
        ("dtype_bool", "safetensors", retype("BOOL", 1)),
        ("dtype_i64", "safetensors", retype("I64", 8)),
        ("dtype_byte_storage", "bin", restore("ByteStorage", 1)),
        ("dtype_long_storage", "bin", restore("LongStorage", 8)),
        ("dtype_bool_storage", "bin", restore("BoolStorage", 1)),
        ("deep_nesting", "bin", torch_archive("archive", &nested_lists(1_000), &[])),
        ("memo_bomb_dicts", "bin", torch_archive("archive", &shared_dicts(1000, 3), &[("0", f32_bytes(&[1.0]))])),
        ("huge_shape_bin", "bin", block_bin(|t, _| t[1].size = vec![1_000_000_000_000])),
        ("huge_shape_safetensors", "safetensors", block_safetensors(|e| e[1].2 = vec![1_000_000_000_000])),
        ("short_storage", "bin", block_bin(|_, s| s[0].1.truncate(12))),
        ("missing_storage", "bin", block_bin(|_, s| s.remove(1).1.clear())),
        ("offset_past_end", "bin", block_bin(|t, _| t[0].offset = 6)),
        (
            "offset_overflow",
            "bin",
            block_bin(|t, _| {
                t[0].offset = i64::MAX;
                t[0].stride = vec![i64::MAX, 1];
            }),
        ),
        ("storage_size_overflow", "bin", block_bin(|t, _| t[0].numel = i64::MAX)),
        ("header_too_large", "safetensors", {
            let mut b = block_safetensors(|_| {});
            b[..8].copy_from_slice(&(1u64 << 40).to_le_bytes());
            b
        }),
        ("header_offsets_overflow", "safetensors", {
            safetensors(r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,18446744073709551615]}}"#, &[0; 8])
        }),
        ("non_finite", "bin", block_bin(|_, s| s[0].1[4..8].copy_from_slice(&f32::NAN.to_le_bytes()))),
        ("legacy_pickle", "bin", state_dict_pickle(&[])),
        ("unknown_global", "bin", {
            let mut p = Pickle::new();
            p.op(b"}").str("x").global("os", "system").op(b"s");
            torch_archive("archive", &p.stop(), &[])
        }),
    ]
}
