//! `sampling_defaults.json`: the guidance scale and truncation rate a pipeline folder recommends.
//!
//! diffusers has no such file — `VQDiffusionPipeline.__call__` defaults to guidance 5 and
//! truncation 1 for every model — and loads a folder that has one as if it had not. It is this
//! project's: a small model can draw best at other settings (the shipped `models/shapes` at
//! guidance 3 and truncation 0.7, its `README.md`), and `vq-diffusion generate` without
//! `--guidance-scale` / `--truncation-rate` then uses them. The keys are the pipeline call's
//! argument names; either may be left out:
//!
//! ```json
//! { "guidance_scale": 3.0, "truncation_rate": 0.7 }
//! ```
//!
//! [`VQDiffusionPipeline::request`] starts a request from them and from the model's step count,
//! so that the library draws what the command line draws for the same flags.

use std::path::Path;

use burn::tensor::backend::Backend;
use serde::Deserialize;

use crate::components::read;
use crate::request::{check_guidance_scale, check_truncation_rate, DIFFUSERS_STEPS};
use crate::{GenerateRequest, PipelineError, VQDiffusionPipeline};

/// The file's name at the root of a pipeline folder.
pub const SAMPLING_DEFAULTS_FILE: &str = "sampling_defaults.json";

/// Sampling settings a pipeline recommends in place of diffusers' defaults.
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamplingDefaults {
    /// Classifier-free guidance scale (≥ 0).
    pub guidance_scale: Option<f32>,
    /// Truncation rate, in (0, 1].
    pub truncation_rate: Option<f32>,
}

impl SamplingDefaults {
    /// Reads `dir/sampling_defaults.json`, checking both values' ranges; nothing recommended
    /// when the folder has no such file.
    pub fn from_dir(dir: &Path) -> Result<Self, PipelineError> {
        let path = dir.join(SAMPLING_DEFAULTS_FILE);
        // Absent means no recommendation; anything else there (a FIFO, a directory) is read and
        // refused with an error.
        if !path.exists() {
            return Ok(Self::default());
        }
        let invalid = |message: String| PipelineError::Config { path: path.clone(), message };
        let defaults: Self = serde_json::from_str(&read(&path)?).map_err(|e| invalid(e.to_string()))?;
        if let Some(scale) = defaults.guidance_scale {
            check_guidance_scale(scale).map_err(|e| invalid(format!("guidance_scale {e}")))?;
        }
        if let Some(rate) = defaults.truncation_rate {
            check_truncation_rate(rate).map_err(|e| invalid(format!("truncation_rate {e}")))?;
        }
        Ok(defaults)
    }
}

impl<B: Backend> VQDiffusionPipeline<B> {
    /// The steps a request of this pipeline starts from: diffusers' 100, or the model's
    /// `num_train_timesteps` when it has fewer (the shipped shapes model: 50).
    pub fn default_steps(&self) -> usize {
        DIFFUSERS_STEPS.min(self.scheduler_config.num_train_timesteps)
    }

    /// A request for `prompts` that starts from this pipeline's own defaults: [`Self::default_steps`]
    /// and the guidance scale and truncation rate of its [`SAMPLING_DEFAULTS_FILE`], else
    /// diffusers' (see [`GenerateRequest::new`]). `vq-diffusion generate` without `--steps`,
    /// `--guidance-scale` and `--truncation-rate` uses the same values.
    ///
    /// ```no_run
    /// # use vq_pipeline::{LoadOptions, NoiseSource, VQDiffusionPipeline};
    /// let pipeline = VQDiffusionPipeline::<burn::backend::NdArray>::from_pretrained(
    ///     "models/shapes",
    ///     &LoadOptions::default(),
    ///     &Default::default(),
    /// )?;
    /// let request = pipeline.request(["a large red circle in the center on a blue background"]);
    /// assert_eq!((request.num_inference_steps, request.guidance_scale, request.truncation_rate), (50, 3.0, 0.7));
    /// let generation = pipeline.generate(&request.with_noise(NoiseSource::Torch { seed: 7 }))?;
    /// # Ok::<(), vq_pipeline::PipelineError>(())
    /// ```
    pub fn request<S: Into<String>>(&self, prompts: impl IntoIterator<Item = S>) -> GenerateRequest {
        let diffusers = GenerateRequest::new(prompts);
        let recommended = &self.sampling_defaults;
        GenerateRequest {
            num_inference_steps: self.default_steps(),
            guidance_scale: recommended.guidance_scale.unwrap_or(diffusers.guidance_scale),
            truncation_rate: recommended.truncation_rate.unwrap_or(diffusers.truncation_rate),
            ..diffusers
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_text(name: &str, text: Option<&str>) -> Result<SamplingDefaults, String> {
        let dir = std::env::temp_dir().join(format!("vq-sampling-defaults-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        if let Some(text) = text {
            std::fs::write(dir.join(SAMPLING_DEFAULTS_FILE), text).unwrap();
        }
        let result = SamplingDefaults::from_dir(&dir).map_err(|e| e.to_string());
        std::fs::remove_dir_all(&dir).ok();
        result
    }

    #[test]
    fn a_folder_without_the_file_recommends_nothing() {
        assert_eq!(read_text("none", None).unwrap(), SamplingDefaults { guidance_scale: None, truncation_rate: None });
    }

    #[test]
    fn both_values_or_one_are_read() {
        let both = read_text("both", Some(r#"{"guidance_scale": 3.0, "truncation_rate": 0.7}"#)).unwrap();
        assert_eq!(both, SamplingDefaults { guidance_scale: Some(3.0), truncation_rate: Some(0.7) });
        let one = read_text("one", Some(r#"{"truncation_rate": 0.86}"#)).unwrap();
        assert_eq!(one, SamplingDefaults { guidance_scale: None, truncation_rate: Some(0.86) });
    }

    #[test]
    fn bad_files_are_refused_naming_the_file_and_the_field() {
        for (name, text, expected) in [
            ("range-g", r#"{"guidance_scale": -1}"#, "guidance_scale -1 must be a finite number ≥ 0"),
            ("range-t", r#"{"truncation_rate": 0}"#, "truncation_rate 0 is outside (0, 1]"),
            ("range-t1", r#"{"truncation_rate": 1.5}"#, "truncation_rate 1.5 is outside (0, 1]"),
            ("unknown", r#"{"guidance": 3}"#, "unknown field `guidance`"),
            ("json", "{", "EOF"),
        ] {
            let error = read_text(name, Some(text)).unwrap_err();
            assert!(error.contains(SAMPLING_DEFAULTS_FILE) && error.contains(expected), "{name}: {error}");
        }
    }
}
