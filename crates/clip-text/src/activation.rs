//! The MLP activations a CLIP text config can name (`hidden_act`), with transformers' formulas
//! (`transformers/activations.py`).

use std::fmt;

use burn::tensor::{activation, Tensor};
use serde::{Deserialize, Serialize};
use vq_kernels::KernelBackend;

use crate::error::ConfigError;

/// Activation between `fc1` and `fc2`, by its transformers name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum HiddenAct {
    /// `quick_gelu`: x·σ(1.702·x) — every OpenAI CLIP checkpoint.
    QuickGelu,
    /// `gelu`: the exact (erf) GELU.
    Gelu,
    /// `gelu_new`: the tanh approximation ½x(1 + tanh(√(2/π)(x + 0.044715x³))).
    GeluNew,
    /// `gelu_pytorch_tanh`: the same tanh approximation, as computed by torch.
    GeluPytorchTanh,
}

impl HiddenAct {
    /// Every name accepted in `hidden_act`, in the order of the variants.
    pub const NAMES: [&'static str; 4] = ["quick_gelu", "gelu", "gelu_new", "gelu_pytorch_tanh"];

    /// The transformers name of the activation.
    pub fn name(self) -> &'static str {
        match self {
            Self::QuickGelu => Self::NAMES[0],
            Self::Gelu => Self::NAMES[1],
            Self::GeluNew => Self::NAMES[2],
            Self::GeluPytorchTanh => Self::NAMES[3],
        }
    }

    /// Applies the activation element-wise.
    pub fn forward<B: KernelBackend, const D: usize>(self, x: Tensor<B, D>) -> Tensor<B, D> {
        match self {
            Self::QuickGelu => B::quick_gelu(x),
            Self::Gelu => activation::gelu(x),
            Self::GeluNew | Self::GeluPytorchTanh => activation::gelu_approximate(x),
        }
    }
}

impl TryFrom<String> for HiddenAct {
    type Error = ConfigError;

    fn try_from(name: String) -> Result<Self, Self::Error> {
        match name.as_str() {
            "quick_gelu" => Ok(Self::QuickGelu),
            "gelu" => Ok(Self::Gelu),
            "gelu_new" => Ok(Self::GeluNew),
            "gelu_pytorch_tanh" => Ok(Self::GeluPytorchTanh),
            _ => Err(ConfigError::UnsupportedActivation { name }),
        }
    }
}

impl From<HiddenAct> for String {
    fn from(act: HiddenAct) -> Self {
        act.name().to_owned()
    }
}

impl fmt::Display for HiddenAct {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
