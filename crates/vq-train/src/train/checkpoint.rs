//! Checkpoints: module and optimizer records (burn's named MessagePack recorder, full
//! precision) plus a JSON file of the rest of the training state. A resumed run restores
//! the parameters, AdamW's moments and step counts, the EMA copies and the JSON state
//! (step, sampler statistics, elapsed time), so it continues the same run.

use std::path::Path;

use burn::module::{AutodiffModule, Module};
use burn::optim::Optimizer;
use burn::record::{FullPrecisionSettings, HalfPrecisionSettings, NamedMpkFileRecorder, Record, Recorder};
use burn::tensor::backend::{AutodiffBackend, Backend};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::rng::SplitMix64;
use crate::train::export::StoreDtype;
use crate::TrainError;

/// Where a run stands, the part of `checkpoint/state.json` both stages share (each flattens it
/// into its own state).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunState {
    /// Steps done.
    pub step: usize,
    /// `--steps` of the run that wrote the checkpoint.
    pub requested_steps: usize,
    /// The schedule's length (requested, or fitted to a time budget).
    pub total_steps: usize,
    /// Training seconds of all processes so far.
    pub elapsed_seconds: f64,
    /// Seed of the host RNG from this point on.
    pub rng: u64,
}

impl RunState {
    /// A new run of `steps` steps.
    pub fn new(steps: usize, seed: u64) -> Self {
        Self { step: 0, requested_steps: steps, total_steps: steps, elapsed_seconds: 0.0, rng: seed }
    }

    /// A saved run continued with `--steps requested`: the same value continues the saved
    /// (possibly fitted) schedule; a new one starts a new schedule length.
    pub fn resumed(self, requested: usize) -> Self {
        match self.requested_steps == requested {
            true => self,
            false => Self { requested_steps: requested, total_steps: requested, ..self },
        }
    }

    /// "resuming at step …", for the progress output; says so when nothing is left to train.
    pub fn describe(&self) -> String {
        let line =
            format!("resuming at step {} of {} ({:.0} s done)", self.step, self.total_steps, self.elapsed_seconds);
        match self.step >= self.total_steps {
            true => line + ": the run is complete (a different --steps extends it, --fresh starts over)",
            false => line,
        }
    }

    /// Records the run at a checkpoint and reseeds the host RNG, so that a resumed process and
    /// this one continue with the same stream.
    pub fn advance(&mut self, step: usize, total_steps: usize, elapsed_seconds: f64, rng: &mut SplitMix64) {
        *self = Self { step, total_steps, elapsed_seconds, rng: rng.next_u64(), ..*self };
        *rng = SplitMix64::new(self.rng);
    }
}

fn recorder() -> NamedMpkFileRecorder<FullPrecisionSettings> {
    NamedMpkFileRecorder::new()
}

/// Saves a module's parameters to `path` (`.mpk` is appended).
pub fn save_module<B: Backend, M: Module<B>>(module: M, path: &Path) -> Result<(), TrainError> {
    module.save_file(path, &recorder()).map_err(|e| TrainError::io(path, e))
}

/// Saves a module's parameters to `path` (`.mpk` appended) in `dtype`. [`load_module`] reads
/// either precision: each stored tensor records its dtype and is converted on load. Half
/// precision halves a checkpoint that has to travel (a resumed run continues from weights
/// rounded to f16, ≈ 5e−4 relative).
pub fn save_module_as<B: Backend, M: Module<B>>(module: M, path: &Path, dtype: StoreDtype) -> Result<(), TrainError> {
    match dtype {
        StoreDtype::F32 => save_module(module, path),
        StoreDtype::F16 => module
            .save_file(path, &NamedMpkFileRecorder::<HalfPrecisionSettings>::new())
            .map_err(|e| TrainError::io(path, e)),
    }
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

/// `optimizer` with the state saved at `path` (`.mpk` appended) and `false`, or unchanged — its
/// moments at zero — and `true` when the checkpoint has none: a checkpoint can travel without its
/// optimizer state, which is twice the size of the weights. `progress` hears of a restart; the
/// caller re-warms the learning rate ([`rewarm_factor`](crate::train::schedule::rewarm_factor)).
pub fn load_optimizer<B, M, O>(
    optimizer: O,
    path: &Path,
    device: &B::Device,
    progress: &mut dyn FnMut(&str),
) -> Result<(O, bool), TrainError>
where
    B: AutodiffBackend,
    M: AutodiffModule<B>,
    O: Optimizer<M, B>,
{
    if path.with_extension("mpk").exists() {
        return Ok((optimizer.load_record(load_record(path, device)?), false));
    }
    progress(&format!(
        "{}.mpk is missing: the optimizer's moments start from zero (the learning rate warms up again)",
        path.display()
    ));
    Ok((optimizer, true))
}

/// A resumed run's model (`checkpoint_dir/model.mpk`) and optimizer (`optimizer.mpk`, see
/// [`load_optimizer`]), and the step from which the learning rate warms up again: the saved
/// `step` when the optimizer state was missing, else `None`.
pub fn load_trainee<B, M, O>(
    model: M,
    optimizer: O,
    checkpoint_dir: &Path,
    step: usize,
    device: &B::Device,
    progress: &mut dyn FnMut(&str),
) -> Result<(M, O, Option<usize>), TrainError>
where
    B: AutodiffBackend,
    M: AutodiffModule<B>,
    O: Optimizer<M, B>,
{
    let model = load_module(model, &checkpoint_dir.join("model"), device)?;
    let (optimizer, restarted) = load_optimizer(optimizer, &checkpoint_dir.join("optimizer"), device, progress)?;
    Ok((model, optimizer, restarted.then_some(step)))
}

/// Saves a run's model (`checkpoint_dir/model.mpk`, in `dtype`) and optimizer (`optimizer.mpk`,
/// full precision), which [`load_trainee`] reads back.
pub fn save_trainee<B, M, O>(
    model: &M,
    optimizer: &O,
    checkpoint_dir: &Path,
    dtype: StoreDtype,
) -> Result<(), TrainError>
where
    B: AutodiffBackend,
    M: AutodiffModule<B>,
    O: Optimizer<M, B>,
{
    save_module_as(model.clone(), &checkpoint_dir.join("model"), dtype)?;
    save_record::<B, _>(optimizer.to_record(), &checkpoint_dir.join("optimizer"))
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
    crate::train::export::read_json(path).map(Some)
}

#[cfg(test)]
mod tests {
    use burn::backend::{Autodiff, NdArray};
    use burn::nn::{Linear, LinearConfig};
    use burn::optim::{AdamWConfig, GradientsParams};
    use burn::tensor::{Distribution, Tensor};

    use super::*;

    type B = Autodiff<NdArray<f32>>;

    /// One AdamW step of `model` on a fixed regression batch.
    fn step<O: Optimizer<Linear<B>, B>>(optimizer: &mut O, model: Linear<B>, x: &Tensor<B, 2>) -> Linear<B> {
        let loss = model.forward(x.clone()).square().mean();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        optimizer.step(1e-2, model, grads)
    }

    fn weights(model: &Linear<B>) -> Vec<f32> {
        model.weight.val().into_data().into_vec::<f32>().expect("f32 weights")
    }

    #[test]
    fn a_resumed_run_says_where_it_stands_and_when_it_is_complete() {
        let mut run = RunState::new(300, 7);
        run.step = 120;
        assert_eq!(run.describe(), "resuming at step 120 of 300 (0 s done)");
        // The same --steps continues the saved schedule; a complete one says how to go on.
        let done = RunState { step: 300, elapsed_seconds: 61.4, ..run.clone() }.resumed(300);
        assert_eq!(
            done.describe(),
            "resuming at step 300 of 300 (61 s done): the run is complete (a different --steps extends it, --fresh starts over)"
        );
        // A different --steps starts a new schedule length from the saved step.
        let extended = RunState { step: 300, ..run }.resumed(500);
        assert_eq!((extended.step, extended.total_steps), (300, 500));
        assert!(!extended.describe().contains("complete"));
    }

    #[test]
    fn a_half_precision_checkpoint_loads_as_the_weights_rounded_to_f16() {
        let device = Default::default();
        let dir = std::env::temp_dir().join(format!("vq-train-half-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let model = LinearConfig::new(5, 4).init::<NdArray<f32>>(&device);
        // Read first: parameters initialise lazily, and clones made before would draw their own.
        let original = model.weight.val().into_data().into_vec::<f32>().expect("f32");
        save_module_as(model.clone(), &dir.join("model"), StoreDtype::F16).expect("save");
        save_module_as(model.clone(), &dir.join("full"), StoreDtype::F32).expect("save");
        let half = std::fs::metadata(dir.join("model.mpk")).expect("half file").len();
        let full = std::fs::metadata(dir.join("full.mpk")).expect("full file").len();
        assert!(half < full, "{half} bytes in f16, {full} in f32");
        let fresh = || LinearConfig::new(5, 4).init::<NdArray<f32>>(&device);
        let loaded = load_module(fresh(), &dir.join("model"), &device).expect("load");
        let rounded: Vec<f32> = original.iter().map(|&w| half::f16::from_f32(w).to_f32()).collect();
        assert_eq!(loaded.weight.val().into_data().into_vec::<f32>().expect("f32"), rounded);
        assert_ne!(rounded, original, "the file really is half precision");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn an_optimizer_resumes_its_moments_or_starts_fresh_without_a_saved_state() {
        let device = Default::default();
        let dir = std::env::temp_dir().join(format!("vq-train-optimizer-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("optimizer");
        let x = Tensor::<B, 2>::random([8, 3], Distribution::Normal(0.0, 1.0), &device);
        let model = LinearConfig::new(3, 2).init::<B>(&device);
        let mut optimizer = AdamWConfig::new().init::<B, Linear<B>>();
        let model = step(&mut optimizer, model, &x);
        save_record::<B, _>(optimizer.to_record(), &path).expect("save");
        let continued = weights(&step(&mut optimizer, model.clone(), &x));

        let mut heard = Vec::new();
        let (mut resumed, restarted) =
            load_optimizer(AdamWConfig::new().init(), &path, &device, &mut |l| heard.push(l.to_string()))
                .expect("load");
        assert!(!restarted);
        assert_eq!(weights(&step(&mut resumed, model.clone(), &x)), continued);
        assert!(heard.is_empty(), "{heard:?}");

        std::fs::remove_file(path.with_extension("mpk")).expect("remove");
        let (mut fresh, restarted) =
            load_optimizer(AdamWConfig::new().init(), &path, &device, &mut |l| heard.push(l.to_string()))
                .expect("a missing state is no error");
        assert!(restarted);
        let restarted = weights(&step(&mut fresh, model.clone(), &x));
        assert_eq!(restarted, weights(&step(&mut AdamWConfig::new().init(), model, &x)));
        assert_ne!(restarted, continued, "zero moments step differently");
        assert!(heard.len() == 1 && heard[0].contains("optimizer.mpk is missing"), "{heard:?}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn a_resumed_run_keeps_or_restarts_its_schedule_and_continues_the_rng() {
        let mut state = RunState::new(100, 7);
        let mut rng = SplitMix64::new(state.rng);
        rng.next_u64();
        state.advance(40, 60, 12.5, &mut rng);
        // The process goes on with the stream a resumed process starts from.
        assert_eq!(rng.next_u64(), SplitMix64::new(state.rng).next_u64());
        assert_eq!((state.step, state.total_steps, state.requested_steps, state.elapsed_seconds), (40, 60, 100, 12.5));
        // The same --steps keeps the fitted schedule; new --steps start a new one at the same step.
        assert_eq!(state.clone().resumed(100).total_steps, 60);
        let longer = state.resumed(200);
        assert_eq!((longer.step, longer.total_steps, longer.requested_steps), (40, 200, 200));
    }
}
