//! burn's NdArray backend: the CPU fast paths.

use burn::backend::ndarray::{
    FloatNdArrayElement, IntNdArrayElement, NdArray, NdArrayTensor, QuantElement, SharedArray,
};

use super::cpu_methods;
use crate::KernelBackend;

impl<E: FloatNdArrayElement, I: IntNdArrayElement, Q: QuantElement> KernelBackend for NdArray<E, I, Q>
where
    NdArrayTensor: From<SharedArray<E>>,
    NdArrayTensor: From<SharedArray<I>>,
{
    cpu_methods!();
}
