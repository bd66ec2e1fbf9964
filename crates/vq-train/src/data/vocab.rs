//! The dataset's closed vocabulary: shapes, colours, sizes and grid positions, with the words
//! captions use for them.

use serde::{Deserialize, Serialize};

/// The shape of an object. Every shape fills a square bounding box of side `s` (see
/// [`crate::data::render`]); the fraction it covers is what the evaluator measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Shape {
    /// A disc of diameter `s`: fills π/4 ≈ 0.785 of its box.
    Circle,
    /// An axis-aligned square of side `s`: fills its box.
    Square,
    /// An upright isosceles triangle (apex at the top centre, base along the bottom edge): fills
    /// 1/2 of its box, with its centre of mass 2/3 of the way down.
    Triangle,
    /// A square rotated by 45° with its corners at the box's edge midpoints: fills 1/2 of its
    /// box, with its centre of mass at the box's centre.
    Diamond,
}

impl Shape {
    /// Every shape, in a fixed order.
    pub const ALL: [Shape; 4] = [Shape::Circle, Shape::Square, Shape::Triangle, Shape::Diamond];

    /// The caption word.
    pub fn word(self) -> &'static str {
        match self {
            Shape::Circle => "circle",
            Shape::Square => "square",
            Shape::Triangle => "triangle",
            Shape::Diamond => "diamond",
        }
    }

    /// The shape named by `word`, if any.
    pub fn from_word(word: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|shape| shape.word() == word)
    }
}

/// A named colour with a fixed sRGB value.
///
/// The values are far apart: the closest pair (yellow, orange) is ≈ 95 apart in RGB (Euclidean,
/// 0..255 per channel) and every other pair ≥ 110, so a measured colour within ≈ 45 of a value
/// names it unambiguously. Backgrounds are chosen at least [`MIN_CONTRAST`] from every object
/// colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Color {
    /// (220, 30, 30)
    Red,
    /// (40, 170, 60)
    Green,
    /// (40, 80, 230)
    Blue,
    /// (250, 225, 40)
    Yellow,
    /// (250, 135, 10)
    Orange,
    /// (140, 50, 190)
    Purple,
    /// (245, 245, 245)
    White,
    /// (20, 20, 20)
    Black,
}

/// Minimum RGB distance between a background and every object colour on it. It excludes the
/// three close pairs (yellow–orange, red–orange, blue–purple) and keeps the foreground
/// threshold of the evaluator (half of this) well above small pixel noise.
pub const MIN_CONTRAST: f64 = 120.0;

impl Color {
    /// Every colour, in a fixed order.
    pub const ALL: [Color; 8] = [
        Color::Red,
        Color::Green,
        Color::Blue,
        Color::Yellow,
        Color::Orange,
        Color::Purple,
        Color::White,
        Color::Black,
    ];

    /// The sRGB value.
    pub fn rgb(self) -> [u8; 3] {
        match self {
            Color::Red => [220, 30, 30],
            Color::Green => [40, 170, 60],
            Color::Blue => [40, 80, 230],
            Color::Yellow => [250, 225, 40],
            Color::Orange => [250, 135, 10],
            Color::Purple => [140, 50, 190],
            Color::White => [245, 245, 245],
            Color::Black => [20, 20, 20],
        }
    }

    /// The caption word.
    pub fn word(self) -> &'static str {
        match self {
            Color::Red => "red",
            Color::Green => "green",
            Color::Blue => "blue",
            Color::Yellow => "yellow",
            Color::Orange => "orange",
            Color::Purple => "purple",
            Color::White => "white",
            Color::Black => "black",
        }
    }

    /// The colour named by `word`, if any.
    pub fn from_word(word: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|color| color.word() == word)
    }

    /// The named colour nearest to `rgb` (Euclidean in RGB; the first in [`Color::ALL`] on ties).
    pub fn nearest(rgb: [f64; 3]) -> Self {
        let mut best = (Color::ALL[0], f64::INFINITY);
        for color in Color::ALL {
            let distance = rgb_distance(rgb, color.rgb().map(f64::from));
            if distance < best.1 {
                best = (color, distance);
            }
        }
        best.0
    }

    /// Whether `self` as a background contrasts enough with `object` (≥ [`MIN_CONTRAST`]).
    pub fn contrasts_with(self, object: Color) -> bool {
        rgb_distance(self.rgb().map(f64::from), object.rgb().map(f64::from)) >= MIN_CONTRAST
    }
}

/// Euclidean distance between two RGB triples.
pub fn rgb_distance(a: [f64; 3], b: [f64; 3]) -> f64 {
    a.iter().zip(&b).map(|(x, y)| (x - y) * (x - y)).sum::<f64>().sqrt()
}

/// An object's size class: the side of its bounding box as a fraction of a grid cell's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Size {
    /// Box side in [0.42, 0.50] of a cell.
    Small,
    /// Box side in [0.78, 0.86] of a cell.
    Large,
}

impl Size {
    /// Both sizes.
    pub const ALL: [Size; 2] = [Size::Small, Size::Large];

    /// The caption word.
    pub fn word(self) -> &'static str {
        match self {
            Size::Small => "small",
            Size::Large => "large",
        }
    }

    /// The size named by `word`, if any.
    pub fn from_word(word: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|size| size.word() == word)
    }

    /// The range of box sides, as fractions of the cell side, that the generator draws from.
    pub fn side_range(self) -> (f64, f64) {
        match self {
            Size::Small => (0.42, 0.50),
            Size::Large => (0.78, 0.86),
        }
    }
}

/// The box side (fraction of a cell) separating small from large: the geometric mean of the
/// largest small side and the smallest large side, √(0.50 · 0.78) ≈ 0.624.
pub fn size_threshold() -> f64 {
    (Size::Small.side_range().1 * Size::Large.side_range().0).sqrt()
}

/// A cell of the 3 × 3 grid the image is divided into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Position {
    /// Row 0, column 0.
    TopLeft,
    /// Row 0, column 1.
    Top,
    /// Row 0, column 2.
    TopRight,
    /// Row 1, column 0.
    Left,
    /// Row 1, column 1.
    Center,
    /// Row 1, column 2.
    Right,
    /// Row 2, column 0.
    BottomLeft,
    /// Row 2, column 1.
    Bottom,
    /// Row 2, column 2.
    BottomRight,
}

impl Position {
    /// Every cell in row-major order (index = 3 · row + column).
    pub const ALL: [Position; 9] = [
        Position::TopLeft,
        Position::Top,
        Position::TopRight,
        Position::Left,
        Position::Center,
        Position::Right,
        Position::BottomLeft,
        Position::Bottom,
        Position::BottomRight,
    ];

    /// The cell at `row`, `column` (each 0..3).
    ///
    /// # Panics
    /// If `row` or `column` is 3 or more.
    pub fn from_cell(row: usize, column: usize) -> Self {
        assert!(row < 3 && column < 3, "grid cell ({row}, {column}) outside the 3 × 3 grid");
        Self::ALL[3 * row + column]
    }

    /// (row, column) of the cell.
    pub fn cell(self) -> (usize, usize) {
        let index = self as usize;
        (index / 3, index % 3)
    }

    /// The phrase a caption uses, preposition included ("in the top left", "at the top",
    /// "on the left", "in the center", …).
    pub fn phrase(self) -> &'static str {
        match self {
            Position::TopLeft => "in the top left",
            Position::Top => "at the top",
            Position::TopRight => "in the top right",
            Position::Left => "on the left",
            Position::Center => "in the center",
            Position::Right => "on the right",
            Position::BottomLeft => "in the bottom left",
            Position::Bottom => "at the bottom",
            Position::BottomRight => "in the bottom right",
        }
    }
}

/// The indefinite article for a following word ("an orange", "a red").
pub fn article(next_word: &str) -> &'static str {
    if next_word.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_are_far_apart_and_named_by_themselves() {
        let mut closest = f64::INFINITY;
        for (i, a) in Color::ALL.iter().enumerate() {
            assert_eq!(Color::nearest(a.rgb().map(f64::from)), *a);
            for b in &Color::ALL[i + 1..] {
                closest = closest.min(rgb_distance(a.rgb().map(f64::from), b.rgb().map(f64::from)));
            }
        }
        assert!(closest > 90.0, "closest pair only {closest:.1} apart");
    }

    #[test]
    fn every_colour_has_at_least_four_contrasting_backgrounds() {
        for object in Color::ALL {
            let backgrounds = Color::ALL.iter().filter(|bg| bg.contrasts_with(object)).count();
            assert!(backgrounds >= 4, "{object:?} has {backgrounds} backgrounds");
            assert!(!object.contrasts_with(object));
        }
        assert!(!Color::Yellow.contrasts_with(Color::Orange));
        assert!(!Color::Blue.contrasts_with(Color::Purple));
    }

    #[test]
    fn words_round_trip_and_cells_are_row_major() {
        for shape in Shape::ALL {
            assert_eq!(Shape::from_word(shape.word()), Some(shape));
        }
        for color in Color::ALL {
            assert_eq!(Color::from_word(color.word()), Some(color));
        }
        for size in Size::ALL {
            assert_eq!(Size::from_word(size.word()), Some(size));
        }
        for (index, position) in Position::ALL.into_iter().enumerate() {
            assert_eq!(position.cell(), (index / 3, index % 3));
            assert_eq!(Position::from_cell(index / 3, index % 3), position);
        }
        assert_eq!(article("orange"), "an");
        assert_eq!(article("red"), "a");
        assert_eq!(article("large"), "a");
    }
}
