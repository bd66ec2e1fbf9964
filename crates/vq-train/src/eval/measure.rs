//! Measuring one detected object: colour by a vote of its most saturated pixels; shape and size
//! by fitting each shape to the object's coverage map through its area and centroid moments;
//! position from the centroid.
//!
//! The coverage map α ∈ [0, 1] is each pixel's position on the line from the background colour
//! to the object's colour, over the component and a one-pixel ring around it. It recovers the
//! anti-aliased rim that the binary mask drops, so the moments stay accurate for objects only
//! ten pixels across (a thresholded small diamond looks like a circle; its coverage map does
//! not).

use image::RgbImage;
use serde::{Deserialize, Serialize};

use super::segment::Component;
use crate::data::{size_threshold, Color, Grid, Placement, Position, Shape, Size};

/// Sub-pixel samples per axis when rendering a shape hypothesis.
const FIT_SUPERSAMPLING: u32 = 4;

/// What the evaluator measured for one foreground component.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeasuredObject {
    /// Dominant named colour of the object's core pixels.
    pub color: Color,
    /// The best-fitting shape.
    pub shape: Shape,
    /// Size class of the best fit's box side.
    pub size: Size,
    /// Grid cell of the centroid.
    pub position: Position,
    /// Number of pixels in the binary component.
    pub area: usize,
    /// Coverage-weighted area Σα in pixels.
    pub coverage_area: f64,
    /// Coverage-weighted centroid (x, y) in pixel units (pixel (i, j) spans [i, i + 1) × [j, j + 1)).
    pub centroid: (f64, f64),
    /// Coverage area over the area of the sub-pixel bounding box (width = the largest row sum of
    /// α, height = the largest column sum): ≈ π/4 for circles, 1 for squares, 1/2 for
    /// triangles and diamonds.
    pub fill_ratio: f64,
    /// Box side of the best fit, in cells.
    pub side: f64,
    /// Mean absolute difference between the coverage map and the best fit, per unit of area.
    pub fit_error: f64,
}

/// The coverage map of a component over a window around it.
struct CoverageMap {
    /// Window origin (x, y) in pixels.
    origin: (usize, usize),
    /// Window width in pixels.
    width: usize,
    /// Row-major α values of the window.
    alpha: Vec<f64>,
}

impl CoverageMap {
    /// α over the component's bounding box grown by one pixel: the projection of each pixel of
    /// the component or its 8-neighbour ring onto the background → foreground line, clamped to
    /// [0, 1]; 0 elsewhere (so a neighbouring object cannot leak in).
    fn new(image: &RgbImage, component: &Component, background: [f64; 3], foreground: [f64; 3]) -> Self {
        let image_width = image.width() as usize;
        let image_height = image.height() as usize;
        let (mut x0, mut y0, mut x1, mut y1) = (usize::MAX, usize::MAX, 0, 0);
        for &index in &component.pixels {
            let (x, y) = (index % image_width, index / image_width);
            (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
        }
        let (x0, y0) = (x0.saturating_sub(1), y0.saturating_sub(1));
        let (x1, y1) = ((x1 + 1).min(image_width - 1), (y1 + 1).min(image_height - 1));
        let (width, height) = (x1 - x0 + 1, y1 - y0 + 1);

        let mut region = vec![false; width * height];
        for &index in &component.pixels {
            let (x, y) = (index % image_width - x0, index / image_width - y0);
            for ny in y.saturating_sub(1)..=(y + 1).min(height - 1) {
                for nx in x.saturating_sub(1)..=(x + 1).min(width - 1) {
                    region[ny * width + nx] = true;
                }
            }
        }
        let direction: Vec<f64> = (0..3).map(|c| foreground[c] - background[c]).collect();
        let length_sq = direction.iter().map(|d| d * d).sum::<f64>().max(1.0);
        let alpha = (0..width * height)
            .map(|i| {
                if !region[i] {
                    return 0.0;
                }
                let pixel = image.get_pixel((x0 + i % width) as u32, (y0 + i / width) as u32).0;
                let projection: f64 = (0..3).map(|c| (f64::from(pixel[c]) - background[c]) * direction[c]).sum();
                (projection / length_sq).clamp(0.0, 1.0)
            })
            .collect();
        Self { origin: (x0, y0), width, alpha }
    }

    /// Iterates (x, y, α) in image coordinates.
    fn pixels(&self) -> impl Iterator<Item = (usize, usize, f64)> + '_ {
        self.alpha.iter().enumerate().map(|(i, &a)| (self.origin.0 + i % self.width, self.origin.1 + i / self.width, a))
    }

    /// Σα and the α-weighted centroid.
    fn moments(&self) -> (f64, (f64, f64)) {
        let (mut area, mut sum_x, mut sum_y) = (0.0, 0.0, 0.0);
        for (x, y, a) in self.pixels() {
            area += a;
            sum_x += a * (x as f64 + 0.5);
            sum_y += a * (y as f64 + 0.5);
        }
        let area_or_one = if area > 0.0 { area } else { 1.0 };
        (area, (sum_x / area_or_one, sum_y / area_or_one))
    }

    /// Sub-pixel width and height: the largest α sum over a row and over a column.
    fn extents(&self) -> (f64, f64) {
        let height = self.alpha.len() / self.width;
        let row_sum = |y: usize| self.alpha[y * self.width..(y + 1) * self.width].iter().sum::<f64>();
        let column_sum = |x: usize| (0..height).map(|y| self.alpha[y * self.width + x]).sum::<f64>();
        let width = (0..height).map(row_sum).fold(0.0, f64::max);
        let tall = (0..self.width).map(column_sum).fold(0.0, f64::max);
        (width, tall)
    }

    /// Misfit of a rendered hypothesis: Σ|α − coverage| over the window plus the hypothesis'
    /// area that falls outside it, the smaller of two versions of the hypothesis — sharp, and
    /// softened by a 3 × 3 box blur (a decoder's blur rounds the corners of a ten-pixel square
    /// until it resembles a sharp circle; comparing like with like keeps them apart).
    fn misfit(&self, shape: Shape, placement: &Placement, hypothesis_area: f64) -> f64 {
        // Coverage over the window grown by one pixel, so that the blur sees its neighbours.
        let (width, height) = (self.width + 2, self.alpha.len() / self.width + 2);
        let mut coverage = vec![0.0; width * height];
        for (i, value) in coverage.iter_mut().enumerate() {
            let x = (self.origin.0 + i % width) as i64 - 1;
            let y = (self.origin.1 + i / width) as i64 - 1;
            if x >= 0 && y >= 0 {
                *value = shape.pixel_coverage(placement, x as u32, y as u32, FIT_SUPERSAMPLING);
            }
        }
        let sharp = |x: usize, y: usize| coverage[(y + 1) * width + x + 1];
        let blurred = |x: usize, y: usize| {
            let rows = coverage[y * width..(y + 3) * width].chunks(width);
            rows.map(|row| row[x..x + 3].iter().sum::<f64>()).sum::<f64>() / 9.0
        };
        let misfit_of = |version: &dyn Fn(usize, usize) -> f64| {
            let (mut inside, mut error) = (0.0, 0.0);
            for (i, &a) in self.alpha.iter().enumerate() {
                let value = version(i % self.width, i / self.width);
                inside += value;
                error += (a - value).abs();
            }
            error + (hypothesis_area - inside).max(0.0)
        };
        misfit_of(&sharp).min(misfit_of(&blurred))
    }
}

/// Measures a component of `image`.
///
/// `distance` holds every pixel's distance from `background` (row-major). The colour is the most
/// frequent nearest named colour among the component's pixels at least as far from the
/// background as its median pixel — the interior, not the anti-aliased rim (whose blends can lie
/// nearer another named colour: red on blue blends to purple); the mean of those pixels is the
/// foreground end of the coverage map. Each shape is then placed with the map's area and
/// centroid (side √(area / fill ratio), box centre above the centroid by the shape's offset) and
/// the one with the smallest misfit wins.
///
/// # Panics
/// If the component is empty.
pub fn measure(
    image: &RgbImage,
    background: [f64; 3],
    distance: &[f64],
    component: &Component,
    grid: &Grid,
) -> MeasuredObject {
    let pixels = &component.pixels;
    assert!(!pixels.is_empty(), "cannot measure an empty component");
    let width = image.width() as usize;
    let rgb = |index: usize| image.get_pixel((index % width) as u32, (index / width) as u32).0.map(f64::from);

    let mut distances: Vec<f64> = pixels.iter().map(|&i| distance[i]).collect();
    distances.sort_unstable_by(f64::total_cmp);
    let core_threshold = distances[distances.len() / 2];
    let core: Vec<usize> = pixels.iter().copied().filter(|&i| distance[i] >= core_threshold).collect();
    let mut votes = [0usize; Color::ALL.len()];
    let mut foreground = [0.0; 3];
    for &index in &core {
        let value = rgb(index);
        votes[Color::nearest(value) as usize] += 1;
        (0..3).for_each(|c| foreground[c] += value[c] / core.len() as f64);
    }
    let best = votes.iter().enumerate().max_by_key(|&(i, &count)| (count, usize::MAX - i));
    let color = Color::ALL[best.expect("eight colours").0];

    let map = CoverageMap::new(image, component, background, foreground);
    let (coverage_area, centroid) = map.moments();
    let (box_width, box_height) = map.extents();
    let fits = Shape::ALL.map(|shape| {
        let side = (coverage_area / shape.fill_ratio()).sqrt();
        let center = (centroid.0, centroid.1 - shape.centroid_offset(side));
        let misfit = map.misfit(shape, &Placement { center, side }, coverage_area);
        (shape, side, misfit)
    });
    let (shape, side, misfit) = fits.into_iter().min_by(|a, b| a.2.total_cmp(&b.2)).expect("there are shapes");
    let side = side / grid.cell_side();
    MeasuredObject {
        color,
        shape,
        size: if side < size_threshold() { Size::Small } else { Size::Large },
        position: grid.position_of(centroid.0, centroid.1),
        area: pixels.len(),
        coverage_area,
        centroid,
        fill_ratio: coverage_area / (box_width * box_height).max(f64::MIN_POSITIVE),
        side,
        fit_error: misfit / coverage_area.max(f64::MIN_POSITIVE),
    }
}
