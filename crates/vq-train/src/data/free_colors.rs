//! Free colours: a stage-1 augmentation that repaints a training image's background and objects
//! in colours drawn from the whole RGB cube instead of the eight named ones.
//!
//! Why: trained on the named colours only, the VQ-VAE ties colour to shape in its codes. Its
//! reconstructions of held-out images kept 51 % of purple diamonds' shapes and 78 % of yellow
//! squares', against 99 % for objects in no held-out combination and 90–97 % for the held-out
//! (shape, position) pairs (BENCHMARKS.md): a convolutional encoder generalises over
//! positions but not over colours it never saw on a shape. Repainted images show every shape in
//! colours of every kind, so the codes must carry shape apart from colour. The held-out split
//! stays a test of composition: an object is never repainted in a colour whose two nearest named
//! colours include one held out with its shape, so no repainted object is, or is next to, a
//! held-out (colour, shape) pair. Captions are not repainted: the images are for stage 1 only.

use image::RgbImage;

use super::generator::{Dataset, Sample};
use super::render::render_rgb;
use super::split::Split;
use super::vocab::{rgb_distance, Color, Shape, MIN_CONTRAST};
use crate::rng::SplitMix64;

/// Repaint draws give up after this many tries (the sample keeps its own colours); with the
/// default held-out lists about half of the draws are accepted.
const MAX_DRAWS: usize = 1000;

impl Dataset {
    /// `sample` (sample `index` of `split`) repainted in free colours, with probability `rate`;
    /// `None` keeps its image. A repainted image has the same shapes at the same places: a
    /// background and object colours drawn uniformly from the RGB cube, each object at least
    /// [`MIN_CONTRAST`] from the background and never in a colour whose two nearest named
    /// colours hold a held-out (colour, shape) pair with its shape. The draw is a pure function
    /// of (dataset seed, split, index).
    pub fn repaint(&self, sample: &Sample, split: Split, index: u64, rate: f64) -> Option<RgbImage> {
        // Streams 0–2 are the splits' scenes; 16 + split keeps the repaint draws independent of them.
        let mut rng = SplitMix64::for_item(self.seed(), 16 + split.stream(), index);
        if !rng.bernoulli(rate) {
            return None;
        }
        let held_out = &self.config().held_out.color_shape;
        let allowed =
            |shape: Shape, rgb: [u8; 3]| two_nearest(rgb).iter().all(|&color| !held_out.contains(&(color, shape)));
        for _ in 0..MAX_DRAWS {
            let background = random_rgb(&mut rng);
            let painted: Option<Vec<_>> = sample
                .objects
                .iter()
                .zip(&sample.placements)
                .map(|(object, placement)| {
                    let fill = random_rgb(&mut rng);
                    let visible = rgb_distance(to_f64(fill), to_f64(background)) >= MIN_CONTRAST;
                    (visible && allowed(object.shape, fill)).then_some((object.shape, fill, *placement))
                })
                .collect();
            if let Some(painted) = painted {
                let config = self.config();
                return Some(render_rgb(background, &painted, config.image_size, config.supersampling));
            }
        }
        None
    }
}

/// The two named colours nearest `rgb`, nearest first.
pub(super) fn two_nearest(rgb: [u8; 3]) -> [Color; 2] {
    let mut colors = Color::ALL;
    colors.sort_by(|a, b| {
        let distance = |c: &Color| rgb_distance(to_f64(rgb), to_f64(c.rgb()));
        distance(a).total_cmp(&distance(b))
    });
    [colors[0], colors[1]]
}

fn random_rgb(rng: &mut SplitMix64) -> [u8; 3] {
    [0; 3].map(|_: u8| rng.below(256) as u8)
}

fn to_f64(rgb: [u8; 3]) -> [f64; 3] {
    rgb.map(f64::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::DatasetConfig;
    use crate::train::batches::most_common;

    fn dataset() -> Dataset {
        Dataset::new(DatasetConfig::default(), 3).unwrap()
    }

    /// The image's most common colour (every scene's background covers most of it).
    fn background(image: &RgbImage) -> [u8; 3] {
        most_common(image.pixels().map(|p| p.0)).expect("a non-empty image")
    }

    fn foreground(image: &RgbImage) -> Vec<bool> {
        let bg = background(image);
        image.pixels().map(|p| p.0 != bg).collect()
    }

    #[test]
    fn repainted_images_keep_every_shape_in_place_and_keep_held_out_pairs_out() {
        let data = dataset();
        let held_out = &data.config().held_out.color_shape;
        let (mut repainted, mut diamonds) = (0, 0);
        for index in 0..300 {
            let sample = data.sample(Split::Train, index);
            let Some(image) = data.repaint(&sample, Split::Train, index, 1.0) else { continue };
            repainted += 1;
            // Same coverage: every pixel an object touches differs from the background in both.
            assert_eq!(foreground(&image), foreground(&sample.image), "sample {index}: {}", sample.caption);
            let bg = background(&image);
            for (object, placement) in sample.objects.iter().zip(&sample.placements) {
                // The box centre lies inside every shape, far from its edges: the fill colour.
                let (x, y) = placement.center;
                let fill = image.get_pixel(x as u32, y as u32).0;
                assert!(rgb_distance(to_f64(fill), to_f64(bg)) >= MIN_CONTRAST, "sample {index}: {fill:?} on {bg:?}");
                for color in two_nearest(fill) {
                    assert!(!held_out.contains(&(color, object.shape)), "sample {index}: {fill:?} {:?}", object.shape);
                }
                diamonds += usize::from(object.shape == Shape::Diamond);
            }
        }
        assert!(repainted >= 295, "only {repainted} of 300 repainted at rate 1");
        assert!(diamonds >= 40, "only {diamonds} diamonds checked");
    }

    #[test]
    fn repainting_is_deterministic_and_follows_its_rate() {
        let data = dataset();
        let repaint = |index, rate| data.repaint(&data.sample(Split::Train, index), Split::Train, index, rate);
        assert_eq!(repaint(7, 1.0), repaint(7, 1.0));
        assert_ne!(repaint(7, 1.0), repaint(8, 1.0));
        assert!((0..50).all(|i| repaint(i, 0.0).is_none()));
        let painted = (0..400).filter(|&i| repaint(i, 0.25).is_some()).count();
        // Binomial(400, 0.25): mean 100, standard deviation 8.7.
        assert!((65..=135).contains(&painted), "{painted} of 400 repainted at rate 0.25");
        // The colours are free: most objects are far from every named colour.
        let named = |fill: [u8; 3]| Color::ALL.iter().any(|c| rgb_distance(to_f64(fill), to_f64(c.rgb())) < 1.0);
        let centre_colours: Vec<[u8; 3]> = (0..100)
            .filter_map(|i| {
                let sample = data.sample(Split::Train, i);
                let image = data.repaint(&sample, Split::Train, i, 1.0)?;
                let (x, y) = sample.placements[0].center;
                Some(image.get_pixel(x as u32, y as u32).0)
            })
            .collect();
        assert!(centre_colours.iter().filter(|&&c| named(c)).count() <= 2, "{centre_colours:?}");
    }

    #[test]
    fn the_two_nearest_named_colours_come_nearest_first() {
        assert_eq!(two_nearest(Color::Purple.rgb())[0], Color::Purple);
        for color in Color::ALL {
            let [first, second] = two_nearest(color.rgb());
            assert_eq!(first, color);
            assert_ne!(second, color);
            let distance = |c: Color| rgb_distance(to_f64(color.rgb()), to_f64(c.rgb()));
            assert!(Color::ALL.iter().filter(|&&c| c != color).all(|&c| distance(second) <= distance(c)));
        }
    }
}
