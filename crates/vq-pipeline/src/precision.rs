//! Choosing the float precision of a device.

use burn::tensor::backend::Backend;
use burn::tensor::DType;

use crate::PipelineError;

/// Float precision of the parameters and activations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// 32-bit floats (the reference).
    #[default]
    F32,
    /// IEEE half precision.
    F16,
    /// bfloat16.
    BF16,
}

impl Precision {
    /// The burn dtype.
    pub fn dtype(self) -> DType {
        match self {
            Self::F32 => DType::F32,
            Self::F16 => DType::F16,
            Self::BF16 => DType::BF16,
        }
    }

    /// `f32`, `f16` or `bf16`.
    pub fn name(self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::F16 => "f16",
            Self::BF16 => "bf16",
        }
    }
}

/// Makes `precision` the device's default float dtype. Call it before anything else touches
/// the device (burn fixes a device's defaults at its first tensor); f32 is the default and
/// needs no call.
pub fn set_precision<B: Backend>(device: &B::Device, precision: Precision) -> Result<(), PipelineError> {
    // Reading the settings would fix them to the defaults: try to set first.
    match burn::tensor::backend::set_default_float_dtype::<B>(device, precision.dtype()) {
        Ok(()) => Ok(()),
        Err(error) => {
            let current: DType = burn::tensor::backend::get_device_settings::<B>(device).float_dtype.into();
            match current == precision.dtype() {
                true => Ok(()),
                false => {
                    Err(PipelineError::Precision { precision: precision.name().into(), message: error.to_string() })
                }
            }
        }
    }
}
