//! The settings of a generation as image metadata (PNG text chunks; EXIF for the command
//! line's JPEG and WebP), written alike by every front end (the command line and the HTTP
//! server), so that an image says how to make it again.

/// What each image records about its generation (keyword, value).
#[derive(Debug, Clone, Copy)]
pub struct ImageMetadata<'a> {
    /// The model as the user named it (folder or repository id).
    pub model: &'a str,
    /// The seed of the batch (given or drawn); image i's own is seed + i with `seed_per_image`.
    pub seed: u64,
    /// Whether image i was generated alone with seed + i.
    pub seed_per_image: bool,
    /// The batch's prompts, in order.
    pub prompts: &'a [String],
    /// Images per prompt.
    pub num_images_per_prompt: usize,
    /// `torch` or `device`.
    pub rng: &'static str,
    /// Denoising steps.
    pub steps: usize,
    /// Guidance scale.
    pub guidance_scale: f32,
    /// Truncation rate.
    pub truncation_rate: f32,
    /// `exact` or `device`.
    pub truncation_mode: &'static str,
    /// `posterior`, `reveal` or `purity`.
    pub sampler: &'static str,
    /// The purity prior's weight r (recorded with `purity` only).
    pub purity_weight: Option<f32>,
    /// Backend name.
    pub backend: &'static str,
    /// Precision name.
    pub dtype: &'static str,
}

/// The parameter holding the batch's prompts (the one a JPEG may have to leave out).
pub const BATCH_PROMPTS: &str = "prompts";

impl ImageMetadata<'_> {
    /// The parameters of image `index` of the batch (keyword, value). Enough to draw it again:
    /// its prompt and seed with `seed_per_image` (generated alone); else the batch's prompts,
    /// images per prompt and seed, of which it is image `batch_index`.
    pub fn chunks(&self, index: usize) -> Vec<(&'static str, String)> {
        let prompt = &self.prompts[index / self.num_images_per_prompt];
        let seed = match self.seed_per_image {
            true => self.seed + index as u64,
            false => self.seed,
        };
        let mut chunks = vec![
            ("prompt", prompt.to_string()),
            ("seed", seed.to_string()),
            ("rng", self.rng.to_string()),
            ("steps", self.steps.to_string()),
            ("guidance_scale", self.guidance_scale.to_string()),
            ("truncation_rate", self.truncation_rate.to_string()),
            ("truncation_mode", self.truncation_mode.to_string()),
            ("sampler", self.sampler.to_string()),
            ("model", self.model.to_string()),
            ("backend", self.backend.to_string()),
            ("dtype", self.dtype.to_string()),
            ("software", concat!("vq-diffusion ", env!("CARGO_PKG_VERSION")).to_string()),
        ];
        if let Some(weight) = self.purity_weight {
            chunks.push(("purity_weight", weight.to_string()));
        }
        chunks.extend([
            ("batch_index", index.to_string()),
            ("seed_per_image", self.seed_per_image.to_string()),
            ("num_images_per_prompt", self.num_images_per_prompt.to_string()),
            (BATCH_PROMPTS, serde_json::Value::from(self.prompts.to_vec()).to_string()),
        ]);
        chunks
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_image_records_its_place_in_the_batch() {
        let prompts = ["a cat".to_string(), "a \"red\" car".to_string()];
        let metadata = ImageMetadata {
            model: "m",
            seed: 7,
            seed_per_image: false,
            prompts: &prompts,
            num_images_per_prompt: 2,
            rng: "torch",
            steps: 3,
            guidance_scale: 5.0,
            truncation_rate: 1.0,
            truncation_mode: "exact",
            sampler: "posterior",
            purity_weight: None,
            backend: "flex",
            dtype: "f32",
        };
        let value = |chunks: &[(&str, String)], key: &str| chunks.iter().find(|(k, _)| *k == key).unwrap().1.clone();
        let third = metadata.chunks(2);
        assert_eq!(value(&third, "prompt"), "a \"red\" car");
        assert_eq!(value(&third, "seed"), "7");
        assert_eq!(value(&third, "batch_index"), "2");
        assert_eq!(value(&third, "num_images_per_prompt"), "2");
        assert_eq!(value(&third, "seed_per_image"), "false");
        let listed: Vec<String> = serde_json::from_str(&value(&third, BATCH_PROMPTS)).unwrap();
        assert_eq!(listed, prompts);
        let per_image = ImageMetadata { seed_per_image: true, ..metadata };
        assert_eq!(value(&per_image.chunks(3), "seed"), "10");
        assert_eq!(value(&per_image.chunks(3), "seed_per_image"), "true");
    }
}
