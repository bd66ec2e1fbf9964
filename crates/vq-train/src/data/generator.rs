//! The seeded sample generator: `(seed, split, index)` → image, caption and ground truth.

use image::RgbImage;
use serde::{Deserialize, Serialize};

use super::caption::{Mentions, Prompt};
use super::render::render;
use super::scene::{Grid, ObjectSpec, Placement, Scene};
use super::split::{HeldOut, Split};
use super::vocab::{Color, Position, Shape, Size};
use crate::rng::SplitMix64;
use crate::TrainError;

/// Probabilities that a caption names each optional attribute.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MentionRates {
    /// Probability that object sizes are named.
    pub size: f64,
    /// Probability that object positions are named.
    pub position: f64,
    /// Probability that the background is named.
    pub background: f64,
}

impl MentionRates {
    /// Every attribute always named (for evaluation prompts).
    pub const ALWAYS: MentionRates = MentionRates { size: 1.0, position: 1.0, background: 1.0 };
}

/// Configuration of the procedural dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetConfig {
    /// Side of the square images in pixels. 64 (default) puts 16 × 16-pixel tiles of a
    /// 4× downsampling VQ-VAE on a 16 × 16 latent grid and gives small objects ≥ 9 pixels.
    pub image_size: u32,
    /// Sub-pixel samples per axis for anti-aliasing (1 = hard edges).
    pub supersampling: u32,
    /// Probability that a scene has two objects instead of one.
    pub two_objects: f64,
    /// How often captions name the optional attributes.
    pub mentions: MentionRates,
    /// The share of all scenes that are two objects whose caption names no position ("a red
    /// circle and a blue square …"). `None` (default): it follows from the other rates,
    /// `two_objects × (1 − mentions.position)` (8.75 % by default). `Some(s)`: a scene is such a
    /// pair with probability `s`; the other scenes — single objects, and pairs with positions
    /// named — keep their proportions to each other, and a single object's caption names its
    /// position at `mentions.position` as before ([`DatasetConfig::unpositioned_pair_share`]).
    /// Unpositioned pairs are where a model must choose two places itself, which a sampler that
    /// draws every latent pixel independently turns into extra copies; this raises their share.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unpositioned_pairs: Option<f64>,
    /// Combinations kept out of [`Split::Train`] and [`Split::Validation`].
    pub held_out: HeldOut,
}

impl Default for DatasetConfig {
    fn default() -> Self {
        Self {
            image_size: 64,
            supersampling: 4,
            two_objects: 0.35,
            unpositioned_pairs: None,
            mentions: MentionRates { size: 0.75, position: 0.75, background: 0.6 },
            held_out: HeldOut::default(),
        }
    }
}

/// Smallest supported image side: below it a small object is under 4 pixels across.
pub const MIN_IMAGE_SIZE: u32 = 24;

impl DatasetConfig {
    /// Checks every field.
    pub fn validate(&self) -> Result<(), TrainError> {
        let invalid = |field, reason: String| Err(TrainError::InvalidConfig { field, reason });
        if self.image_size < MIN_IMAGE_SIZE {
            return invalid("image_size", format!("= {} is below {MIN_IMAGE_SIZE}", self.image_size));
        }
        if self.supersampling == 0 {
            return invalid("supersampling", "must be at least 1".into());
        }
        let rates = [
            ("two_objects", self.two_objects),
            ("mentions.size", self.mentions.size),
            ("mentions.position", self.mentions.position),
            ("mentions.background", self.mentions.background),
        ];
        for (field, p) in rates {
            if !(0.0..=1.0).contains(&p) {
                return invalid(field, format!("= {p} is not a probability in [0, 1]"));
            }
        }
        if let Some(share) = self.unpositioned_pairs {
            if !(0.0..=1.0).contains(&share) {
                return invalid("unpositioned_pairs", format!("= {share} is not a probability in [0, 1]"));
            }
            if share < 1.0 && self.other_scenes() <= 0.0 {
                return invalid(
                    "unpositioned_pairs",
                    format!(
                        "= {share} leaves {} of scenes to other kinds, but two_objects = 1 and \
                         mentions.position = 0 allow none",
                        1.0 - share
                    ),
                );
            }
        }
        if self.held_out.is_empty() {
            return invalid("held_out", "must name at least one combination".into());
        }
        // A training scene needs allowed objects in two distinct cells.
        let trainable_cells = Position::ALL
            .iter()
            .filter(|&&position| {
                Shape::ALL.iter().any(|&shape| {
                    Color::ALL.iter().any(|&color| {
                        let object = ObjectSpec { shape, color, size: Size::Small, position };
                        !self.held_out.holds_out(&object)
                    })
                })
            })
            .count();
        if trainable_cells < 2 {
            return invalid("held_out", "leaves training objects in fewer than two cells".into());
        }
        Ok(())
    }

    /// The share of scenes that are two objects with no position named: `unpositioned_pairs`, or
    /// what the other rates give without it.
    pub fn unpositioned_pair_share(&self) -> f64 {
        self.unpositioned_pairs.unwrap_or(self.two_objects * (1.0 - self.mentions.position))
    }

    /// The weight of the scene kinds other than unpositioned pairs under the rates alone: single
    /// objects (1 − two_objects) and pairs with positions named (two_objects × mentions.position).
    fn other_scenes(&self) -> f64 {
        (1.0 - self.two_objects) + self.two_objects * self.mentions.position
    }
}

/// A scene's layout when [`DatasetConfig::unpositioned_pairs`] fixes it: the object count, and
/// whether the caption names positions (`None`: drawn at `mentions.position`).
#[derive(Debug, Clone, Copy)]
struct Layout {
    /// Whether the scene has two objects.
    two: bool,
    /// Whether the caption names positions; `None`: drawn at `mentions.position`.
    positions_named: Option<bool>,
}

/// One generated example.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The rendered image, `image_size` × `image_size` RGB (row-major HWC bytes).
    pub image: RgbImage,
    /// The caption ([`Prompt::caption`] of `prompt`).
    pub caption: String,
    /// What the caption says.
    pub prompt: Prompt,
    /// The objects drawn, in caption order.
    pub objects: Vec<ObjectSpec>,
    /// Where each object was drawn (same order as `objects`).
    pub placements: Vec<Placement>,
    /// The background colour.
    pub background: Color,
}

impl Sample {
    /// The scene (background and objects).
    pub fn scene(&self) -> Scene {
        Scene { background: self.background, objects: self.objects.clone() }
    }
}

/// An unlimited, deterministic dataset: sample `i` of a split is a pure function of
/// `(config, seed, split, i)`.
#[derive(Debug, Clone)]
pub struct Dataset {
    config: DatasetConfig,
    seed: u64,
}

impl Dataset {
    /// A dataset with a validated config.
    pub fn new(config: DatasetConfig, seed: u64) -> Result<Self, TrainError> {
        config.validate()?;
        Ok(Self { config, seed })
    }

    /// The config.
    pub fn config(&self) -> &DatasetConfig {
        &self.config
    }

    /// The seed every sample is drawn from.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The grid of this dataset's images.
    pub fn grid(&self) -> Grid {
        Grid { image_size: self.config.image_size }
    }

    /// Sample `index` of `split`.
    pub fn sample(&self, split: Split, index: u64) -> Sample {
        let mut rng = SplitMix64::for_item(self.seed, split.stream(), index);
        let layout = self.config.unpositioned_pairs.map(|share| self.layout(share, &mut rng));
        let two = layout.map(|layout| layout.two);
        let scene = match split {
            Split::Train | Split::Validation => self.training_scene(two, &mut rng),
            Split::HeldOut => self.held_out_scene(two, &mut rng),
        };
        let grid = self.grid();
        let placements: Vec<Placement> = scene.objects.iter().map(|object| grid.place(object, &mut rng)).collect();
        let rates = self.config.mentions;
        let mentions = Mentions {
            size: rng.bernoulli(rates.size),
            position: match layout.and_then(|layout| layout.positions_named) {
                Some(named) => named,
                None => rng.bernoulli(rates.position),
            },
            background: rng.bernoulli(rates.background),
        };
        let prompt = Prompt::describe(&scene, mentions);
        let drawn: Vec<(ObjectSpec, Placement)> =
            scene.objects.iter().copied().zip(placements.iter().copied()).collect();
        let image = render(scene.background, &drawn, self.config.image_size, self.config.supersampling);
        Sample {
            image,
            caption: prompt.caption(),
            prompt,
            objects: scene.objects,
            placements,
            background: scene.background,
        }
    }

    /// The layout of a scene under `unpositioned_pairs = share`: an unpositioned pair with
    /// probability `share`, else a single object or a positioned pair in the proportions of
    /// `two_objects` and `mentions.position` (`validate` makes their weight positive when
    /// `share < 1`).
    fn layout(&self, share: f64, rng: &mut SplitMix64) -> Layout {
        if rng.bernoulli(share) {
            return Layout { two: true, positions_named: Some(false) };
        }
        let positioned_pairs = self.config.two_objects * self.config.mentions.position;
        let two = rng.bernoulli(positioned_pairs / self.config.other_scenes());
        Layout { two, positions_named: two.then_some(true) }
    }

    /// A scene without held-out combinations. The object count is drawn first (unless `two`
    /// gives it); each object is then drawn by rejection (≈ 22 % of draws are rejected with the
    /// default lists), so the two-object rate stays `two_objects` exactly.
    fn training_scene(&self, two: Option<bool>, rng: &mut SplitMix64) -> Scene {
        let held_out = &self.config.held_out;
        let objects = self.random_objects(rng, two, None, |object| !held_out.holds_out(object));
        Scene { background: contrasting_background(&objects, rng), objects }
    }

    /// A scene with at least one held-out object: a combination drawn uniformly from both
    /// lists, the other attributes at random, an optional second (unconstrained) object, and a
    /// random order.
    fn held_out_scene(&self, two: Option<bool>, rng: &mut SplitMix64) -> Scene {
        let held_out = &self.config.held_out;
        let mut object = random_object(rng, &Position::ALL);
        let choice = rng.below(held_out.len());
        match held_out.color_shape.get(choice) {
            Some(&(color, shape)) => (object.color, object.shape) = (color, shape),
            None => {
                let (shape, position) = held_out.shape_position[choice - held_out.color_shape.len()];
                (object.shape, object.position) = (shape, position);
            }
        }
        let mut objects = self.random_objects(rng, two, Some(object), |_| true);
        if objects.len() == 2 && rng.bernoulli(0.5) {
            objects.swap(0, 1);
        }
        Scene { background: contrasting_background(&objects, rng), objects }
    }

    /// One or two objects (`two`, else drawn at `two_objects`) in distinct cells, starting from
    /// `first` if given; drawn objects are redrawn until `allowed` accepts them (`validate`
    /// guarantees that allowed objects exist in at least two cells, so this ends).
    fn random_objects(
        &self,
        rng: &mut SplitMix64,
        two: Option<bool>,
        first: Option<ObjectSpec>,
        allowed: impl Fn(&ObjectSpec) -> bool,
    ) -> Vec<ObjectSpec> {
        let two = two.unwrap_or_else(|| rng.bernoulli(self.config.two_objects));
        let draw = |rng: &mut SplitMix64, positions: &[Position]| loop {
            let object = random_object(rng, positions);
            if allowed(&object) {
                return object;
            }
        };
        let first = first.unwrap_or_else(|| draw(rng, &Position::ALL));
        let mut objects = vec![first];
        if two {
            let free: Vec<Position> = Position::ALL.into_iter().filter(|&p| p != first.position).collect();
            objects.push(draw(rng, &free));
        }
        objects
    }
}

/// An object with uniformly random attributes, its position drawn from `positions`.
fn random_object(rng: &mut SplitMix64, positions: &[Position]) -> ObjectSpec {
    ObjectSpec {
        shape: *rng.choose(&Shape::ALL),
        color: *rng.choose(&Color::ALL),
        size: *rng.choose(&Size::ALL),
        position: *rng.choose(positions),
    }
}

/// A background colour drawn uniformly from those contrasting with every object (at least three
/// exist for any two objects: each colour excludes itself and at most two close colours).
fn contrasting_background(objects: &[ObjectSpec], rng: &mut SplitMix64) -> Color {
    let choices: Vec<Color> =
        Color::ALL.into_iter().filter(|bg| objects.iter().all(|object| bg.contrasts_with(object.color))).collect();
    *rng.choose(&choices)
}
