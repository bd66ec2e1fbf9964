//! Scoring an image against a prompt, and accumulating scores into per-attribute accuracies.

use std::fmt;

use image::RgbImage;
use serde::{Deserialize, Serialize};

use super::measure::{measure, MeasuredObject};
use super::segment::{background_distance, connected_components, estimate_background, FOREGROUND_THRESHOLD};
use crate::data::{Color, Grid, Mentions, ObjectPrompt, Position, Prompt, Sample, Shape};

/// Components smaller than this fraction of the smallest possible object (a triangle or
/// diamond of side 0.42 cells, area 0.5 · (0.42 c)²) are treated as noise, not objects.
pub const MIN_OBJECT_FRACTION: f64 = 0.25;

/// How one named object was rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectScore {
    /// The colour the prompt names.
    pub named_color: Color,
    /// The colour of the detected object matched to it; `None` if none was (then every attribute
    /// is wrong).
    pub drawn_color: Option<Color>,
    /// Whether the size is right; `None` if the prompt names no size.
    pub size: Option<bool>,
    /// Whether the position is right; `None` if the prompt names no position.
    pub position: Option<bool>,
    /// The position the prompt names, if any.
    pub named_position: Option<Position>,
    /// The shape the prompt names.
    pub named_shape: Shape,
    /// The shape of the detected object matched to it; `None` if none was (then every attribute
    /// is wrong).
    pub drawn_shape: Option<Shape>,
}

impl ObjectScore {
    /// Whether a detected object was matched to it.
    pub fn found(&self) -> bool {
        self.drawn_shape.is_some()
    }

    /// Whether the colour is right.
    pub fn color(&self) -> bool {
        self.drawn_color == Some(self.named_color)
    }

    /// Whether the shape is right.
    pub fn shape(&self) -> bool {
        self.drawn_shape == Some(self.named_shape)
    }

    fn correct_count(&self) -> usize {
        [Some(self.color()), Some(self.shape()), self.size, self.position]
            .into_iter()
            .filter(|v| *v == Some(true))
            .count()
    }

    /// Whether every named attribute is right.
    pub fn all_correct(&self) -> bool {
        self.found() && self.color() && self.shape() && self.size.unwrap_or(true) && self.position.unwrap_or(true)
    }
}

/// How an image matches a prompt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageScore {
    /// One score per named object, in prompt order.
    pub objects: Vec<ObjectScore>,
    /// Whether the background is right; `None` if the prompt names none.
    pub background: Option<bool>,
    /// Whether the image has exactly as many objects as the prompt names.
    pub count: bool,
    /// The measured background colour.
    pub measured_background: Color,
    /// Every detected object, largest first.
    pub detected: Vec<MeasuredObject>,
}

impl ImageScore {
    /// Whether the image shows exactly what the prompt asks: right count, right background (if
    /// named) and every named attribute of every object.
    pub fn all_correct(&self) -> bool {
        self.count && self.background.unwrap_or(true) && self.objects.iter().all(ObjectScore::all_correct)
    }
}

/// Detects the objects of a square image of the dataset's kind, largest first.
///
/// # Panics
/// If the image is not square.
pub fn detect(image: &RgbImage) -> (Color, Vec<MeasuredObject>) {
    let (width, height) = image.dimensions();
    assert_eq!(width, height, "the evaluator expects square images, got {width} × {height}");
    let grid = Grid { image_size: width };
    let background = estimate_background(image);
    let distance = background_distance(image, background);
    let mask: Vec<bool> = distance.iter().map(|&d| d > FOREGROUND_THRESHOLD).collect();
    let smallest_object = 0.5 * (0.42 * grid.cell_side()).powi(2);
    let min_area = (MIN_OBJECT_FRACTION * smallest_object).max(2.0);
    let mut objects: Vec<MeasuredObject> = connected_components(&mask, width as usize)
        .into_iter()
        .filter(|component| component.pixels.len() as f64 >= min_area)
        .map(|component| measure(image, background, &distance, &component, &grid))
        .collect();
    objects.sort_by_key(|object| std::cmp::Reverse(object.area));
    (Color::nearest(background), objects)
}

/// Scores `image` against `prompt`.
///
/// Named objects are matched to detected ones (each detection used at most once) by the
/// assignment with the most correct attributes; ties go to larger detections. The candidates
/// are the `n + 2` largest detections for `n` named objects.
pub fn evaluate(image: &RgbImage, prompt: &Prompt) -> ImageScore {
    let (measured_background, detected) = detect(image);
    let candidates = detected.len().min(prompt.objects.len() + 2);
    let mut best: Option<(usize, usize, Vec<ObjectScore>)> = None;
    let mut assignment = Vec::with_capacity(prompt.objects.len());
    search(prompt, &detected[..candidates], &mut assignment, &mut best);
    let objects = best.map(|(_, _, scores)| scores).expect("the search visits at least one assignment");
    ImageScore {
        objects,
        background: prompt.background.map(|bg| bg == measured_background),
        count: detected.len() == prompt.objects.len(),
        measured_background,
        detected,
    }
}

/// Scores `sample`'s image against its full ground truth (every attribute named).
pub fn evaluate_ground_truth(sample: &Sample) -> ImageScore {
    evaluate(&sample.image, &Prompt::describe(&sample.scene(), Mentions::ALL))
}

/// Depth-first search over injective assignments of named objects to candidates (`None` =
/// unmatched), keeping the best by (correct attributes, −sum of candidate ranks).
fn search(
    prompt: &Prompt,
    candidates: &[MeasuredObject],
    assignment: &mut Vec<Option<usize>>,
    best: &mut Option<(usize, usize, Vec<ObjectScore>)>,
) {
    let depth = assignment.len();
    if depth == prompt.objects.len() {
        let scores: Vec<ObjectScore> = prompt
            .objects
            .iter()
            .zip(assignment.iter())
            .map(|(named, matched)| score_object(named, matched.map(|i| &candidates[i])))
            .collect();
        let correct = scores.iter().map(ObjectScore::correct_count).sum::<usize>();
        let rank_sum = assignment.iter().map(|m| m.unwrap_or(candidates.len())).sum::<usize>();
        let better = match best {
            None => true,
            Some((c, r, _)) => correct > *c || (correct == *c && rank_sum < *r),
        };
        if better {
            *best = Some((correct, rank_sum, scores));
        }
        return;
    }
    let free: Vec<usize> = (0..candidates.len()).filter(|i| !assignment.contains(&Some(*i))).collect();
    // Leave a named object unmatched only when no candidate is left for it.
    let options: Vec<Option<usize>> = if free.is_empty() { vec![None] } else { free.into_iter().map(Some).collect() };
    for option in options {
        assignment.push(option);
        search(prompt, candidates, assignment, best);
        assignment.pop();
    }
}

fn score_object(named: &ObjectPrompt, measured: Option<&MeasuredObject>) -> ObjectScore {
    match measured {
        None => ObjectScore {
            named_color: named.color,
            drawn_color: None,
            size: named.size.map(|_| false),
            position: named.position.map(|_| false),
            named_position: named.position,
            named_shape: named.shape,
            drawn_shape: None,
        },
        Some(m) => ObjectScore {
            named_color: named.color,
            drawn_color: Some(m.color),
            size: named.size.map(|size| size == m.size),
            position: named.position.map(|position| position == m.position),
            named_position: named.position,
            named_shape: named.shape,
            drawn_shape: Some(m.shape),
        },
    }
}

/// Correct and total counts of one attribute.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    /// Number of correct judgements.
    pub correct: usize,
    /// Number of judgements.
    pub total: usize,
}

impl Tally {
    fn add(&mut self, correct: bool) {
        self.correct += usize::from(correct);
        self.total += 1;
    }

    /// correct / total (NaN when empty).
    pub fn accuracy(&self) -> f64 {
        self.correct as f64 / self.total as f64
    }

    /// One standard error of [`Tally::accuracy`], √(p (1 − p) / n) — the binomial spread that
    /// decides whether two evaluations differ beyond noise (NaN when empty).
    pub fn standard_error(&self) -> f64 {
        let p = self.accuracy();
        (p * (1.0 - p) / self.total as f64).sqrt()
    }

    fn merge(&mut self, other: Tally) {
        self.correct += other.correct;
        self.total += other.total;
    }
}

/// A tally of judgements, each `true` when right.
impl FromIterator<bool> for Tally {
    fn from_iter<I: IntoIterator<Item = bool>>(judgements: I) -> Self {
        let mut tally = Tally::default();
        judgements.into_iter().for_each(|correct| tally.add(correct));
        tally
    }
}

/// Per-attribute accuracies over many scored images.
///
/// Image-level judgements are tallied as images are added; the per-object ones (colour, shape,
/// size, position, the confusion matrices, the breakdowns of [`EvalReport::held_out_table`]) are
/// computed from the judged objects, so they always agree with each other.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvalReport {
    /// Backgrounds (images whose background is named).
    pub background: Tally,
    /// Object counts (every image).
    pub count: Tally,
    /// Images with everything right ([`ImageScore::all_correct`]).
    pub image: Tally,
    /// Every judged object, in the order added.
    pub objects: Vec<ObjectScore>,
}

impl EvalReport {
    /// Adds one image's score.
    pub fn add(&mut self, score: &ImageScore) {
        self.objects.extend_from_slice(&score.objects);
        if let Some(background) = score.background {
            self.background.add(background);
        }
        self.count.add(score.count);
        self.image.add(score.all_correct());
    }

    /// Adds every judgement of `other` (another prompt set's report): the result is the report
    /// of both sets' images scored together.
    pub fn merge(&mut self, other: &EvalReport) {
        self.background.merge(other.background);
        self.count.merge(other.count);
        self.image.merge(other.image);
        self.objects.extend_from_slice(&other.objects);
    }

    /// Named objects matched to a detected object (every named object): the others are missing
    /// from the picture, or merged into another object.
    pub fn found(&self) -> Tally {
        self.tally(|object| Some(object.found()))
    }

    /// Object colours (every named object).
    pub fn color(&self) -> Tally {
        self.tally(|object| Some(object.color()))
    }

    /// Object shapes (every named object).
    pub fn shape(&self) -> Tally {
        self.tally(|object| Some(object.shape()))
    }

    /// Object sizes (named objects whose size is named).
    pub fn size(&self) -> Tally {
        self.tally(|object| object.size)
    }

    /// Object positions (named objects whose position is named).
    pub fn position(&self) -> Tally {
        self.tally(|object| object.position)
    }

    /// The objects' judgements of one attribute (`None`: not judged).
    fn tally(&self, judge: impl Fn(&ObjectScore) -> Option<bool>) -> Tally {
        self.objects.iter().filter_map(judge).collect()
    }

    /// Named objects by named shape (rows, [`Shape::ALL`]'s order) and drawn shape (columns, the
    /// same order, then "not found"): where the shape errors go.
    pub fn shape_confusion(&self) -> [[usize; 5]; 4] {
        self.confusion(&Shape::ALL, |o| o.named_shape, |o| o.drawn_shape)
    }

    /// Named objects by named colour (rows, [`Color::ALL`]'s order) and drawn colour (columns, the
    /// same order, then "not found"): where the colour errors go.
    pub fn color_confusion(&self) -> [[usize; 9]; 8] {
        self.confusion(&Color::ALL, |o| o.named_color, |o| o.drawn_color)
    }

    /// Counts of (named, drawn) values over `all`, with a last column for objects not found
    /// (`COLUMNS` = `ROWS` + 1).
    fn confusion<T: PartialEq + Copy, const ROWS: usize, const COLUMNS: usize>(
        &self,
        all: &[T; ROWS],
        named: impl Fn(&ObjectScore) -> T,
        drawn: impl Fn(&ObjectScore) -> Option<T>,
    ) -> [[usize; COLUMNS]; ROWS] {
        assert_eq!(COLUMNS, ROWS + 1, "one column per value, then \"not found\"");
        let mut matrix = [[0; COLUMNS]; ROWS];
        for object in &self.objects {
            let column = drawn(object).map_or(ROWS, |value| index_of(all, value));
            matrix[index_of(all, named(object))][column] += 1;
        }
        matrix
    }

    /// The attributes with their names, in display order. "count" is the share of images with
    /// exactly as many detected objects as named: extra copies and lost objects both fail it.
    pub fn attributes(&self) -> [(&'static str, Tally); 8] {
        [
            ("found", self.found()),
            ("color", self.color()),
            ("shape", self.shape()),
            ("size", self.size()),
            ("position", self.position()),
            ("background", self.background),
            ("count", self.count),
            ("image", self.image),
        ]
    }
}

/// Where `value` is in `all` (a vocabulary's `ALL`): its row or column of a confusion matrix.
pub(super) fn index_of<T: PartialEq + Copy>(all: &[T], value: T) -> usize {
    all.iter().position(|&v| v == value).expect("ALL lists every value")
}

impl EvalReport {
    /// [`EvalReport::shape_confusion`] as text: a header of drawn shapes, then one row per
    /// named shape.
    pub fn shape_confusion_table(&self) -> String {
        confusion_table(&Shape::ALL.map(Shape::word), &self.shape_confusion())
    }

    /// [`EvalReport::color_confusion`] as text: a header of drawn colours, then one row per
    /// named colour.
    pub fn color_confusion_table(&self) -> String {
        confusion_table(&Color::ALL.map(Color::word), &self.color_confusion())
    }
}

/// A confusion matrix as text: rows named by `labels`, columns the same labels then "not found".
fn confusion_table<const N: usize>(labels: &[&str], rows: &[[usize; N]]) -> String {
    let mut text = format!("{:>16} |", "named \\ drawn");
    for label in labels {
        text += &format!(" {label:>8}");
    }
    text += " not found\n";
    for (label, row) in labels.iter().zip(rows) {
        text += &format!("{label:>16} |");
        for count in row {
            text += &format!(" {count:>8}");
        }
        text += "\n";
    }
    text
}

impl fmt::Display for EvalReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, tally) in self.attributes() {
            writeln!(f, "{name:>10}: {:6.2} % ({}/{})", 100.0 * tally.accuracy(), tally.correct, tally.total)?;
        }
        Ok(())
    }
}
