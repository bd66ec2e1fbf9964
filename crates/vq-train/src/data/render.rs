//! Exact rasterisation of scenes: each pixel's colour is the background blended with the object
//! colour by the fraction of the pixel the shape covers, estimated on an n × n grid of
//! sub-pixel points (n = 1 gives hard edges sampled at pixel centres).

use image::{Rgb, RgbImage};

use super::scene::{ObjectSpec, Placement};
use super::vocab::{Color, Shape};

impl Shape {
    /// Whether point (x, y) lies inside the shape drawn in `placement`'s box (closed boundary).
    pub fn contains(self, placement: &Placement, x: f64, y: f64) -> bool {
        let half = placement.side / 2.0;
        let (dx, dy) = (x - placement.center.0, y - placement.center.1);
        match self {
            Shape::Circle => dx * dx + dy * dy <= half * half,
            Shape::Square => dx.abs() <= half && dy.abs() <= half,
            // Apex at (0, −half), base from (−half, half) to (half, half): the half-width grows
            // linearly from 0 at the apex to `half` at the base.
            Shape::Triangle => dy <= half && dx.abs() <= (dy + half) / 2.0,
            Shape::Diamond => dx.abs() + dy.abs() <= half,
        }
    }

    /// Fraction of its bounding box the exact shape covers: π/4, 1, 1/2, 1/2.
    pub fn fill_ratio(self) -> f64 {
        match self {
            Shape::Circle => std::f64::consts::FRAC_PI_4,
            Shape::Square => 1.0,
            Shape::Triangle | Shape::Diamond => 0.5,
        }
    }

    /// How far below the box centre the shape's centre of mass lies, for box side `side`: the
    /// triangle's is 2/3 of the way down (side / 6 below the centre); the others are symmetric.
    pub fn centroid_offset(self, side: f64) -> f64 {
        match self {
            Shape::Triangle => side / 6.0,
            Shape::Circle | Shape::Square | Shape::Diamond => 0.0,
        }
    }

    /// Fraction of pixel (px, py) the shape covers, measured on n × n sub-pixel points.
    pub fn pixel_coverage(self, placement: &Placement, px: u32, py: u32, n: u32) -> f64 {
        let mut hits = 0u32;
        for sy in 0..n {
            for sx in 0..n {
                let x = f64::from(px) + (f64::from(sx) + 0.5) / f64::from(n);
                let y = f64::from(py) + (f64::from(sy) + 0.5) / f64::from(n);
                hits += u32::from(self.contains(placement, x, y));
            }
        }
        f64::from(hits) / f64::from(n * n)
    }
}

/// Renders a background with objects (which must not overlap) into a square RGB image.
///
/// `supersampling` n ≥ 1: coverage is measured on n × n points per pixel; the pixel value is
/// `round(bg + coverage · (fg − bg))` per channel.
///
/// # Panics
/// If `supersampling == 0`.
pub fn render(background: Color, objects: &[(ObjectSpec, Placement)], image_size: u32, supersampling: u32) -> RgbImage {
    let painted: Vec<_> =
        objects.iter().map(|(object, placement)| (object.shape, object.color.rgb(), *placement)).collect();
    render_rgb(background.rgb(), &painted, image_size, supersampling)
}

/// [`render`] with any RGB colours: `objects` are (shape, fill colour, placement).
///
/// # Panics
/// If `supersampling == 0`.
pub fn render_rgb(
    background: [u8; 3],
    objects: &[(Shape, [u8; 3], Placement)],
    image_size: u32,
    supersampling: u32,
) -> RgbImage {
    assert!(supersampling > 0, "supersampling must be at least 1");
    let mut image = RgbImage::from_pixel(image_size, image_size, Rgb(background));
    for (shape, fg, placement) in objects {
        let (x0, y0, x1, y1) = placement.bounds();
        let clip = |v: f64| (v.max(0.0) as u32).min(image_size);
        let (px0, py0) = (clip(x0.floor()), clip(y0.floor()));
        let (px1, py1) = (clip(x1.ceil()), clip(y1.ceil()));
        for py in py0..py1 {
            for px in px0..px1 {
                let coverage = shape.pixel_coverage(placement, px, py, supersampling);
                if coverage == 0.0 {
                    continue;
                }
                let pixel = image.get_pixel_mut(px, py);
                for (value, &fg) in pixel.0.iter_mut().zip(fg) {
                    let bg = f64::from(*value);
                    *value = (bg + coverage * (f64::from(fg) - bg)).round() as u8;
                }
            }
        }
    }
    image
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::vocab::{Position, Size};

    fn single(shape: Shape, side: f64, supersampling: u32) -> RgbImage {
        let object = ObjectSpec { shape, color: Color::White, size: Size::Large, position: Position::Center };
        let placement = Placement { center: (50.0, 50.0), side };
        render(Color::Black, &[(object, placement)], 100, supersampling)
    }

    /// Total object coverage in pixels, from the blended values of the red channel.
    fn covered_area(image: &RgbImage) -> f64 {
        let (bg, fg) = (f64::from(Color::Black.rgb()[0]), f64::from(Color::White.rgb()[0]));
        image.pixels().map(|p| (f64::from(p.0[0]) - bg) / (fg - bg)).sum()
    }

    #[test]
    fn antialiased_areas_match_the_exact_shape_areas() {
        let side = 40.0;
        for shape in Shape::ALL {
            let image = single(shape, side, 8);
            let area = covered_area(&image);
            let exact = shape.fill_ratio() * side * side;
            assert!((area - exact).abs() / exact < 0.01, "{shape:?}: rendered area {area:.1}, exact {exact:.1}");
            // Centre of mass: (50, 50) shifted down by the shape's offset.
            let (bg, fg) = (f64::from(Color::Black.rgb()[0]), f64::from(Color::White.rgb()[0]));
            let weighted_y: f64 = image
                .enumerate_pixels()
                .map(|(_, y, p)| (f64::from(p.0[0]) - bg) / (fg - bg) * (f64::from(y) + 0.5))
                .sum();
            let expected_y = 50.0 + shape.centroid_offset(side);
            assert!((weighted_y / area - expected_y).abs() < 0.05, "{shape:?}: centroid y {}", weighted_y / area);
        }
    }

    #[test]
    fn hard_edges_use_only_the_two_colours() {
        let image = single(Shape::Triangle, 30.0, 1);
        let (bg, fg) = (Color::Black.rgb(), Color::White.rgb());
        assert!(image.pixels().all(|p| p.0 == bg || p.0 == fg));
        // Apex row: the triangle starts at y = 35; the base ends at y = 65.
        assert!(image.get_pixel(50, 36).0 == fg && image.get_pixel(50, 33).0 == bg);
        assert!(image.get_pixel(36, 64).0 == fg && image.get_pixel(36, 40).0 == bg);
    }
}
