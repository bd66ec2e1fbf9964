//! Loading a model from a diffusers `transformer/` folder or a weight file.

use std::path::Path;

use burn::tensor::backend::Backend;
use burn::tensor::{get_device_settings, DType};
use vq_weights::{find_weights_file, load_module, WeightsError};

use crate::keys::key_map;
use crate::{LoadError, Transformer2DConfig, Transformer2DModel};

/// File stem of diffusers model weights (`diffusion_pytorch_model.{safetensors,bin}`).
const WEIGHTS_STEM: &str = "diffusion_pytorch_model";

impl<B: Backend> Transformer2DModel<B> {
    /// Builds the model of a diffusers `transformer/` folder: `config.json` plus
    /// `diffusion_pytorch_model[.<variant>].{safetensors,bin}` (safetensors preferred).
    /// Parameters take the device's default float dtype, whatever the file stores.
    pub fn from_pretrained(
        dir: &Path,
        variant: Option<&str>,
        device: &B::Device,
    ) -> Result<Self, LoadError> {
        let config = Transformer2DConfig::from_diffusers_file(&dir.join("config.json"))?;
        let weights = find_weights_file(dir, WEIGHTS_STEM, variant)?;
        let dtype = get_device_settings::<B>(device).float_dtype.into();
        Ok(config.init(device).load_weights(&weights, dtype)?)
    }

    /// Loads every parameter from a safetensors or PyTorch `.bin` file with the hub's key
    /// names (see [`crate::keys`]), casting floats (f16 or f32 in the file) to `dtype`.
    ///
    /// Fails, naming the file and tensor, on a missing tensor (with the shape it should have),
    /// a misshapen tensor, or a tensor the model has no place for.
    pub fn load_weights(self, path: &Path, dtype: DType) -> Result<Self, WeightsError> {
        load_module(self, path, &key_map(), dtype)
    }
}
