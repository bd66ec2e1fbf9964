//! Dataset splits and the held-out attribute combinations that make the evaluation split a test
//! of compositional generalisation: a held-out (colour, shape) or (shape, position) pair never
//! appears in any training image, whatever its caption says.

use serde::{Deserialize, Serialize};

use super::scene::{ObjectSpec, Scene};
use super::vocab::{Color, Position, Shape};

/// Which part of the dataset a sample comes from. Each split is its own random stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Split {
    /// Scenes without any held-out combination.
    Train,
    /// Drawn like [`Split::Train`] from a different stream: in-distribution validation.
    Validation,
    /// Scenes with at least one object in a held-out combination.
    HeldOut,
}

impl Split {
    /// The stream key mixed into each sample's seed.
    pub(crate) fn stream(self) -> u64 {
        match self {
            Split::Train => 0,
            Split::Validation => 1,
            Split::HeldOut => 2,
        }
    }
}

/// Attribute combinations kept out of training.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldOut {
    /// (colour, shape) pairs no training object has.
    pub color_shape: Vec<(Color, Shape)>,
    /// (shape, position) pairs no training object has.
    pub shape_position: Vec<(Shape, Position)>,
}

impl Default for HeldOut {
    /// One pair per shape in each list, with distinct colours and positions, so every colour,
    /// shape and position still appears in training with other partners. "a red circle" (the
    /// command-line example) stays in training.
    fn default() -> Self {
        Self {
            color_shape: vec![
                (Color::Green, Shape::Circle),
                (Color::Yellow, Shape::Square),
                (Color::Blue, Shape::Triangle),
                (Color::Purple, Shape::Diamond),
            ],
            shape_position: vec![
                (Shape::Circle, Position::BottomLeft),
                (Shape::Square, Position::TopRight),
                (Shape::Triangle, Position::Center),
                (Shape::Diamond, Position::Left),
            ],
        }
    }
}

impl HeldOut {
    /// Whether the object is in a held-out combination.
    pub fn holds_out(&self, object: &ObjectSpec) -> bool {
        self.color_shape.contains(&(object.color, object.shape))
            || self.shape_position.contains(&(object.shape, object.position))
    }

    /// Whether any object of the scene is in a held-out combination.
    pub fn holds_out_scene(&self, scene: &Scene) -> bool {
        scene.objects.iter().any(|object| self.holds_out(object))
    }

    /// Number of combinations in both lists.
    pub fn len(&self) -> usize {
        self.color_shape.len() + self.shape_position.len()
    }

    /// Whether both lists are empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
