//! The loop shell both training stages run in. [`run_loop`] owns what a run does whatever it
//! trains — the checkpoint folder and the device seed, resuming, the batch stream, the
//! learning-rate schedule, the loss curve, progress lines with ETA, the time budget, the
//! checkpoint cadence and the final flush — and calls a [`Stage`] for what differs: the step,
//! the loss columns, the progress terms, and the stage's own checkpoint parts and JSON state.

use std::path::Path;
use std::sync::Arc;

use clip_text::Tokenizer;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::data::{Dataset, Split};
use crate::rng::SplitMix64;
use crate::train::batches::{BatchStream, HostBatch};
use crate::train::checkpoint::{load_state, save_state, RunState};
use crate::train::export::create_dir;
use crate::train::log::{LossCurve, LossWindows, Progress};
use crate::train::run_config::RunConfig;
use crate::train::schedule::step_learning_rate;
use crate::{TrainBackend, TrainError};

/// What a stage trains on: the batches' dataset, the tokenizer that turns captions into ids
/// (stage 2), and the fraction of images repainted in free colours (stage 1).
pub struct BatchSource {
    /// The dataset, shared with the worker threads that render the batches.
    pub dataset: Arc<Dataset>,
    /// Captions are tokenized into [`HostBatch::token_ids`] when given.
    pub tokenizer: Option<Arc<Tokenizer>>,
    /// Fraction of images repainted in free colours ([`Dataset::repaint`]).
    pub free_colors: f64,
}

/// One training stage as [`run_loop`] drives it. Methods that update modules take the stage by
/// value and give it back, as burn's modules move through their updates.
pub trait Stage<B: TrainBackend>: Sized {
    /// The stage's part of `checkpoint/state.json`, written beside the [`RunState`] fields
    /// (flattened into the same object); `()` when it has none.
    type State: Serialize + DeserializeOwned;

    /// Names the stage in errors ("VQ-VAE training").
    const NAME: &'static str;

    /// The columns of `loss.csv` between `step` and `lr`; the first is the loss.
    const COLUMNS: &'static [&'static str];

    /// Where the batches come from.
    fn batches(&self) -> BatchSource;

    /// The stage's part of the checkpoint state now.
    fn state(&self) -> Self::State;

    /// Continues from the checkpoint folder `dir`, saved after `step` steps: the stage's modules
    /// and optimizer, and its `saved` state. Returns the stage and the step from which the
    /// learning rate warms up again when the optimizer's moments restarted (see
    /// [`load_trainee`](crate::train::checkpoint::load_trainee)), which `progress` hears of.
    fn resume(
        self,
        saved: Self::State,
        dir: &Path,
        step: usize,
        progress: &mut dyn FnMut(&str),
    ) -> Result<(Self, Option<usize>), TrainError>;

    /// Writes the stage's modules and optimizer into the checkpoint folder `dir`.
    fn save(&self, dir: &Path) -> Result<(), TrainError>;

    /// Trains step `step` (0-based) on `batch` at learning rate `lr`, drawing host randomness
    /// from `rng`. Returns the stage and one value per [`Self::COLUMNS`] entry.
    fn step(
        self,
        step: usize,
        lr: f64,
        batch: &HostBatch,
        rng: &mut SplitMix64,
    ) -> Result<(Self, Vec<f64>), TrainError>;

    /// The progress line's terms after the window's mean loss, from the last step's `values`.
    fn log_terms(&self, values: &[f64]) -> Vec<(&'static str, f64)>;
}

/// What [`run_loop`] gives back: the trained stage and the run's figures.
pub struct Finished<S> {
    /// The stage after its last step.
    pub stage: S,
    /// Steps done in total (resumed parts included).
    pub steps_done: usize,
    /// Mean loss of the first progress window of this process (NaN if no step ran).
    pub first_loss: f64,
    /// Mean loss of the last progress window (NaN if no step ran).
    pub final_loss: f64,
    /// Seconds per step in this process.
    pub seconds_per_step: f64,
}

/// `checkpoint/state.json`: the run's state and the stage's, in one JSON object.
#[derive(Serialize, Deserialize)]
struct CheckpointState<S> {
    #[serde(flatten)]
    run: RunState,
    #[serde(flatten)]
    stage: S,
}

/// Trains the stage that `setup` builds as `run` says: creates `out_dir/checkpoint`, seeds
/// `device`'s generator with `run.seed`, builds the stage, resumes it from the checkpoint when
/// `run.resume` and one exists, then steps until the schedule (or the time budget) ends, writing
/// `loss.csv` every step, a progress line every `log_every` steps (and early ones), a checkpoint
/// and `loss.png` every `checkpoint_every` steps, at the end and when the budget stops the run.
/// `progress` hears every line.
///
/// Errors when `run` is invalid, a file cannot be read or written, or the loss is not finite.
pub fn run_loop<B: TrainBackend, S: Stage<B>>(
    run: &RunConfig,
    device: &B::Device,
    progress: &mut dyn FnMut(&str),
    setup: impl FnOnce(&mut dyn FnMut(&str)) -> Result<S, TrainError>,
) -> Result<Finished<S>, TrainError> {
    run.validate()?;
    let checkpoint_dir = run.out_dir.join("checkpoint");
    create_dir(&checkpoint_dir)?;
    B::seed(device, run.seed);
    let mut stage = setup(progress)?;

    let state_path = checkpoint_dir.join("state.json");
    let mut state = RunState::new(run.steps, run.seed);
    // The step from which the learning rate warms up again (AdamW's moments restarted).
    let mut rewarm_from = None;
    if run.resume {
        if let Some(saved) = load_state::<CheckpointState<S::State>>(&state_path)? {
            (stage, rewarm_from) = stage.resume(saved.stage, &checkpoint_dir, saved.run.step, progress)?;
            progress(&saved.run.describe());
            state = saved.run.resumed(run.steps);
        }
    }
    let mut rng = SplitMix64::new(state.rng);

    let source = stage.batches();
    let mut batches = BatchStream::spawn(
        source.dataset,
        Split::Train,
        run.batch_size,
        state.step as u64,
        run.workers,
        source.tokenizer,
        source.free_colors,
    );
    let loss_png = run.out_dir.join("loss.png");
    let mut curve = LossCurve::open(&run.out_dir.join("loss.csv"), S::COLUMNS, state.step)?;
    let mut timer =
        Progress::new(state.step, state.total_steps, state.elapsed_seconds, run.max_minutes, !run.keep_schedule);
    let mut windows = LossWindows::default();
    let first_step = state.step;
    let mut step = first_step;
    while step < timer.total_steps() {
        let lr = step_learning_rate(step, timer.total_steps(), run.warmup_steps, run.learning_rate, rewarm_from);
        let batch = batches.next_batch();
        let values;
        (stage, values) = stage.step(step, lr, &batch, &mut rng)?;
        let loss = values[0];
        if !loss.is_finite() {
            return Err(TrainError::model(S::NAME, format!("the loss is {loss} at step {step}")));
        }
        curve.record(step, &values, lr, timer.total_elapsed())?;
        windows.push(loss);
        if timer.should_log(step, run.log_every) {
            let mut terms = vec![("loss", windows.close())];
            terms.extend(stage.log_terms(&values));
            progress(&timer.line(step, &terms, lr));
        }
        let end = timer.after_step(step, run.checkpoint_every, progress);
        step += 1;
        if end.checkpoint {
            state.advance(step, timer.total_steps(), timer.total_elapsed(), &mut rng);
            stage.save(&checkpoint_dir)?;
            save_state(&CheckpointState { run: state.clone(), stage: stage.state() }, &state_path)?;
            curve.flush_and_plot(&loss_png)?;
        }
        if end.stop {
            progress(&format!("time budget reached after step {step}; saved"));
            break;
        }
    }
    let (first_loss, final_loss) = windows.finish();
    curve.flush_and_plot(&loss_png)?;
    Ok(Finished {
        stage,
        steps_done: step,
        first_loss,
        final_loss,
        seconds_per_step: timer.elapsed() / (step - first_step).max(1) as f64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loss::TimestepSampler;

    #[test]
    fn checkpoint_states_keep_their_json_form_with_or_without_a_stage_part() {
        let run = r#""step": 500, "requested_steps": 3000, "total_steps": 2800, "elapsed_seconds": 61.5, "rng": 42"#;
        // Stage 1 adds nothing: its state.json is the run's alone.
        let text = format!("{{{run}}}");
        let state: CheckpointState<()> = serde_json::from_str(&text).expect("a stage-1 state");
        assert_eq!((state.run.step, state.run.total_steps, state.run.rng), (500, 2800, 42));
        let written: serde_json::Value = serde_json::to_value(&state).expect("serializes");
        assert_eq!(written, serde_json::from_str::<serde_json::Value>(&text).expect("JSON"));
        // Stage 2 adds its sampler beside the run's fields.
        #[derive(Serialize, Deserialize)]
        struct Sampled {
            sampler: TimestepSampler,
        }
        let sampler = serde_json::to_string(&TimestepSampler::new(4)).expect("serializes");
        let text = format!("{{{run}, \"sampler\": {sampler}}}");
        let state: CheckpointState<Sampled> = serde_json::from_str(&text).expect("a stage-2 state");
        assert_eq!(state.run.requested_steps, 3000);
        assert_eq!(state.stage.sampler, TimestepSampler::new(4));
        let written: serde_json::Value = serde_json::to_value(&state).expect("serializes");
        assert_eq!(written, serde_json::from_str::<serde_json::Value>(&text).expect("JSON"));
    }
}
