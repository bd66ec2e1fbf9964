//! The loss curve (a CSV of every step and a small PNG plot), progress lines with steps/s and
//! ETA, and the wall-clock budget that ends a run cleanly.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use image::{Rgb, RgbImage};

use crate::TrainError;

/// Appends one CSV row per step: `step,<terms…>,lr,seconds` (seconds since the run started,
/// continuing across resumes).
pub struct LossCurve {
    path: PathBuf,
    writer: BufWriter<File>,
    columns: Vec<&'static str>,
}

impl LossCurve {
    /// Opens `path` for appending, writing the header if the file is new. Rows at or after
    /// `first_step` left by an interrupted run are dropped first, so a resumed curve has each
    /// step once.
    pub fn open(path: &Path, columns: &[&'static str], first_step: usize) -> Result<Self, TrainError> {
        let kept: Vec<String> = match File::open(path) {
            Ok(file) => BufReader::new(file)
                .lines()
                .map_while(Result::ok)
                .filter(|line| {
                    line.split(',').next().and_then(|s| s.parse::<usize>().ok()).is_none_or(|step| step < first_step)
                })
                .collect(),
            Err(_) => Vec::new(),
        };
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(path)
            .map_err(|e| TrainError::io(path, e))?;
        let mut writer = BufWriter::new(file);
        let header = format!("step,{},lr,seconds", columns.join(","));
        if kept.is_empty() {
            writeln!(writer, "{header}").map_err(|e| TrainError::io(path, e))?;
        }
        for line in kept {
            writeln!(writer, "{line}").map_err(|e| TrainError::io(path, e))?;
        }
        Ok(Self { path: path.to_path_buf(), writer, columns: columns.to_vec() })
    }

    /// Writes one row.
    ///
    /// # Panics
    /// If `values` does not have one value per column.
    pub fn record(&mut self, step: usize, values: &[f64], lr: f64, seconds: f64) -> Result<(), TrainError> {
        assert_eq!(values.len(), self.columns.len(), "one value per loss column");
        let terms: Vec<String> = values.iter().map(|v| format!("{v:.6e}")).collect();
        writeln!(self.writer, "{step},{},{lr:.6e},{seconds:.2}", terms.join(","))
            .map_err(|e| TrainError::io(&self.path, e))
    }

    /// Flushes the file and draws the first column against the step into `png`
    /// (log-scale y, 480 × 240).
    pub fn flush_and_plot(&mut self, png: &Path) -> Result<(), TrainError> {
        self.writer.flush().map_err(|e| TrainError::io(&self.path, e))?;
        let text = std::fs::read_to_string(&self.path).map_err(|e| TrainError::io(&self.path, e))?;
        let points: Vec<(f64, f64)> = text
            .lines()
            .skip(1)
            .filter_map(|line| {
                let mut fields = line.split(',');
                let step = fields.next()?.parse::<f64>().ok()?;
                let loss = fields.next()?.parse::<f64>().ok()?;
                (loss.is_finite() && loss > 0.0).then_some((step, loss))
            })
            .collect();
        plot_log_curve(&points).save(png).map_err(|e| TrainError::io(png, e))
    }
}

/// A plot of `(x, y)` points with a log-scale y axis (grid lines at powers of ten), one
/// smoothed line (moving mean over 1 % of the points) over the raw points.
pub fn plot_log_curve(points: &[(f64, f64)]) -> RgbImage {
    let (width, height, margin) = (480u32, 240u32, 12u32);
    let mut image = RgbImage::from_pixel(width, height, Rgb([255, 255, 255]));
    if points.is_empty() {
        return image;
    }
    let x_max = points.iter().map(|p| p.0).fold(1.0f64, f64::max);
    let log_y: Vec<f64> = points.iter().map(|p| p.1.log10()).collect();
    let y_min = log_y.iter().copied().fold(f64::INFINITY, f64::min).floor();
    let y_max = log_y.iter().copied().fold(f64::NEG_INFINITY, f64::max).ceil().max(y_min + 1.0);
    let (plot_w, plot_h) = ((width - 2 * margin) as f64, (height - 2 * margin) as f64);
    let to_pixel = |x: f64, ly: f64| {
        let px = margin as f64 + x / x_max * plot_w;
        let py = margin as f64 + (y_max - ly) / (y_max - y_min) * plot_h;
        (px.round() as u32, py.round() as u32)
    };
    let mut decade = y_min;
    while decade <= y_max {
        let (_, py) = to_pixel(0.0, decade);
        for px in margin..width - margin {
            image.put_pixel(px, py.min(height - 1), Rgb([220, 220, 220]));
        }
        decade += 1.0;
    }
    for (point, ly) in points.iter().zip(&log_y) {
        let (px, py) = to_pixel(point.0, *ly);
        image.put_pixel(px.min(width - 1), py.min(height - 1), Rgb([150, 180, 230]));
    }
    let window = (points.len() / 100).max(1);
    for i in 0..points.len() {
        let lo = i.saturating_sub(window);
        let mean = log_y[lo..=i].iter().sum::<f64>() / (i - lo + 1) as f64;
        let (px, py) = to_pixel(points[i].0, mean);
        for dy in 0..2 {
            image.put_pixel(px.min(width - 1), (py + dy).min(height - 1), Rgb([200, 30, 30]));
        }
    }
    image
}

/// Mean losses of the progress-line windows: the first (where this process started) and the
/// latest (where it is).
pub struct LossWindows {
    values: Vec<f64>,
    first: Option<f64>,
    last: f64,
}

impl Default for LossWindows {
    fn default() -> Self {
        Self { values: Vec::new(), first: None, last: f64::NAN }
    }
}

impl LossWindows {
    /// Adds one step's loss to the open window.
    pub fn push(&mut self, loss: f64) {
        self.values.push(loss);
    }

    /// Closes the open window and returns its mean, now the latest (and, the first time, the first).
    pub fn close(&mut self) -> f64 {
        let mean = self.values.iter().sum::<f64>() / self.values.len() as f64;
        self.first.get_or_insert(mean);
        self.last = mean;
        self.values.clear();
        mean
    }

    /// Closes a partly filled last window; returns (first, latest) means, NaN where no step ran.
    pub fn finish(mut self) -> (f64, f64) {
        if !self.values.is_empty() {
            self.close();
        }
        (self.first.unwrap_or(f64::NAN), self.last)
    }
}

/// What a training loop does after a step ([`Progress::after_step`]).
pub struct StepEnd {
    /// Write a checkpoint now.
    pub checkpoint: bool,
    /// The time budget is spent: stop after the checkpoint.
    pub stop: bool,
}

/// Steps/s, ETA and the wall-clock budget of a run.
pub struct Progress {
    start: Instant,
    /// Seconds spent by earlier (resumed) parts of the run.
    earlier_seconds: f64,
    first_step: usize,
    total_steps: usize,
    budget_seconds: Option<f64>,
    /// Shorten the schedule to the budget ([`Progress::fit_steps`]).
    fit_to_budget: bool,
    /// Elapsed seconds when [`FIT_FROM`] steps were done (the start of the rate measurement).
    fit_start: Option<f64>,
    /// Elapsed seconds at the end of the last step.
    last_step_end: f64,
    /// The shortest step of this process after its first: what [`Progress::after_step`]
    /// expects the next step to take. The first step is left out because it compiles and tunes
    /// the kernels (265 s for the shapes transformer on the autotuned CUDA build, against
    /// 0.22 s for the next): counted, it ended a 7.4-minute run after that one step.
    fastest_step: Option<f64>,
}

/// Steps of this process skipped before measuring the step rate (kernel autotuning and
/// compilation make the first steps slow on GPU backends).
pub const FIT_FROM: usize = 10;
/// Steps over which the rate is measured for [`Progress::fit_steps`].
pub const FIT_OVER: usize = 20;
/// Seconds kept free at the end of the budget for the last checkpoint and the export.
pub const FIT_RESERVE_SECONDS: f64 = 20.0;

impl Progress {
    /// Starts timing at `first_step` of `total_steps`; `max_minutes` bounds this process's
    /// training time, and with `fit_to_budget` the schedule is shortened to end inside it.
    pub fn new(
        first_step: usize,
        total_steps: usize,
        earlier_seconds: f64,
        max_minutes: Option<f64>,
        fit_to_budget: bool,
    ) -> Self {
        Self {
            start: Instant::now(),
            earlier_seconds,
            first_step,
            total_steps,
            budget_seconds: max_minutes.map(|m| m * 60.0),
            fit_to_budget,
            fit_start: None,
            last_step_end: 0.0,
            fastest_step: None,
        }
    }

    /// With a budget, shortens the run so that it ends inside the budget with its learning-rate
    /// schedule complete: after `step` (0-based, done), once [`FIT_FROM`] + [`FIT_OVER`] steps of
    /// this process are done, the step rate of the last [`FIT_OVER`] steps sets the new total
    /// (never above the requested one). Returns the new total when it changed.
    pub fn fit_steps(&mut self, step: usize) -> Option<usize> {
        let budget = self.budget_seconds.filter(|_| self.fit_to_budget)?;
        let done_here = step + 1 - self.first_step;
        if done_here == FIT_FROM {
            self.fit_start = Some(self.elapsed());
        }
        if done_here != FIT_FROM + FIT_OVER {
            return None;
        }
        let rate = FIT_OVER as f64 / (self.elapsed() - self.fit_start?).max(1e-9);
        let affordable = ((budget - self.elapsed() - FIT_RESERVE_SECONDS).max(0.0) * rate) as usize;
        let total = self.total_steps.min(step + 1 + affordable);
        (total != self.total_steps).then(|| {
            self.total_steps = total;
            total
        })
    }

    /// Whether step `step` (0-based, just done) gets a progress line: every `log_every` steps,
    /// the last step, and steps 1, 2, 3, 5, 10, 20 of this process, so that a GPU run shows how
    /// long kernel compilation takes before the first full interval.
    pub fn should_log(&self, step: usize, log_every: usize) -> bool {
        let done = step + 1;
        let done_here = done - self.first_step;
        done.is_multiple_of(log_every)
            || done == self.total_steps
            || (done_here < log_every && matches!(done_here, 1 | 2 | 3 | 5 | 10 | 20))
    }

    /// The schedule's length: requested, or fitted to the budget by [`Progress::after_step`].
    pub fn total_steps(&self) -> usize {
        self.total_steps
    }

    /// Ends step `step` (0-based, just done): fits the schedule to the budget once the step rate is
    /// known (announced through `progress`), and says whether to checkpoint (every
    /// `checkpoint_every` steps, at the end, and when the budget is spent) and whether to stop.
    pub fn after_step(&mut self, step: usize, checkpoint_every: usize, progress: &mut dyn FnMut(&str)) -> StepEnd {
        let now = self.elapsed();
        if step > self.first_step {
            let took = now - self.last_step_end;
            self.fastest_step = Some(self.fastest_step.map_or(took, |fastest| fastest.min(took)));
        }
        self.last_step_end = now;
        let stop = self.out_of_time();
        if let Some(fitted) = self.fit_steps(step) {
            progress(&format!("fitting the run to the time budget: {fitted} steps in all"));
        }
        let done = step + 1;
        StepEnd { checkpoint: done.is_multiple_of(checkpoint_every) || done == self.total_steps || stop, stop }
    }

    /// Seconds of this process.
    pub fn elapsed(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    /// Seconds of the whole run, resumed parts included.
    pub fn total_elapsed(&self) -> f64 {
        self.earlier_seconds + self.elapsed()
    }

    /// Steps per second of this process after `step` (0-based, done).
    pub fn steps_per_second(&self, step: usize) -> f64 {
        (step + 1 - self.first_step) as f64 / self.elapsed().max(1e-9)
    }

    /// Whether the budget is spent, leaving room for one more step as long as the shortest
    /// since the first (so the final save happens inside the budget).
    pub fn out_of_time(&self) -> bool {
        self.budget_seconds.is_some_and(|budget| self.elapsed() + self.fastest_step.unwrap_or(0.0) > budget)
    }

    /// `step 120/3000 | loss 1.234e-1 … | lr 5.0e-4 | 3.41 steps/s | ETA 14m05s`.
    pub fn line(&self, step: usize, terms: &[(&str, f64)], lr: f64) -> String {
        let rate = self.steps_per_second(step);
        let remaining = (self.total_steps - step - 1) as f64 / rate;
        let eta = match self.budget_seconds {
            Some(budget) => remaining.min((budget - self.elapsed()).max(0.0)),
            None => remaining,
        };
        let terms: Vec<String> = terms.iter().map(|(name, value)| format!("{name} {value:.4e}")).collect();
        format!(
            "step {}/{} | {} | lr {lr:.2e} | {rate:.2} steps/s | ETA {}m{:02}s",
            step + 1,
            self.total_steps,
            terms.join(" "),
            (eta / 60.0) as u64,
            (eta % 60.0) as u64
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_lines_come_early_then_every_interval() {
        let timer = Progress::new(0, 1000, 0.0, None, true);
        let logged: Vec<usize> = (0..1000).filter(|&step| timer.should_log(step, 100)).map(|step| step + 1).collect();
        assert_eq!(logged, [1, 2, 3, 5, 10, 20, 100, 200, 300, 400, 500, 600, 700, 800, 900, 1000]);
        // A resumed process counts its early steps from where it starts; the last step always logs.
        let resumed = Progress::new(500, 1003, 0.0, None, true);
        let logged: Vec<usize> =
            (500..1003).filter(|&step| resumed.should_log(step, 100)).map(|step| step + 1).collect();
        assert_eq!(logged, [501, 502, 503, 505, 510, 520, 600, 700, 800, 900, 1000, 1003]);
    }

    #[test]
    fn a_budget_shortens_the_schedule_unless_it_is_kept() {
        // 0.6 s of budget, less than the reserve kept for the final save: fitting ends the run
        // at the step where the rate is first known.
        for (fit, total) in [(true, FIT_FROM + FIT_OVER), (false, 1000)] {
            let mut timer = Progress::new(0, 1000, 0.0, Some(0.01), fit);
            for step in 0..FIT_FROM + FIT_OVER {
                timer.after_step(step, 500, &mut |_| {});
            }
            assert_eq!(timer.total_steps(), total, "fit_to_budget {fit}");
        }
    }

    #[test]
    fn a_slow_first_step_does_not_end_the_budget() {
        // 1.2 s of budget; the first step (kernel tuning) takes 0.7 s: another as slow would
        // not fit, but the next steps are quick and the run goes on until the budget is spent.
        let mut timer = Progress::new(0, 1000, 0.0, Some(0.02), false);
        std::thread::sleep(std::time::Duration::from_millis(700));
        assert!(!timer.after_step(0, 500, &mut |_| {}).stop);
        assert!(!timer.after_step(1, 500, &mut |_| {}).stop);
        std::thread::sleep(std::time::Duration::from_millis(600));
        let end = timer.after_step(2, 500, &mut |_| {});
        assert!(end.stop && end.checkpoint);
    }

    #[test]
    fn loss_windows_keep_the_first_and_latest_means() {
        let mut windows = LossWindows::default();
        for loss in [4.0, 2.0] {
            windows.push(loss);
        }
        assert_eq!(windows.close(), 3.0);
        windows.push(1.0);
        assert_eq!(windows.close(), 1.0);
        windows.push(0.5);
        // The partly filled last window closes on finish.
        assert_eq!(windows.finish(), (3.0, 0.5));
        let (first, last) = LossWindows::default().finish();
        assert!(first.is_nan() && last.is_nan());
    }

    #[test]
    fn without_a_budget_steps_checkpoint_on_the_interval_and_at_the_end() {
        let mut timer = Progress::new(0, 25, 0.0, None, true);
        let mut said = Vec::new();
        let ends: Vec<(usize, bool)> = (0..25)
            .map(|step| (step + 1, timer.after_step(step, 10, &mut |line| said.push(line.to_string()))))
            .filter(|(_, end)| end.checkpoint || end.stop)
            .map(|(done, end)| (done, end.stop))
            .collect();
        assert_eq!(ends, [(10, false), (20, false), (25, false)]);
        assert!(said.is_empty());
    }

    #[test]
    fn a_resumed_curve_keeps_each_step_once() {
        let dir = std::env::temp_dir().join(format!("vq-train-curve-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let csv = dir.join("loss.csv");
        let mut curve = LossCurve::open(&csv, &["loss", "aux"], 0).unwrap();
        for step in 0..5 {
            curve.record(step, &[1.0 / (step + 1) as f64, 0.5], 1e-3, step as f64).unwrap();
        }
        curve.flush_and_plot(&dir.join("loss.png")).unwrap();
        drop(curve);
        let mut resumed = LossCurve::open(&csv, &["loss", "aux"], 3).unwrap();
        resumed.record(3, &[0.3, 0.5], 1e-3, 9.0).unwrap();
        resumed.flush_and_plot(&dir.join("loss.png")).unwrap();
        let text = std::fs::read_to_string(&csv).unwrap();
        let steps: Vec<&str> = text.lines().map(|l| l.split(',').next().unwrap()).collect();
        assert_eq!(steps, ["step", "0", "1", "2", "3"]);
        assert!(text.lines().last().unwrap().starts_with("3,3.000000e-1,5.000000e-1,"));
        assert_eq!(image::open(dir.join("loss.png")).unwrap().width(), 480);
        std::fs::remove_dir_all(dir).ok();
    }
}
