//! Strict loading of diffusers / transformers checkpoints into burn modules.
//!
//! Every model crate of vq-diffusion-rs reads its weights through this crate, so a checkpoint
//! is either loaded completely or rejected with an error that names the file and the tensor:
//!
//! * the file format follows the extension: `.safetensors`, or a PyTorch pickle (`.bin`, `.pt`,
//!   `.pth`), both read by [`burn_store`];
//! * checkpoint keys are mapped to burn module paths by a [`KeyMap`] of regex rules (one
//!   documented table per crate), and keys that are not parameters (`position_ids`) are ignored;
//! * PyTorch `Linear` weights `[out, in]` are transposed to burn's `[in, out]` and norm
//!   `weight`/`bias` become `gamma`/`beta` (burn-store's `PyTorchToBurnAdapter`);
//! * every float tensor is cast to the requested [`DType`], whatever the file stores (f16
//!   checkpoints load into f32 modules and the other way round);
//! * a tensor the module needs but the file lacks, a tensor of the wrong shape, or a key that
//!   maps to nothing is an error ([`WeightsError`]); there is no silent partial load.
//!
//! ```no_run
//! use burn::backend::NdArray;
//! use burn::nn::{Linear, LinearConfig};
//! use burn::tensor::DType;
//! use vq_weights::{load_module, KeyMap};
//!
//! let device = Default::default();
//! let layer: Linear<NdArray> = LinearConfig::new(4, 8).init(&device);
//! // The file stores the layer as `proj.weight` / `proj.bias`.
//! let keys = KeyMap::new(&[(r"^proj\.", "")]);
//! let layer = load_module(layer, "layer.safetensors".as_ref(), &keys, DType::F32)?;
//! # Ok::<(), vq_weights::WeightsError>(())
//! ```

mod cast;
mod error;
mod files;
mod keymap;
mod load;

pub use error::WeightsError;
pub use files::{find_weights_file, read_all_tensors, read_tensor, tensor_names};
pub use keymap::KeyMap;
pub use load::load_module;
