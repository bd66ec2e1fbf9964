//! The element types a checkpoint file can declare, independent of burn.

use std::fmt;

/// The element type of a tensor as the file declares it.
///
/// Covers what safetensors and PyTorch storages name. Types without a burn counterpart (the
/// 8-bit and smaller floats, complex numbers) can be listed but not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dtype {
    /// 64-bit float (`F64`, `torch.DoubleStorage`).
    F64,
    /// 32-bit float (`F32`, `torch.FloatStorage`).
    F32,
    /// IEEE half (`F16`, `torch.HalfStorage`).
    F16,
    /// bfloat16 (`BF16`, `torch.BFloat16Storage`).
    BF16,
    /// 64-bit signed integer (`I64`, `torch.LongStorage`).
    I64,
    /// 32-bit signed integer (`I32`, `torch.IntStorage`).
    I32,
    /// 16-bit signed integer (`I16`, `torch.ShortStorage`).
    I16,
    /// 8-bit signed integer (`I8`, `torch.CharStorage`).
    I8,
    /// 64-bit unsigned integer (`U64`).
    U64,
    /// 32-bit unsigned integer (`U32`).
    U32,
    /// 16-bit unsigned integer (`U16`).
    U16,
    /// 8-bit unsigned integer (`U8`, `torch.ByteStorage`).
    U8,
    /// Boolean, one byte each (`BOOL`, `torch.BoolStorage`).
    Bool,
    /// A type this crate can name but not read (8-bit floats, complex numbers, …), with its
    /// size in bits and the file's name for it.
    Other {
        /// The file's name for the type.
        name: &'static str,
        /// Bits per element.
        bits: usize,
    },
}

impl Dtype {
    /// Bytes per element, or `None` for sub-byte types.
    pub fn size(self) -> Option<usize> {
        match self {
            Self::F64 | Self::I64 | Self::U64 => Some(8),
            Self::F32 | Self::I32 | Self::U32 => Some(4),
            Self::F16 | Self::BF16 | Self::I16 | Self::U16 => Some(2),
            Self::I8 | Self::U8 | Self::Bool => Some(1),
            Self::Other { bits, .. } => (bits % 8 == 0).then_some(bits / 8),
        }
    }

    /// Whether the type is one of the floats a model parameter can be loaded from.
    pub fn is_float(self) -> bool {
        matches!(self, Self::F64 | Self::F32 | Self::F16 | Self::BF16)
    }

    /// The element type of a PyTorch storage class (`FloatStorage`, …), by its name in the
    /// `torch` module.
    pub fn from_torch_storage(name: &str) -> Option<Self> {
        Some(match name {
            "DoubleStorage" => Self::F64,
            "FloatStorage" => Self::F32,
            "HalfStorage" => Self::F16,
            "BFloat16Storage" => Self::BF16,
            "LongStorage" => Self::I64,
            "IntStorage" => Self::I32,
            "ShortStorage" => Self::I16,
            "CharStorage" => Self::I8,
            "ByteStorage" => Self::U8,
            "BoolStorage" => Self::Bool,
            "ComplexFloatStorage" => Self::Other { name: "complex64", bits: 64 },
            "ComplexDoubleStorage" => Self::Other { name: "complex128", bits: 128 },
            _ => return None,
        })
    }

    /// The counterpart of a safetensors dtype.
    pub fn from_safetensors(dtype: safetensors::Dtype) -> Self {
        use safetensors::Dtype as S;
        match dtype {
            S::F64 => Self::F64,
            S::F32 => Self::F32,
            S::F16 => Self::F16,
            S::BF16 => Self::BF16,
            S::I64 => Self::I64,
            S::I32 => Self::I32,
            S::I16 => Self::I16,
            S::I8 => Self::I8,
            S::U64 => Self::U64,
            S::U32 => Self::U32,
            S::U16 => Self::U16,
            S::U8 => Self::U8,
            S::BOOL => Self::Bool,
            S::F8_E4M3 => Self::Other { name: "F8_E4M3", bits: 8 },
            S::F8_E5M2 => Self::Other { name: "F8_E5M2", bits: 8 },
            S::F8_E8M0 => Self::Other { name: "F8_E8M0", bits: 8 },
            S::F6_E2M3 => Self::Other { name: "F6_E2M3", bits: 6 },
            S::F6_E3M2 => Self::Other { name: "F6_E3M2", bits: 6 },
            S::F4 => Self::Other { name: "F4", bits: 4 },
            other => Self::Other { name: "unknown", bits: other.bitsize() },
        }
    }
}

impl fmt::Display for Dtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Self::F64 => "F64",
            Self::F32 => "F32",
            Self::F16 => "F16",
            Self::BF16 => "BF16",
            Self::I64 => "I64",
            Self::I32 => "I32",
            Self::I16 => "I16",
            Self::I8 => "I8",
            Self::U64 => "U64",
            Self::U32 => "U32",
            Self::U16 => "U16",
            Self::U8 => "U8",
            Self::Bool => "BOOL",
            Self::Other { name, .. } => name,
        };
        f.write_str(name)
    }
}
