//! Scenes (what is in an image), the 3 × 3 grid geometry and object placement.

use serde::{Deserialize, Serialize};

use super::vocab::{Color, Position, Shape, Size};
use crate::rng::SplitMix64;

/// One object of a scene: its four attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ObjectSpec {
    /// The object's shape.
    pub shape: Shape,
    /// The object's fill colour.
    pub color: Color,
    /// The object's size class.
    pub size: Size,
    /// The grid cell holding the object's whole bounding box.
    pub position: Position,
}

/// Everything an image shows: a plain background and one or two objects in distinct cells.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Scene {
    /// The background colour; it contrasts with every object's colour
    /// ([`Color::contrasts_with`]).
    pub background: Color,
    /// The objects, in caption order.
    pub objects: Vec<ObjectSpec>,
}

/// Where an object is drawn, in pixel units (x to the right, y down, pixel (i, j) covers
/// [i, i + 1) × [j, j + 1)).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Placement {
    /// Centre of the bounding box (x, y).
    pub center: (f64, f64),
    /// Side of the square bounding box.
    pub side: f64,
}

impl Placement {
    /// The bounding box as (x0, y0, x1, y1).
    pub fn bounds(&self) -> (f64, f64, f64, f64) {
        let half = self.side / 2.0;
        (self.center.0 - half, self.center.1 - half, self.center.0 + half, self.center.1 + half)
    }
}

/// The 3 × 3 grid over a square image of `image_size` pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Grid {
    /// Image side in pixels.
    pub image_size: u32,
}

/// Free border kept between an object's box and its cell's edges, as a fraction of the cell
/// side: objects in neighbouring cells are at least twice this apart, so they never touch.
pub const CELL_MARGIN: f64 = 0.05;

impl Grid {
    /// Side of one cell in pixels (`image_size / 3`, not rounded).
    pub fn cell_side(&self) -> f64 {
        f64::from(self.image_size) / 3.0
    }

    /// The cell's extent as (x0, y0, x1, y1).
    pub fn cell_bounds(&self, position: Position) -> (f64, f64, f64, f64) {
        let (row, column) = position.cell();
        let side = self.cell_side();
        let (x0, y0) = (column as f64 * side, row as f64 * side);
        (x0, y0, x0 + side, y0 + side)
    }

    /// The cell containing point (x, y) (points on the far edge count to the last cell).
    pub fn position_of(&self, x: f64, y: f64) -> Position {
        let side = self.cell_side();
        let index = |v: f64| ((v / side).floor().max(0.0) as usize).min(2);
        Position::from_cell(index(y), index(x))
    }

    /// Draws a placement for `object`: a box side uniform in its size's range (times the cell
    /// side) and a centre uniform over all spots that keep the box [`CELL_MARGIN`] inside the
    /// object's cell.
    pub fn place(&self, object: &ObjectSpec, rng: &mut SplitMix64) -> Placement {
        let cell = self.cell_side();
        let (low, high) = object.size.side_range();
        let side = rng.uniform(low, high) * cell;
        let (x0, y0, x1, y1) = self.cell_bounds(object.position);
        let margin = CELL_MARGIN * cell;
        let half = side / 2.0;
        let x = rng.uniform(x0 + margin + half, x1 - margin - half);
        let y = rng.uniform(y0 + margin + half, y1 - margin - half);
        Placement { center: (x, y), side }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placements_stay_inside_their_cell_with_margin() {
        let mut rng = SplitMix64::new(3);
        for image_size in [32, 48, 64, 96] {
            let grid = Grid { image_size };
            for position in Position::ALL {
                for size in Size::ALL {
                    let object = ObjectSpec { shape: Shape::Circle, color: Color::Red, size, position };
                    for _ in 0..50 {
                        let placement = grid.place(&object, &mut rng);
                        let (x0, y0, x1, y1) = placement.bounds();
                        let (cx0, cy0, cx1, cy1) = grid.cell_bounds(position);
                        let margin = CELL_MARGIN * grid.cell_side() - 1e-9;
                        assert!(x0 >= cx0 + margin && x1 <= cx1 - margin);
                        assert!(y0 >= cy0 + margin && y1 <= cy1 - margin);
                        assert_eq!(grid.position_of(placement.center.0, placement.center.1), position);
                    }
                }
            }
        }
    }
}
