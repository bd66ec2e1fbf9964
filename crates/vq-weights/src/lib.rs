//! Strict, memory-safe loading of diffusers / transformers checkpoints into burn modules.
//!
//! Every model crate of vq-diffusion-rs reads its weights through this crate, so a checkpoint
//! is either loaded completely or rejected with an error that names the file and the tensor:
//!
//! * the file format follows the extension: `.safetensors`, or a PyTorch `torch.save` zip
//!   archive (`.bin`, `.pt`, `.pth`), both parsed here ([`checkpoint`]) without trusting the
//!   file: every declared shape, offset and storage is checked against the bytes really there
//!   before anything is allocated, and pickles are read by a bounded reader that runs no code;
//! * checkpoint keys are mapped to burn module paths by a [`KeyMap`] of regex rules (one
//!   documented table per crate), and keys that are not parameters (`position_ids`) are ignored;
//! * PyTorch `Linear` weights `[out, in]` are transposed to burn's `[in, out]` and norm
//!   `weight`/`bias` fill `gamma`/`beta`;
//! * every float tensor is cast to the requested [`DType`], whatever the file stores (f16
//!   checkpoints load into f32 modules and the other way round);
//! * a tensor the module needs but the file lacks, a tensor of the wrong shape or of an
//!   integer or boolean type, a non-finite value, or a key that maps to nothing is an error
//!   ([`WeightsError`]), found before the module is touched where the file's index tells; there
//!   is no silent partial load;
//! * inputs are regular files: [`read_file_capped`] reads small files (configs, tokenizer
//!   files) with a size cap, and [`check_parameter_count`] compares a config with its weights
//!   file before the model is allocated.
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

mod budget;
pub mod checkpoint;
mod decode;
mod dtype;
mod error;
mod files;
mod input;
mod keymap;
mod load;

pub use budget::check_parameter_count;
pub use dtype::Dtype;
pub use error::WeightsError;
pub use files::{find_weights_file, open_checkpoint, read_all_tensors, read_parameter, read_tensor, tensor_names};
pub use input::{open_regular_file, read_file_capped, read_text_capped, CONFIG_MAX_BYTES, TOKENIZER_MAX_BYTES};
pub use keymap::KeyMap;
pub use load::load_module;
