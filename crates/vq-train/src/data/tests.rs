//! Dataset properties: determinism, caption grammar, the held-out split, and (property tests)
//! the geometry the evaluator relies on.

use proptest::prelude::*;

use super::*;
use crate::eval::detect;
use crate::rng::SplitMix64;
use crate::TrainError;

fn dataset(seed: u64) -> Dataset {
    Dataset::new(DatasetConfig::default(), seed).unwrap()
}

#[test]
fn same_seed_and_index_give_the_same_bytes() {
    let (a, b) = (dataset(5), dataset(5));
    for split in [Split::Train, Split::Validation, Split::HeldOut] {
        for index in [0, 1, 17, 123_456_789] {
            let (x, y) = (a.sample(split, index), b.sample(split, index));
            assert_eq!(x, y);
            assert_eq!(x.image.as_raw(), y.image.as_raw());
        }
    }
    // Other indices, seeds and splits give other samples.
    let first = a.sample(Split::Train, 0);
    assert_ne!(first.image, a.sample(Split::Train, 1).image);
    assert_ne!(first.image, dataset(6).sample(Split::Train, 0).image);
    assert_ne!(first.image, a.sample(Split::Validation, 0).image);
    assert_eq!(first.image.dimensions(), (64, 64));
}

#[test]
fn captions_describe_their_scenes_and_parse_back() {
    let dataset = dataset(1);
    for index in 0..2000 {
        let sample = dataset.sample(Split::Train, index);
        assert_eq!(sample.caption, sample.prompt.caption());
        assert_eq!(Prompt::parse(&sample.caption).as_ref(), Ok(&sample.prompt), "{}", sample.caption);
        assert!(sample.prompt.matches(&sample.scene()), "{}", sample.caption);
        assert_eq!(sample.objects.len(), sample.placements.len());
        for object in &sample.objects {
            assert!(sample.background.contrasts_with(object.color), "{}", sample.caption);
        }
        if let [a, b] = sample.objects.as_slice() {
            assert_ne!(a.position, b.position);
        }
    }
}

#[test]
fn training_covers_every_attribute_at_the_configured_rates() {
    let dataset = dataset(2);
    let n = 4000;
    let (mut shapes, mut colors, mut sizes, mut positions, mut backgrounds) = ([0; 4], [0; 8], [0; 2], [0; 9], [0; 8]);
    let (mut two, mut named_size, mut named_position, mut named_background) = (0, 0, 0, 0);
    for index in 0..n {
        let sample = dataset.sample(Split::Train, index);
        for object in &sample.objects {
            shapes[object.shape as usize] += 1;
            colors[object.color as usize] += 1;
            sizes[object.size as usize] += 1;
            positions[object.position as usize] += 1;
        }
        backgrounds[sample.background as usize] += 1;
        two += usize::from(sample.objects.len() == 2);
        let first = sample.prompt.objects[0];
        named_size += usize::from(first.size.is_some());
        named_position += usize::from(first.position.is_some());
        named_background += usize::from(sample.prompt.background.is_some());
    }
    for counts in [&shapes[..], &colors, &sizes, &positions, &backgrounds] {
        assert!(counts.iter().all(|&c| c > 100), "{counts:?}");
    }
    // Binomial(4000, p): sd ≤ 32; allow 5 sd (0.04).
    let rate = |count: usize| count as f64 / n as f64;
    let config = dataset.config();
    assert!((rate(two) - config.two_objects).abs() < 0.04, "two objects: {}", rate(two));
    assert!((rate(named_size) - config.mentions.size).abs() < 0.04);
    assert!((rate(named_position) - config.mentions.position).abs() < 0.04);
    assert!((rate(named_background) - config.mentions.background).abs() < 0.04);
}

#[test]
fn held_out_combinations_never_appear_in_training() {
    let dataset = dataset(3);
    let held_out = &dataset.config().held_out;
    for split in [Split::Train, Split::Validation] {
        for index in 0..5000 {
            let sample = dataset.sample(split, index);
            assert!(!held_out.holds_out_scene(&sample.scene()), "{split:?} {index}: {}", sample.caption);
        }
    }
    // The held-out split always has one, and shows every held-out combination.
    let (mut color_shape, mut shape_position) = (vec![0; 4], vec![0; 4]);
    for index in 0..2000 {
        let sample = dataset.sample(Split::HeldOut, index);
        assert!(held_out.holds_out_scene(&sample.scene()), "{index}: {}", sample.caption);
        for object in &sample.objects {
            if let Some(i) = held_out.color_shape.iter().position(|&p| p == (object.color, object.shape)) {
                color_shape[i] += 1;
            }
            if let Some(i) = held_out.shape_position.iter().position(|&p| p == (object.shape, object.position)) {
                shape_position[i] += 1;
            }
        }
    }
    assert!(color_shape.iter().chain(&shape_position).all(|&c| c > 100), "{color_shape:?} {shape_position:?}");
}

#[test]
fn invalid_configs_are_rejected_by_field() {
    let field = |config: DatasetConfig| match Dataset::new(config, 0) {
        Err(TrainError::InvalidConfig { field, .. }) => field,
        other => panic!("expected an invalid config, got {other:?}"),
    };
    assert_eq!(field(DatasetConfig { image_size: 16, ..Default::default() }), "image_size");
    assert_eq!(field(DatasetConfig { supersampling: 0, ..Default::default() }), "supersampling");
    assert_eq!(field(DatasetConfig { two_objects: 1.5, ..Default::default() }), "two_objects");
    let mentions = MentionRates { background: -0.1, ..MentionRates::ALWAYS };
    assert_eq!(field(DatasetConfig { mentions, ..Default::default() }), "mentions.background");
    let empty = HeldOut { color_shape: vec![], shape_position: vec![] };
    assert_eq!(field(DatasetConfig { held_out: empty, ..Default::default() }), "held_out");
    let everything = HeldOut {
        color_shape: Color::ALL.iter().flat_map(|&c| Shape::ALL.map(|s| (c, s))).collect(),
        shape_position: vec![],
    };
    assert_eq!(field(DatasetConfig { held_out: everything, ..Default::default() }), "held_out");
}

/// A single object with contrasting background, drawn at a random spot of its cell.
fn single_object() -> impl Strategy<Value = (ObjectSpec, Color, u32, u32, u64)> {
    (
        0..4usize,
        0..8usize,
        0..8usize,
        0..2usize,
        0..9usize,
        prop::sample::select(vec![48u32, 64, 96]),
        prop::sample::select(vec![1u32, 4]),
        any::<u64>(),
    )
        .prop_map(|(shape, color, background, size, position, image_size, supersampling, seed)| {
            let color = Color::ALL[color];
            let backgrounds: Vec<Color> = Color::ALL.into_iter().filter(|bg| bg.contrasts_with(color)).collect();
            let object = ObjectSpec {
                shape: Shape::ALL[shape],
                color,
                size: Size::ALL[size],
                position: Position::ALL[position],
            };
            (object, backgrounds[background % backgrounds.len()], image_size, supersampling, seed)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn rendered_object_centroid_lies_in_its_cell_and_its_fill_ratio_names_its_shape(
        (object, background, image_size, supersampling, seed) in single_object()
    ) {
        let grid = Grid { image_size };
        let placement = grid.place(&object, &mut SplitMix64::new(seed));
        // The exact centre of mass is in the named cell ...
        let exact = (placement.center.0, placement.center.1 + object.shape.centroid_offset(placement.side));
        prop_assert_eq!(grid.position_of(exact.0, exact.1), object.position);
        // ... and so is the measured one.
        let image = render::render(background, &[(object, placement)], image_size, supersampling);
        let (measured_background, detected) = detect(&image);
        prop_assert_eq!(measured_background, background);
        prop_assert_eq!(detected.len(), 1);
        let measured = &detected[0];
        prop_assert_eq!(measured.position, object.position);
        // Within rounding: a quarter of a pixel with anti-aliasing; with hard edges each row of a
        // triangle rounds its ends to pixel centres, which moved the centroid by up to 0.55 pixels
        // over 300,000 placements.
        let tolerance = if supersampling == 1 { 0.75 } else { 0.25 };
        prop_assert!((measured.centroid.0 - exact.0).abs() < tolerance && (measured.centroid.1 - exact.1).abs() < tolerance,
            "centroid {:?}, exact {:?}", measured.centroid, exact);
        // From 96 pixels on (small objects ≥ 13 pixels across) the fill ratio is nearest to the
        // shape's own (π/4, 1 or 1/2; triangles and diamonds share 1/2 and are told apart by the
        // centroid-anchored fit). Below, a small triangle's sub-pixel box can come out short (at
        // 64 pixels with 4× supersampling one measured 0.645, nearer π/4) and only the fit
        // (checked below for every size) names the shape.
        let nearest_fill = [std::f64::consts::FRAC_PI_4, 1.0, 0.5]
            .into_iter()
            .min_by(|a, b| (measured.fill_ratio - a).abs().total_cmp(&(measured.fill_ratio - b).abs()))
            .unwrap();
        if image_size >= 96 {
            prop_assert_eq!(nearest_fill, object.shape.fill_ratio(), "fill ratio {}", measured.fill_ratio);
        }
        // Hard-edged small objects under 96 pixels (under 11 pixels across) are named by
        // `hard_edged_small_objects_are_rarely_misnamed` below, as a rate.
        if !is_small_and_hard_edged(&object, image_size, supersampling) {
            prop_assert_eq!(measured.shape, object.shape);
        }
        prop_assert_eq!(measured.size, object.size);
        prop_assert_eq!(measured.color, object.color);
    }
}

/// Small objects drawn with hard edges in images under 96 pixels: 7–11 pixels across, sampled
/// at pixel centres only, where a few placements of one shape draw the pixels of another's fit.
fn is_small_and_hard_edged(object: &ObjectSpec, image_size: u32, supersampling: u32) -> bool {
    object.size == Size::Small && supersampling == 1 && image_size < 96
}

/// The fit names 0.05–0.1 % of these wrongly (76 of ≈ 66,000 in a census: small circles taken
/// for squares, small diamonds for circles); it must stay under 1 % on a fixed sample.
#[test]
fn hard_edged_small_objects_are_rarely_misnamed() {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = single_object();
    let (mut judged, mut misnamed) = (0, 0);
    while judged < 1000 {
        let (object, background, image_size, supersampling, seed) = strategy.new_tree(&mut runner).unwrap().current();
        if !is_small_and_hard_edged(&object, image_size, supersampling) {
            continue;
        }
        let placement = Grid { image_size }.place(&object, &mut SplitMix64::new(seed));
        let image = render::render(background, &[(object, placement)], image_size, supersampling);
        let (_, detected) = detect(&image);
        assert_eq!(detected.len(), 1, "{object:?} at {image_size} pixels");
        judged += 1;
        misnamed += usize::from(detected[0].shape != object.shape);
    }
    assert!(misnamed < 10, "{misnamed} of {judged} misnamed");
}

/// The three kinds of scene, by what a model must decide for itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    One,
    PositionedPair,
    UnpositionedPair,
}

fn kind(sample: &Sample) -> Kind {
    match (sample.objects.len(), sample.prompt.objects[0].position) {
        (1, _) => Kind::One,
        (_, Some(_)) => Kind::PositionedPair,
        (_, None) => Kind::UnpositionedPair,
    }
}

#[test]
fn unpositioned_pairs_set_their_share_and_the_other_kinds_keep_their_proportions() {
    let n = 4000;
    for share in [None, Some(0.0), Some(0.3), Some(0.5), Some(1.0)] {
        let config = DatasetConfig { unpositioned_pairs: share, ..DatasetConfig::default() };
        let dataset = Dataset::new(config.clone(), 21).unwrap();
        let mut counts = [0usize; 3];
        let (mut singles_named, mut singles) = (0, 0);
        for index in 0..n {
            let sample = dataset.sample(Split::Train, index);
            let kind = kind(&sample);
            counts[kind as usize] += 1;
            // Every object of a caption names its position, or none does.
            let named = sample.prompt.objects.iter().filter(|o| o.position.is_some()).count();
            assert!(named == 0 || named == sample.objects.len(), "{}", sample.caption);
            assert!(!config.held_out.holds_out_scene(&sample.scene()), "{}", sample.caption);
            if kind == Kind::One {
                singles += 1;
                singles_named += named;
            }
        }
        let rate = |count: usize| count as f64 / n as f64;
        let (t, p) = (config.two_objects, config.mentions.position);
        let s = config.unpositioned_pair_share();
        // The rest of the scenes split between single objects and positioned pairs as the rates do.
        let rest = 1.0 - s;
        let other = (1.0 - t) + t * p;
        let expected = [rest * (1.0 - t) / other, rest * t * p / other, s];
        // Binomial(4000, p): sd ≤ 0.008; allow 5 sd. Shares of 0 and 1 are exact.
        for (kind, (&count, &want)) in counts.iter().zip(&expected).enumerate() {
            let tolerance = if want == 0.0 || want == 1.0 { 0.0 } else { 0.04 };
            assert!(
                (rate(count) - want).abs() <= tolerance,
                "share {share:?}: kind {kind} at {} instead of {want}",
                rate(count)
            );
        }
        if singles > 0 {
            let named = singles_named as f64 / singles as f64;
            assert!((named - p).abs() < 0.05, "share {share:?}: single objects' positions named at {named}");
        }
    }
    // Without the field the share is what the rates give: 0.35 × (1 − 0.75).
    assert!((DatasetConfig::default().unpositioned_pair_share() - 0.0875).abs() < 1e-12);
}

#[test]
fn the_held_out_split_follows_the_unpositioned_share_too() {
    let config = DatasetConfig { unpositioned_pairs: Some(1.0), ..DatasetConfig::default() };
    let dataset = Dataset::new(config.clone(), 4).unwrap();
    for index in 0..500 {
        let sample = dataset.sample(Split::HeldOut, index);
        assert_eq!(kind(&sample), Kind::UnpositionedPair, "{}", sample.caption);
        assert!(config.held_out.holds_out_scene(&sample.scene()), "{}", sample.caption);
    }
}

#[test]
fn an_unpositioned_share_the_rates_cannot_give_is_refused() {
    let refused = |config: DatasetConfig| match Dataset::new(config, 0) {
        Err(TrainError::InvalidConfig { field, reason }) => (field, reason),
        other => panic!("expected an invalid config, got {other:?}"),
    };
    let (field, reason) = refused(DatasetConfig { unpositioned_pairs: Some(1.5), ..DatasetConfig::default() });
    assert_eq!((field, reason.as_str()), ("unpositioned_pairs", "= 1.5 is not a probability in [0, 1]"));
    // Every scene a pair with no position named leaves nothing for the other 70 %.
    let only_unpositioned = DatasetConfig {
        two_objects: 1.0,
        mentions: MentionRates { position: 0.0, ..MentionRates::ALWAYS },
        unpositioned_pairs: Some(0.3),
        ..DatasetConfig::default()
    };
    let (field, reason) = refused(only_unpositioned.clone());
    assert_eq!(field, "unpositioned_pairs");
    assert!(reason.starts_with("= 0.3 leaves 0.7 of scenes"), "{reason}");
    assert!(Dataset::new(DatasetConfig { unpositioned_pairs: Some(1.0), ..only_unpositioned }, 0).is_ok());
}

#[test]
fn configs_without_the_unpositioned_share_read_and_write_as_before() {
    let json = serde_json::to_value(DatasetConfig::default()).unwrap();
    assert!(json.get("unpositioned_pairs").is_none(), "{json}");
    let read: DatasetConfig = serde_json::from_value(json).unwrap();
    assert_eq!(read, DatasetConfig::default());
    let mixed = DatasetConfig { unpositioned_pairs: Some(0.25), ..DatasetConfig::default() };
    let json = serde_json::to_value(&mixed).unwrap();
    assert_eq!(json["unpositioned_pairs"], 0.25);
    assert_eq!(serde_json::from_value::<DatasetConfig>(json).unwrap(), mixed);
}
