//! Tensor bytes (little-endian, C order) to burn [`TensorData`], and the checks a parameter's
//! values must pass.

use burn::tensor::{DType, TensorData};
use half::{bf16, f16};

use crate::Dtype;

/// The elements of `bytes` as [`TensorData`] of the stored type. `bytes` must hold exactly
/// `shape`'s elements (what [`Checkpoint::read_bytes`](crate::checkpoint::Checkpoint::read_bytes)
/// returns); `Err` names a type burn has no counterpart for.
pub(crate) fn tensor_data(bytes: &[u8], dtype: Dtype, shape: Vec<usize>) -> Result<TensorData, String> {
    fn le<const N: usize, T>(bytes: &[u8], f: impl Fn([u8; N]) -> T) -> Vec<T> {
        bytes
            .chunks_exact(N)
            .map(|c| {
                let mut a = [0u8; N];
                a.copy_from_slice(c);
                f(a)
            })
            .collect()
    }
    let expected = shape.iter().try_fold(dtype.size().unwrap_or(0), |acc, &d| acc.checked_mul(d));
    if expected != Some(bytes.len()) || dtype.size().is_none() {
        return Err(format!("{} bytes do not hold a {dtype} tensor of shape {shape:?}", bytes.len()));
    }
    Ok(match dtype {
        Dtype::F64 => TensorData::new(le(bytes, f64::from_le_bytes), shape),
        Dtype::F32 => TensorData::new(le(bytes, f32::from_le_bytes), shape),
        Dtype::F16 => TensorData::new(le(bytes, f16::from_le_bytes), shape),
        Dtype::BF16 => TensorData::new(le(bytes, bf16::from_le_bytes), shape),
        Dtype::I64 => TensorData::new(le(bytes, i64::from_le_bytes), shape),
        Dtype::I32 => TensorData::new(le(bytes, i32::from_le_bytes), shape),
        Dtype::I16 => TensorData::new(le(bytes, i16::from_le_bytes), shape),
        Dtype::I8 => TensorData::new(le(bytes, i8::from_le_bytes), shape),
        Dtype::U64 => TensorData::new(le(bytes, u64::from_le_bytes), shape),
        Dtype::U32 => TensorData::new(le(bytes, u32::from_le_bytes), shape),
        Dtype::U16 => TensorData::new(le(bytes, u16::from_le_bytes), shape),
        Dtype::U8 => TensorData::new(bytes.to_vec(), shape),
        Dtype::Bool => TensorData::new(bytes.iter().map(|&b| b != 0).collect::<Vec<bool>>(), shape),
        Dtype::Other { name, .. } => return Err(format!("dtype {name} cannot be read")),
    })
}

/// The float types a parameter can be cast to.
pub(crate) fn is_float_target(dtype: DType) -> bool {
    matches!(dtype, DType::F64 | DType::F32 | DType::Flex32 | DType::F16 | DType::BF16)
}

/// The first non-finite element of float data (F64, F32, F16, BF16): its index and value.
pub(crate) fn first_non_finite(data: &TensorData) -> Option<(usize, String)> {
    fn find<T: Copy + Into<f64>>(values: &[T]) -> Option<(usize, String)> {
        let (i, v) = values.iter().enumerate().find(|(_, v)| !(**v).into().is_finite())?;
        Some((i, format!("{}", (*v).into())))
    }
    match data.dtype {
        DType::F64 => find(data.as_slice::<f64>().ok()?),
        DType::F32 => find(data.as_slice::<f32>().ok()?),
        DType::F16 => find(data.as_slice::<f16>().ok()?),
        DType::BF16 => find(data.as_slice::<bf16>().ok()?),
        _ => None,
    }
}

/// Transposes the bytes of a 2-D `[rows, cols]` tensor of `size`-byte elements to
/// `[cols, rows]`.
pub(crate) fn transpose_2d(bytes: &[u8], rows: usize, cols: usize, size: usize) -> Vec<u8> {
    let mut out = vec![0u8; bytes.len()];
    for i in 0..rows {
        for j in 0..cols {
            let src = (i * cols + j) * size;
            let dst = (j * rows + i) * size;
            out[dst..dst + size].copy_from_slice(&bytes[src..src + size]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_little_endian_and_finds_non_finite_values() {
        let bytes: Vec<u8> = [1.5f32, f32::NAN].iter().flat_map(|v| v.to_le_bytes()).collect();
        let data = tensor_data(&bytes, Dtype::F32, vec![2]).unwrap();
        assert_eq!(data.as_slice::<f32>().unwrap()[0], 1.5);
        assert_eq!(first_non_finite(&data), Some((1, "NaN".into())));
        // 1e5 fits f32 but not f16.
        let big = tensor_data(&1e5f32.to_le_bytes(), Dtype::F32, vec![1]).unwrap().convert_dtype(DType::F16);
        assert_eq!(first_non_finite(&big), Some((0, "inf".into())));
        let flags = tensor_data(&[0, 1, 7], Dtype::Bool, vec![3]).unwrap();
        assert_eq!(flags.as_slice::<bool>().unwrap(), &[false, true, true]);
    }

    #[test]
    fn transposes_rows_and_columns() {
        assert_eq!(transpose_2d(&[1, 2, 3, 4, 5, 6], 2, 3, 1), vec![1, 4, 2, 5, 3, 6]);
        assert_eq!(transpose_2d(&[1, 2, 3, 4], 1, 2, 2), vec![1, 2, 3, 4]);
    }
}
