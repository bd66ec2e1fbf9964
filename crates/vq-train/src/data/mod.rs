//! A procedural, captioned dataset of simple shapes, generated on the fly from a seed.
//!
//! Each image is a plain background with one or two objects; each object has a
//! [`Shape`] (circle, square, triangle, diamond), a [`Color`] (red, green, blue, yellow,
//! orange, purple, white, black), a [`Size`] (small, large) and a [`Position`] (a cell of the
//! 3 × 3 grid: top left, top, top right, left, center, right, bottom left, bottom,
//! bottom right). The caption names the shapes and colours and, at configurable rates, sizes,
//! positions and the background ([`Prompt`] documents the grammar):
//! "a small red circle in the top left on a blue background", "a red circle and a blue square".
//!
//! Geometry is exact: an object's square bounding box (side 0.42–0.50 of a cell when small,
//! 0.78–0.86 when large) lies inside its cell with a 5 % margin, and the shape is rasterised
//! with sub-pixel coverage, so the evaluator ([`crate::eval`]) can recover every attribute.
//!
//! Sample `i` of a [`Split`] is a pure function of (config, seed, split, i). The
//! [`Split::HeldOut`] split contains the [`HeldOut`] (colour, shape) and (shape, position)
//! pairs that [`Split::Train`] never shows. [`Dataset::repaint`] repaints a training image in
//! free colours (stage 1's augmentation), keeping held-out (colour, shape) pairs out.

mod caption;
mod free_colors;
mod generator;
mod render;
mod scene;
mod split;
mod tensor;
#[cfg(test)]
mod tests;
mod vocab;

pub use caption::{Mentions, ObjectPrompt, Prompt};
pub use generator::{Dataset, DatasetConfig, MentionRates, Sample, MIN_IMAGE_SIZE};
pub use render::{render, render_rgb};
pub use scene::{Grid, ObjectSpec, Placement, Scene, CELL_MARGIN};
pub use split::{HeldOut, Split};
pub use tensor::{images_to_tensor, tensor_to_images};
pub use vocab::{article, rgb_distance, size_threshold, Color, Position, Shape, Size, MIN_CONTRAST};
