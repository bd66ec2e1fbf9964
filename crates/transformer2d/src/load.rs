//! Loading a model from a diffusers `transformer/` folder or a weight file.

use std::path::Path;

use burn::tensor::backend::Backend;
use burn::tensor::{get_device_settings, DType};
use vq_weights::{find_weights_file, load_module};

use crate::keys::key_map;
use crate::{LoadError, Transformer2DConfig, Transformer2DModel};

/// File stem of diffusers model weights (`diffusion_pytorch_model.{safetensors,bin}`).
const WEIGHTS_STEM: &str = "diffusion_pytorch_model";

impl<B: Backend> Transformer2DModel<B> {
    /// Builds the model of a diffusers `transformer/` folder: `config.json` plus
    /// `diffusion_pytorch_model[.<variant>].{safetensors,bin}` (safetensors preferred).
    /// Parameters take the device's default float dtype, whatever the file stores.
    pub fn from_pretrained(folder: &Path, variant: Option<&str>, device: &B::Device) -> Result<Self, LoadError> {
        Self::from_config(&Transformer2DConfig::from_file(&folder.join("config.json"))?, folder, variant, device)
    }

    /// [`from_pretrained`](Self::from_pretrained) with the folder's config already read (a
    /// caller that also keeps the config reads it once).
    pub fn from_config(
        config: &Transformer2DConfig,
        folder: &Path,
        variant: Option<&str>,
        device: &B::Device,
    ) -> Result<Self, LoadError> {
        let weights = find_weights_file(folder, WEIGHTS_STEM, variant)?;
        config.check_against_weights(&folder.join("config.json"), &weights)?;
        let dtype = get_device_settings::<B>(device).float_dtype.into();
        config.init(device)?.load_weights(&weights, dtype)
    }

    /// Loads every parameter from a safetensors or PyTorch `.bin` file with the hub's key
    /// names (see [`crate::keys`]), casting floats (f16 or f32 in the file) to `dtype`.
    ///
    /// Fails, naming the file and tensor, on a missing tensor (with the shape it should have),
    /// a misshapen tensor, or a tensor the model has no place for.
    pub fn load_weights(self, file: &Path, dtype: DType) -> Result<Self, LoadError> {
        Ok(load_module(self, file, &key_map(), dtype)?)
    }
}
