//! The resnet activations of diffusers' `get_activation` (`diffusers/models/activations.py`).

use burn::tensor::activation;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

/// An activation named by a config's `act_fn`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Activation {
    /// `x·sigmoid(x)` (`"silu"` and `"swish"`).
    Silu,
    /// `x·tanh(softplus(x))` (`"mish"`).
    Mish,
    /// The exact (erf) GELU of `torch.nn.GELU()` (`"gelu"`).
    Gelu,
    /// `max(x, 0)` (`"relu"`).
    Relu,
}

impl Activation {
    /// Parses a diffusers activation name, case-insensitively as `get_activation` does.
    pub fn from_name(name: &str) -> Option<Self> {
        match name.to_lowercase().as_str() {
            "silu" | "swish" => Some(Self::Silu),
            "mish" => Some(Self::Mish),
            "gelu" => Some(Self::Gelu),
            "relu" => Some(Self::Relu),
            _ => None,
        }
    }

    /// Applies the activation element-wise.
    pub fn forward<B: Backend, const D: usize>(self, x: Tensor<B, D>) -> Tensor<B, D> {
        match self {
            Self::Silu => activation::silu(x),
            Self::Mish => activation::mish(x),
            Self::Gelu => activation::gelu(x),
            Self::Relu => activation::relu(x),
        }
    }
}
