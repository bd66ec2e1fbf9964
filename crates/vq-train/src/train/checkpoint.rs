//! Checkpoints: module and optimizer records (burn's named MessagePack recorder, full
//! precision) plus a JSON file of the rest of the training state. A resumed run restores
//! the parameters, AdamW's moments and step counts, the EMA copies and the JSON state
//! (step, sampler statistics, elapsed time), so it continues the same run.

use std::path::Path;

use burn::module::Module;
use burn::record::{FullPrecisionSettings, NamedMpkFileRecorder, Record, Recorder};
use burn::tensor::backend::Backend;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::TrainError;

fn recorder() -> NamedMpkFileRecorder<FullPrecisionSettings> {
    NamedMpkFileRecorder::new()
}

/// Saves a module's parameters to `path` (`.mpk` is appended).
pub fn save_module<B: Backend, M: Module<B>>(module: M, path: &Path) -> Result<(), TrainError> {
    module.save_file(path, &recorder()).map_err(|e| TrainError::io(path, e))
}

/// Loads parameters saved by [`save_module`] into `module`.
pub fn load_module<B: Backend, M: Module<B>>(module: M, path: &Path, device: &B::Device) -> Result<M, TrainError> {
    module.load_file(path, &recorder(), device).map_err(|e| TrainError::io(path, e))
}

/// Saves any record (e.g. an optimizer's `to_record()`) to `path` (`.mpk` is appended).
pub fn save_record<B: Backend, R: Record<B>>(record: R, path: &Path) -> Result<(), TrainError> {
    Recorder::<B>::record(&recorder(), record, path.to_path_buf()).map_err(|e| TrainError::io(path, e))
}

/// Loads a record saved by [`save_record`].
pub fn load_record<B: Backend, R: Record<B>>(path: &Path, device: &B::Device) -> Result<R, TrainError> {
    Recorder::<B>::load(&recorder(), path.to_path_buf(), device).map_err(|e| TrainError::io(path, e))
}

/// Writes the JSON training state.
pub fn save_state<S: Serialize>(state: &S, path: &Path) -> Result<(), TrainError> {
    let text = serde_json::to_string_pretty(state).map_err(|e| TrainError::io(path, e))?;
    std::fs::write(path, text).map_err(|e| TrainError::io(path, e))
}

/// Reads the JSON training state, `None` if there is no checkpoint.
pub fn load_state<S: DeserializeOwned>(path: &Path) -> Result<Option<S>, TrainError> {
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(path).map_err(|e| TrainError::io(path, e))?;
    serde_json::from_str(&text).map(Some).map_err(|e| TrainError::io(path, e))
}
