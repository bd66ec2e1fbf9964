//! The JSON of `POST /v1/images/generations`: the request, its checks, and the response.
//!
//! The fields are the OpenAI images API's where they apply (`prompt`, `model`, `n`, `size`,
//! `response_format`, `stream`) and this project's sampling parameters (`seed`, `steps`,
//! `guidance_scale`, `truncation_rate`, `sampler`, `purity_weight`). Every field is optional but
//! `prompt`; an unknown field is an error, so a misspelt parameter is never silently ignored.

use std::hash::{BuildHasher, RandomState};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use vq_pipeline::{
    check_guidance_scale, check_purity_weight, check_truncation_rate, GenerateRequest, ImageMetadata, NoiseSource,
    RevealOrder, Sampler,
};

use crate::{ApiError, ModelInfo};

/// The longest prompt accepted, in characters (CLIP reads 77 tokens of it anyway).
pub const MAX_PROMPT_CHARS: usize = 1000;
/// The most images one request may ask for (`n`), as the OpenAI API.
pub const MAX_IMAGES: usize = 10;
/// The largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The request body. Absent fields take the model's defaults ([`ModelInfo`]).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageRequest {
    /// The text prompt (required, 1 to [`MAX_PROMPT_CHARS`] characters).
    pub prompt: Option<String>,
    /// Must name the loaded model when given.
    pub model: Option<String>,
    /// Number of images, 1 to [`MAX_IMAGES`] (default 1).
    pub n: Option<usize>,
    /// `WIDTHxHEIGHT`; must be the model's size when given.
    pub size: Option<String>,
    /// `b64_json` (the default and the only format: the server keeps no files to link to).
    pub response_format: Option<String>,
    /// Seed of torch's generator; drawn at random (and returned) when absent.
    pub seed: Option<u64>,
    /// Denoising steps, 1 to the model's training steps.
    pub steps: Option<usize>,
    /// Classifier-free guidance scale, ≥ 0.
    pub guidance_scale: Option<f32>,
    /// Truncation rate, in (0, 1].
    pub truncation_rate: Option<f32>,
    /// `posterior` (default, diffusers'), `reveal` or `purity`.
    pub sampler: Option<String>,
    /// The purity prior's weight r ≥ 0 (with `sampler: purity` only; default 1).
    pub purity_weight: Option<f32>,
    /// Answer with server-sent events (`progress` after every step, then `result` or `error`).
    pub stream: Option<bool>,
}

/// A checked request, ready for the queue.
#[derive(Debug, Clone, PartialEq)]
pub struct JobSpec {
    /// What the pipeline runs.
    pub request: GenerateRequest,
    /// The seed (given or drawn).
    pub seed: u64,
    /// The sampler's name, as the PNGs record it.
    pub sampler: &'static str,
    /// Answer with server-sent events.
    pub stream: bool,
}

impl JobSpec {
    /// The PNG text chunks of this job's images (see [`ImageMetadata::chunks`]), as the command
    /// line writes them for the same prompt, n and seed.
    pub fn metadata<'a>(&'a self, model: &'a ModelInfo) -> ImageMetadata<'a> {
        ImageMetadata {
            model: &model.id,
            seed: self.seed,
            // One request is one `generate` run: its prompt, n images of it, one generator.
            seed_per_image: false,
            prompts: &self.request.prompts,
            num_images_per_prompt: self.request.num_images_per_prompt,
            rng: "torch",
            steps: self.request.num_inference_steps,
            guidance_scale: self.request.guidance_scale,
            truncation_rate: self.request.truncation_rate,
            truncation_mode: "exact",
            sampler: self.sampler,
            purity_weight: match self.request.sampler {
                Sampler::Reveal(RevealOrder::Purity { weight }) => Some(weight),
                _ => None,
            },
            backend: model.backend,
            dtype: model.dtype,
        }
    }

    /// The prompt.
    pub fn prompt(&self) -> &str {
        &self.request.prompts[0]
    }
}

/// Parses a request body; errors name the field (or `body` when the JSON itself is broken).
pub fn parse(body: &[u8]) -> Result<ImageRequest, ApiError> {
    match body.iter().find(|byte| !byte.is_ascii_whitespace()) {
        None => return Err(ApiError::invalid("body", "empty; expected a JSON object with at least \"prompt\"")),
        Some(b'{') => {}
        Some(_) => return Err(ApiError::invalid("body", "not a JSON object; expected {\"prompt\": …}")),
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let request: ImageRequest = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        let message = inner.to_string();
        if let Some(field) = message.strip_prefix("unknown field `").and_then(|rest| rest.split('`').next()) {
            return ApiError::invalid(field, "unknown field (see GET / or the README for the fields)");
        }
        match inner.classify() {
            serde_json::error::Category::Data if path != "." => ApiError::invalid(path, message),
            _ => ApiError::invalid("body", format!("not a valid request object: {message}")),
        }
    })?;
    deserializer.end().map_err(|e| ApiError::invalid("body", format!("not a valid request object: {e}")))?;
    Ok(request)
}

impl ImageRequest {
    /// Checks every field against `model` and fills in its defaults.
    pub fn check(self, model: &ModelInfo) -> Result<JobSpec, ApiError> {
        let prompt = self.prompt.ok_or_else(|| ApiError::invalid("prompt", "missing (the text to draw)"))?;
        if prompt.trim().is_empty() {
            return Err(ApiError::invalid("prompt", "empty"));
        }
        let chars = prompt.chars().count();
        if chars > MAX_PROMPT_CHARS {
            return Err(ApiError::invalid(
                "prompt",
                format!("{chars} characters long; the limit is {MAX_PROMPT_CHARS}"),
            ));
        }
        if let Some(name) = self.model.filter(|name| *name != model.id) {
            return Err(ApiError::invalid("model", format!("{name:?} is not loaded; this server runs {:?}", model.id)));
        }
        let n = self.n.unwrap_or(1);
        if !(1..=MAX_IMAGES).contains(&n) {
            return Err(ApiError::invalid("n", format!("{n} is outside 1..={MAX_IMAGES}")));
        }
        if let Some(size) = self.size.filter(|size| *size != model.size()) {
            return Err(ApiError::invalid(
                "size",
                format!("{size:?} is not available: this model makes {} images", model.size()),
            ));
        }
        if let Some(format) = self.response_format.filter(|format| format != "b64_json") {
            return Err(ApiError::invalid(
                "response_format",
                format!("{format:?} is not supported; use \"b64_json\" (the server keeps no images to link to)"),
            ));
        }
        let steps = self.steps.unwrap_or(model.default_steps);
        if !(1..=model.num_train_timesteps).contains(&steps) {
            return Err(ApiError::invalid(
                "steps",
                format!("{steps} is outside 1..={} (the model's training steps)", model.num_train_timesteps),
            ));
        }
        let guidance_scale = self.guidance_scale.unwrap_or(model.guidance_scale);
        check_guidance_scale(guidance_scale).map_err(|e| ApiError::invalid("guidance_scale", e))?;
        let truncation_rate = self.truncation_rate.unwrap_or(model.truncation_rate);
        check_truncation_rate(truncation_rate).map_err(|e| ApiError::invalid("truncation_rate", e))?;
        let (sampler_name, sampler) = match self.sampler.as_deref().unwrap_or("posterior") {
            "posterior" => ("posterior", Sampler::Posterior),
            "reveal" => ("reveal", Sampler::Reveal(RevealOrder::Uniform)),
            "purity" => {
                let weight = self.purity_weight.unwrap_or(1.0);
                check_purity_weight(weight).map_err(|e| ApiError::invalid("purity_weight", e))?;
                ("purity", Sampler::Reveal(RevealOrder::Purity { weight }))
            }
            other => {
                return Err(ApiError::invalid(
                    "sampler",
                    format!("{other:?} is not one of \"posterior\", \"reveal\", \"purity\""),
                ))
            }
        };
        if let (Some(weight), false) = (self.purity_weight, sampler_name == "purity") {
            return Err(ApiError::invalid("purity_weight", format!("{weight} needs \"sampler\": \"purity\"")));
        }
        let seed = self.seed.unwrap_or_else(random_seed);
        let request = GenerateRequest::new([prompt])
            .with_steps(steps)
            .with_guidance_scale(guidance_scale)
            .with_truncation_rate(truncation_rate)
            .with_images_per_prompt(n)
            .with_sampler(sampler)
            .with_noise(NoiseSource::Torch { seed });
        Ok(JobSpec { request, seed, sampler: sampler_name, stream: self.stream.unwrap_or(false) })
    }
}

/// A seed in 0..2³² (what torch's CPU generator uses of a seed), from the process's random
/// hash keys, as the command line draws it.
fn random_seed() -> u64 {
    RandomState::new().hash_one(Instant::now()) & 0xFFFF_FFFF
}

/// The response: `{"created": …, "data": [{"b64_json": …, "seed": …}, …]}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImagesResponse {
    /// Unix time of the answer, in seconds.
    pub created: u64,
    /// One entry per image, in order.
    pub data: Vec<ImageData>,
}

/// One image.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImageData {
    /// The PNG (with the settings in its text chunks), base64.
    pub b64_json: String,
    /// The request's seed: the images of one request come from one generator, in order, so
    /// the same seed and `n` give the same images.
    pub seed: u64,
}

/// Seconds since the Unix epoch.
pub fn unix_time() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use super::*;

    fn model() -> ModelInfo {
        ModelInfo {
            id: "models/shapes".into(),
            width: 64,
            height: 64,
            num_train_timesteps: 50,
            default_steps: 50,
            guidance_scale: 3.0,
            truncation_rate: 0.7,
            backend: "flex",
            dtype: "f32",
        }
    }

    fn error_of(body: &str) -> ApiError {
        match parse(body.as_bytes()).and_then(|r| r.check(&model())) {
            Ok(spec) => panic!("{body} was accepted: {spec:?}"),
            Err(error) => error,
        }
    }

    #[test]
    fn defaults_are_the_model_s() {
        let spec = parse(br#"{"prompt": "a red circle", "seed": 5}"#).unwrap().check(&model()).unwrap();
        let expected = GenerateRequest::new(["a red circle"])
            .with_steps(50)
            .with_guidance_scale(3.0)
            .with_truncation_rate(0.7)
            .with_noise(NoiseSource::Torch { seed: 5 });
        assert_eq!(spec, JobSpec { request: expected, seed: 5, sampler: "posterior", stream: false });
    }

    #[test]
    fn every_field_is_read() {
        let body = r#"{"prompt": "a cat", "model": "models/shapes", "n": 3, "size": "64x64",
            "response_format": "b64_json", "seed": 4294967301, "steps": 7, "guidance_scale": 1.5,
            "truncation_rate": 0.9, "sampler": "purity", "purity_weight": 2, "stream": true}"#;
        let spec = parse(body.as_bytes()).unwrap().check(&model()).unwrap();
        let expected = GenerateRequest::new(["a cat"])
            .with_steps(7)
            .with_guidance_scale(1.5)
            .with_truncation_rate(0.9)
            .with_images_per_prompt(3)
            .with_sampler(Sampler::Reveal(RevealOrder::Purity { weight: 2.0 }))
            .with_noise(NoiseSource::Torch { seed: 4294967301 });
        assert_eq!(spec, JobSpec { request: expected, seed: 4294967301, sampler: "purity", stream: true });
        let model = model();
        let metadata = spec.metadata(&model);
        assert_eq!((metadata.purity_weight, metadata.steps, metadata.model), (Some(2.0), 7, "models/shapes"));
    }

    #[test]
    fn a_drawn_seed_fits_torch_s_32_bits() {
        let spec = parse(br#"{"prompt": "a"}"#).unwrap().check(&model()).unwrap();
        assert!(spec.seed < 1 << 32);
        assert_eq!(spec.request.noise, NoiseSource::Torch { seed: spec.seed });
    }

    #[test]
    fn bad_requests_name_their_field() {
        let long = format!(r#"{{"prompt": "{}"}}"#, "a".repeat(MAX_PROMPT_CHARS + 1));
        for (body, param, words) in [
            ("", "body", "empty"),
            ("{", "body", "EOF"),
            ("[1]", "body", "not a JSON object"),
            ("\"a cat\"", "body", "not a JSON object"),
            (r#"{"prompt": "a"} x"#, "body", "trailing"),
            ("{}", "prompt", "missing"),
            (r#"{"prompt": "  "}"#, "prompt", "empty"),
            (r#"{"prompt": 3}"#, "prompt", "invalid type"),
            (long.as_str(), "prompt", "1001 characters long; the limit is 1000"),
            (r#"{"prompt": "a", "promt": "b"}"#, "promt", "unknown field"),
            (r#"{"prompt": "a", "n": 0}"#, "n", "0 is outside 1..=10"),
            (r#"{"prompt": "a", "n": 11}"#, "n", "11 is outside 1..=10"),
            (r#"{"prompt": "a", "n": -1}"#, "n", "invalid value"),
            (r#"{"prompt": "a", "n": 1.5}"#, "n", "invalid type"),
            (r#"{"prompt": "a", "steps": 0}"#, "steps", "0 is outside 1..=50"),
            (r#"{"prompt": "a", "steps": 51}"#, "steps", "51 is outside 1..=50"),
            (r#"{"prompt": "a", "size": "256x256"}"#, "size", "this model makes 64x64 images"),
            (r#"{"prompt": "a", "response_format": "url"}"#, "response_format", "\"url\" is not supported"),
            (r#"{"prompt": "a", "model": "dall-e-2"}"#, "model", "\"dall-e-2\" is not loaded"),
            (r#"{"prompt": "a", "guidance_scale": -1}"#, "guidance_scale", "-1 must be a finite number"),
            (r#"{"prompt": "a", "guidance_scale": 1e39}"#, "guidance_scale", "inf must be a finite number"),
            (r#"{"prompt": "a", "truncation_rate": 0}"#, "truncation_rate", "0 is outside (0, 1]"),
            (r#"{"prompt": "a", "sampler": "ddim"}"#, "sampler", "\"ddim\" is not one of"),
            (r#"{"prompt": "a", "purity_weight": 2}"#, "purity_weight", "needs \"sampler\": \"purity\""),
            (r#"{"prompt": "a", "sampler": "purity", "purity_weight": -2}"#, "purity_weight", "-2 must be"),
            (r#"{"prompt": "a", "seed": -3}"#, "seed", "invalid value"),
            (r#"{"prompt": "a", "stream": "yes"}"#, "stream", "invalid type"),
        ] {
            let error = error_of(body);
            assert_eq!(error.status, StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(error.param.as_deref(), Some(param), "{body}: {}", error.message);
            assert!(error.message.starts_with(&format!("{param}: ")), "{body}: {}", error.message);
            assert!(error.message.contains(words), "{body}: {:?} lacks {words:?}", error.message);
        }
    }
}
