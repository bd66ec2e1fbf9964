//! The evaluator on the dataset's own ground truth.

use image::RgbImage;

use super::score::index_of;
use super::*;
use crate::data::{Dataset, DatasetConfig, Grid, MentionRates, Prompt, Split};
use crate::rng::SplitMix64;

fn dataset(image_size: u32, supersampling: u32) -> Dataset {
    let config = DatasetConfig { image_size, supersampling, mentions: MentionRates::ALWAYS, ..Default::default() };
    Dataset::new(config, 11).unwrap()
}

/// Adds independent uniform noise in [−amplitude, amplitude] to every channel (clamped).
fn add_noise(image: &RgbImage, amplitude: i32, rng: &mut SplitMix64) -> RgbImage {
    let mut noisy = image.clone();
    for value in noisy.iter_mut() {
        let delta = rng.below((2 * amplitude + 1) as usize) as i32 - amplitude;
        *value = (i32::from(*value) + delta).clamp(0, 255) as u8;
    }
    noisy
}

fn ground_truth_report(dataset: &Dataset, split: Split, count: u64, noise: i32) -> EvalReport {
    let mut rng = SplitMix64::new(99);
    let mut report = EvalReport::default();
    for index in 0..count {
        let sample = dataset.sample(split, index);
        let image = if noise > 0 { add_noise(&sample.image, noise, &mut rng) } else { sample.image.clone() };
        let prompt = Prompt::describe(&sample.scene(), crate::data::Mentions::ALL);
        report.add(&evaluate(&image, &prompt));
    }
    report
}

fn assert_accuracy(report: &EvalReport, at_least: f64, what: &str) {
    for (name, tally) in report.attributes() {
        assert!(tally.total > 0, "{what}: no {name} judgements");
        assert!(tally.accuracy() >= at_least, "{what}: {name} accuracy below {at_least}:\n{report}");
    }
}

#[test]
fn ground_truth_64_scores_at_least_99_percent() {
    let dataset = dataset(64, 4);
    for split in [Split::Train, Split::HeldOut] {
        let report = ground_truth_report(&dataset, split, 1000, 0);
        println!("64 px, {split:?}, clean:\n{report}");
        assert_accuracy(&report, 0.99, "64 px clean");
    }
}

#[test]
fn ground_truth_64_with_pixel_noise_scores_at_least_95_percent() {
    let dataset = dataset(64, 4);
    for amplitude in [8, 16] {
        let report = ground_truth_report(&dataset, Split::Train, 1000, amplitude);
        println!("64 px, noise ±{amplitude}:\n{report}");
        assert_accuracy(&report, 0.95, "64 px noisy");
    }
}

#[test]
fn ground_truth_hard_edges_and_32_pixels() {
    let report = ground_truth_report(&dataset(64, 1), Split::Train, 500, 0);
    println!("64 px, hard edges:\n{report}");
    assert_accuracy(&report, 0.99, "64 px hard edges");
    let report = ground_truth_report(&dataset(32, 4), Split::Train, 500, 0);
    println!("32 px:\n{report}");
    assert_accuracy(&report, 0.99, "32 px");
}

#[test]
fn wrong_prompts_are_judged_wrong() {
    let dataset = dataset(64, 4);
    let sample = dataset.sample(Split::Train, 0);
    let truth = Prompt::describe(&sample.scene(), crate::data::Mentions::ALL);
    assert!(evaluate(&sample.image, &truth).all_correct());
    let first = truth.objects[0];
    let other_color =
        crate::data::Color::ALL.into_iter().find(|&c| c != first.color && c != sample.background).unwrap();
    let mut wrong_color = truth.clone();
    wrong_color.objects[0].color = other_color;
    let score = evaluate(&sample.image, &wrong_color);
    assert!(!score.objects[0].color() && score.objects[0].shape() && !score.all_correct());
    let mut extra = truth.clone();
    extra.objects.push(first);
    let score = evaluate(&sample.image, &extra);
    assert!(!score.count && !score.all_correct());
    // A blank image finds nothing.
    let blank = RgbImage::from_pixel(64, 64, image::Rgb(sample.background.rgb()));
    let score = evaluate(&blank, &truth);
    assert!(score.detected.is_empty() && !score.objects[0].found() && score.background == Some(true));

    // The confusion table counts a named shape drawn as another in that other's column, and one
    // not found in the last.
    let named = index_of(&crate::data::Shape::ALL, first.shape);
    let other = (named + 1) % 4;
    let mut wrong = truth.clone();
    wrong.objects[0].shape = crate::data::Shape::ALL[other];
    let mut report = EvalReport::default();
    report.add(&evaluate(&sample.image, &wrong));
    report.add(&evaluate(&blank, &truth));
    assert_eq!(report.shape_confusion()[other][named], 1, "{}", report.shape_confusion_table());
    assert_eq!(report.shape_confusion()[named][4], 1, "{}", report.shape_confusion_table());

    // The colour table likewise: the caption's colour is the row, the drawn one the column.
    let index = |color| index_of(&crate::data::Color::ALL, color);
    let mut report = EvalReport::default();
    report.add(&evaluate(&sample.image, &wrong_color));
    report.add(&evaluate(&blank, &truth));
    let table = report.color_confusion_table();
    assert_eq!(report.color_confusion()[index(other_color)][index(first.color)], 1, "{table}");
    assert_eq!(report.color_confusion()[index(first.color)][8], 1, "{table}");
}

#[test]
fn the_confusion_tables_add_up_to_the_shape_and_colour_tallies() {
    let report = ground_truth_report(&dataset(64, 4), Split::HeldOut, 300, 16);
    check_confusion(&report.shape_confusion(), report.shape(), &report.shape_confusion_table(), "triangle |");
    check_confusion(&report.color_confusion(), report.color(), &report.color_confusion_table(), "blue |");
}

#[test]
fn merged_reports_equal_the_report_of_both_sets_scored_together() {
    let dataset = dataset(64, 4);
    // Every third image scored against the next one's prompt, so that there are errors to count.
    let scores: Vec<ImageScore> = (0..120)
        .map(|index| {
            let image = dataset.sample(Split::HeldOut, index).image;
            let described = dataset.sample(Split::HeldOut, if index % 3 == 0 { index + 1 } else { index });
            evaluate(&image, &Prompt::describe(&described.scene(), crate::data::Mentions::ALL))
        })
        .collect();
    let report_of = |scores: &[ImageScore]| {
        let mut report = EvalReport::default();
        scores.iter().for_each(|score| report.add(score));
        report
    };
    let together = report_of(&scores);
    assert!(together.shape().correct < together.shape().total, "no errors to merge:\n{together}");
    let mut merged = report_of(&scores[..50]);
    merged.merge(&report_of(&scores[50..]));
    assert_eq!(merged, together);
}

#[test]
fn the_standard_error_is_the_binomial_spread_of_the_accuracy() {
    let half = Tally { correct: 50, total: 100 };
    assert!((half.standard_error() - 0.05).abs() < 1e-12);
    let most = Tally { correct: 192, total: 219 };
    let p = 192.0 / 219.0;
    assert!((most.standard_error() - (p * (1.0 - p) / 219.0_f64).sqrt()).abs() < 1e-12);
    assert_eq!(Tally { correct: 7, total: 7 }.standard_error(), 0.0);
}

/// A confusion matrix counts every judgement of its attribute once, the right ones on its diagonal,
/// and its table has a header and one row per label, the third row starting with `third_row`.
fn check_confusion<const N: usize>(matrix: &[[usize; N]], tally: Tally, table: &str, third_row: &str) {
    let all: usize = matrix.iter().flatten().sum();
    let diagonal: usize = (0..matrix.len()).map(|i| matrix[i][i]).sum();
    assert_eq!((all, diagonal), (tally.total, tally.correct), "{table}");
    assert_eq!(table.lines().count(), matrix.len() + 1, "{table}");
    assert!(table.lines().nth(3).unwrap().trim_start().starts_with(third_row), "{table}");
}

#[test]
fn accuracy_holds_to_moderate_noise_then_breaks_down() {
    let dataset = dataset(64, 4);
    let image_accuracy = [0, 32, 48, 64].map(|amplitude| {
        let report = ground_truth_report(&dataset, Split::Train, 300, amplitude);
        if amplitude <= 32 {
            assert_accuracy(&report, 0.95, "64 px, noise ±32");
        }
        report.image.accuracy()
    });
    println!("image accuracy at noise 0, 32, 48, 64: {image_accuracy:?}");
    // Noise reaching the foreground threshold (distance 60, i.e. ±35 per channel at worst)
    // creates spurious objects: the evaluator must notice rather than stay generous.
    assert!(image_accuracy.windows(2).all(|w| w[1] <= w[0]), "{image_accuracy:?}");
    assert!(image_accuracy[3] < 0.5, "{image_accuracy:?}");
}

/// A 3 × 3 box blur, the kind of softness a small VQ decoder produces.
fn box_blur(image: &RgbImage) -> RgbImage {
    let (w, h) = image.dimensions();
    RgbImage::from_fn(w, h, |x, y| {
        let mut sum = [0u32; 3];
        let mut count = 0;
        for ny in y.saturating_sub(1)..=(y + 1).min(h - 1) {
            for nx in x.saturating_sub(1)..=(x + 1).min(w - 1) {
                let p = image.get_pixel(nx, ny).0;
                (0..3).for_each(|c| sum[c] += u32::from(p[c]));
                count += 1;
            }
        }
        image::Rgb(sum.map(|v| ((v as f64) / f64::from(count)).round() as u8))
    })
}

#[test]
fn blurred_ground_truth_still_scores_at_least_95_percent() {
    let dataset = dataset(64, 4);
    let mut report = EvalReport::default();
    for index in 0..500 {
        let sample = dataset.sample(Split::Train, index);
        let prompt = Prompt::describe(&sample.scene(), crate::data::Mentions::ALL);
        report.add(&evaluate(&box_blur(&sample.image), &prompt));
    }
    println!("64 px, 3 × 3 box blur:\n{report}");
    assert_accuracy(&report, 0.95, "64 px blurred");
}

#[test]
fn held_out_combinations_group_the_objects_they_name() {
    use crate::data::{Color, HeldOut, Position, Shape};
    let object = |color, shape, position: Option<Position>, drawn_shape, drawn_color| ObjectScore {
        named_color: color,
        drawn_color: Some(drawn_color),
        size: None,
        position: position.map(|_| true),
        named_position: position,
        named_shape: shape,
        drawn_shape: Some(drawn_shape),
    };
    let (purple, red) = (Color::Purple, Color::Red);
    let objects = vec![
        // In two combinations: counted in both.
        object(purple, Shape::Diamond, Some(Position::Left), Shape::Triangle, purple),
        object(purple, Shape::Diamond, Some(Position::Top), Shape::Diamond, purple),
        object(red, Shape::Circle, Some(Position::BottomLeft), Shape::Circle, red),
        object(red, Shape::Square, Some(Position::Top), Shape::Circle, Color::Blue),
        // No position named: in no (shape, position) combination.
        object(red, Shape::Square, None, Shape::Square, red),
    ];
    let mut report = EvalReport::default();
    report.add(&ImageScore {
        objects,
        background: None,
        count: true,
        measured_background: Color::Black,
        detected: Vec::new(),
    });
    let groups = report.by_held_out_combination(&HeldOut::default());
    let row = |label: &str| {
        let (_, group) = groups.iter().find(|(l, _)| l == label).unwrap_or_else(|| panic!("no row {label}"));
        (group.shape.correct, group.shape.total, group.color.correct, group.color.total)
    };
    assert_eq!(groups.len(), 9);
    assert_eq!(row("purple diamond"), (1, 2, 2, 2));
    assert_eq!(row("diamond on the left"), (0, 1, 1, 1));
    assert_eq!(row("circle in the bottom left"), (1, 1, 1, 1));
    assert_eq!(row("green circle"), (0, 0, 0, 0));
    assert_eq!(row("other objects"), (1, 2, 1, 2));
    let table = report.held_out_table(&HeldOut::default());
    assert_eq!(table.lines().count(), 10, "{table}");
    let purple_row = table.lines().find(|l| l.contains("purple diamond")).unwrap();
    assert!(purple_row.contains("50.0 % (  1/2  )") && purple_row.contains("100.0 %"), "{table}");
}

/// Pairs of objects as the data generator draws them, no positions named.
fn unpositioned_pairs(seed: u64) -> Dataset {
    let config = DatasetConfig {
        two_objects: 1.0,
        mentions: MentionRates { size: 0.0, position: 0.0, background: 1.0 },
        ..DatasetConfig::default()
    };
    Dataset::new(config, seed).unwrap()
}

/// `sample`'s image with `extra` objects drawn beside its own (each in a free cell).
fn render_with(sample: &crate::data::Sample, extra: &[crate::data::ObjectSpec], rng: &mut SplitMix64) -> RgbImage {
    let grid = Grid { image_size: 64 };
    let mut drawn: Vec<_> = sample.objects.iter().copied().zip(sample.placements.iter().copied()).collect();
    for &object in extra {
        drawn.push((object, grid.place(&object, rng)));
    }
    crate::data::render(sample.background, &drawn, 64, 4)
}

#[test]
fn counting_finds_pairs_extra_copies_and_lost_objects_on_rendered_scenes() {
    use crate::data::{Position, Shape};
    let dataset = unpositioned_pairs(5);
    let mut rng = SplitMix64::new(8);
    let n: u64 = 300;
    let (mut right, mut duplicate, mut third, mut lost) = (0, 0, 0, 0);
    for index in 0..n {
        let sample = dataset.sample(Split::Train, index);
        let prompt = sample.prompt.clone();
        assert!(prompt.objects.iter().all(|o| o.position.is_none()), "{}", sample.caption);
        // As drawn: two objects, both found, the count right.
        let score = evaluate(&sample.image, &prompt);
        assert_eq!(score.detected.len(), 2, "{index}: {}", sample.caption);
        right += usize::from(score.count && score.all_correct());

        // A free cell for the extra object.
        let taken: Vec<Position> = sample.objects.iter().map(|o| o.position).collect();
        let free: Vec<Position> = Position::ALL.into_iter().filter(|p| !taken.contains(p)).collect();
        let cell = *rng.choose(&free);
        // An extra copy of the first object: three detections, both named objects still found and
        // right, the count and the whole picture wrong.
        let copy = crate::data::ObjectSpec { position: cell, ..sample.objects[0] };
        let score = evaluate(&render_with(&sample, &[copy], &mut rng), &prompt);
        assert!(!score.count && !score.all_correct(), "{index}: {}", sample.caption);
        assert!(score.objects.iter().all(ObjectScore::found));
        duplicate += usize::from(score.detected.len() == 3 && score.objects.iter().all(|o| o.color() && o.shape()));
        // A third object of another shape counts as wrong the same way.
        let other = crate::data::ObjectSpec {
            shape: Shape::ALL[(sample.objects[1].shape as usize + 1) % 4],
            position: cell,
            ..sample.objects[1]
        };
        let score = evaluate(&render_with(&sample, &[other], &mut rng), &prompt);
        assert!(!score.count && !score.all_correct(), "{index}: {}", sample.caption);
        third += usize::from(score.detected.len() == 3);
        // The second object lost: one detection, one named object not found.
        let single = crate::data::Sample {
            objects: sample.objects[..1].to_vec(),
            placements: sample.placements[..1].to_vec(),
            ..sample.clone()
        };
        let score = evaluate(&render_with(&single, &[], &mut rng), &prompt);
        assert!(!score.count && !score.all_correct(), "{index}: {}", sample.caption);
        lost += usize::from(score.detected.len() == 1 && score.objects.iter().filter(|o| o.found()).count() == 1);
    }
    // Object detection is exact on clean renders; attributes are right ≥ 99 % (see above).
    assert_eq!((third, lost), (n as usize, n as usize));
    assert!(right as f64 >= 0.98 * n as f64, "{right} of {n} pairs right");
    assert!(duplicate as f64 >= 0.98 * n as f64, "{duplicate} of {n} copies counted with the pair right");
}

#[test]
fn a_report_tallies_found_objects_and_counts_per_image() {
    let dataset = unpositioned_pairs(6);
    let mut rng = SplitMix64::new(3);
    let mut report = EvalReport::default();
    for index in 0..10 {
        let sample = dataset.sample(Split::Train, index);
        // Even images as drawn, odd ones with the second object lost.
        let image = match index % 2 {
            0 => sample.image.clone(),
            _ => {
                let single = crate::data::Sample {
                    objects: sample.objects[..1].to_vec(),
                    placements: sample.placements[..1].to_vec(),
                    ..sample.clone()
                };
                render_with(&single, &[], &mut rng)
            }
        };
        report.add(&evaluate(&image, &sample.prompt));
    }
    assert_eq!(report.found(), Tally { correct: 15, total: 20 });
    assert_eq!(report.count, Tally { correct: 5, total: 10 });
    assert_eq!(report.position(), Tally::default());
    assert_eq!(report.attributes()[0], ("found", report.found()));
}
