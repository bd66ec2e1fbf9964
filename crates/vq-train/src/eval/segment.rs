//! Splitting an image into background and objects: the background colour from the image
//! border, a foreground mask by colour distance, and its 8-connected components.

use image::RgbImage;

use crate::data::{rgb_distance, MIN_CONTRAST};

/// A pixel is foreground when it is farther than this from the background colour (RGB,
/// Euclidean). Half of [`MIN_CONTRAST`]: an anti-aliased edge pixel counts when the object
/// covers at least about half of it, and uniform noise of ±25 per channel (at most 43 in
/// distance) never does.
pub const FOREGROUND_THRESHOLD: f64 = MIN_CONTRAST / 2.0;

/// The background colour: the per-channel median of the one-pixel border. Objects stay inside
/// their grid cells with a margin, so on the dataset's images the border is pure background.
pub fn estimate_background(image: &RgbImage) -> [f64; 3] {
    let (w, h) = image.dimensions();
    let border =
        (0..w).flat_map(|x| [(x, 0), (x, h - 1)]).chain((1..h.saturating_sub(1)).flat_map(|y| [(0, y), (w - 1, y)]));
    let mut channels: [Vec<u8>; 3] = Default::default();
    for (x, y) in border {
        for (channel, values) in channels.iter_mut().enumerate() {
            values.push(image.get_pixel(x, y).0[channel]);
        }
    }
    channels.map(|mut values| {
        values.sort_unstable();
        f64::from(values[values.len() / 2])
    })
}

/// Distance of every pixel (row-major) from `background`.
pub fn background_distance(image: &RgbImage, background: [f64; 3]) -> Vec<f64> {
    image.pixels().map(|p| rgb_distance(p.0.map(f64::from), background)).collect()
}

/// A connected set of foreground pixels.
#[derive(Debug, Clone, PartialEq)]
pub struct Component {
    /// Row-major pixel indices (y · width + x), in flood-fill order.
    pub pixels: Vec<usize>,
}

/// The 8-connected components of `mask` (row-major, `width` pixels per row), in order of their
/// first pixel.
pub fn connected_components(mask: &[bool], width: usize) -> Vec<Component> {
    let height = mask.len() / width;
    let mut seen = vec![false; mask.len()];
    let mut components = Vec::new();
    for start in 0..mask.len() {
        if !mask[start] || seen[start] {
            continue;
        }
        seen[start] = true;
        let mut pixels = vec![start];
        let mut next = 0;
        while next < pixels.len() {
            let (x, y) = ((pixels[next] % width) as isize, (pixels[next] / width) as isize);
            next += 1;
            for (dx, dy) in [(-1, -1), (0, -1), (1, -1), (-1, 0), (1, 0), (-1, 1), (0, 1), (1, 1)] {
                let (nx, ny) = (x + dx, y + dy);
                if nx < 0 || ny < 0 || nx >= width as isize || ny >= height as isize {
                    continue;
                }
                let neighbour = ny as usize * width + nx as usize;
                if mask[neighbour] && !seen[neighbour] {
                    seen[neighbour] = true;
                    pixels.push(neighbour);
                }
            }
        }
        components.push(Component { pixels });
    }
    components
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_follow_diagonals_but_not_gaps() {
        // Three components: a diagonal pair, an L, a single pixel.
        #[rustfmt::skip]
        let mask = [
            1, 0, 0, 1, 1,
            0, 1, 0, 0, 1,
            0, 0, 0, 0, 0,
            1, 0, 0, 0, 0,
        ].map(|v| v == 1);
        let components = connected_components(&mask, 5);
        let sizes: Vec<usize> = components.iter().map(|c| c.pixels.len()).collect();
        assert_eq!(sizes, vec![2, 3, 1]);
        assert_eq!(components[0].pixels, vec![0, 6]);
    }

    #[test]
    fn background_is_the_border_median() {
        let mut image = RgbImage::from_pixel(10, 10, image::Rgb([10, 200, 30]));
        image.put_pixel(0, 0, image::Rgb([255, 0, 0]));
        image.put_pixel(5, 5, image::Rgb([0, 0, 0]));
        assert_eq!(estimate_background(&image), [10.0, 200.0, 30.0]);
    }
}
