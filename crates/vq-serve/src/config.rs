//! The server's settings.

use std::time::Duration;

use crate::ServeError;

/// The environment variable read for the API key when none is given on the command line.
pub const API_KEY_ENV: &str = "VQ_DIFFUSION_API_KEY";

/// How the server batches, queues and guards its work.
#[derive(Debug, Clone, PartialEq)]
pub struct ServeConfig {
    /// Most images in one transformer batch (requests with compatible settings that arrive
    /// together share a batch; a request of more images runs alone).
    pub max_batch: usize,
    /// Most requests waiting for the worker; one more is answered 503 with `Retry-After`.
    pub queue: usize,
    /// With a key, every endpoint but `/healthz` requires `Authorization: Bearer <key>`.
    pub api_key: Option<String>,
    /// How long the worker waits after a request for others to join its batch, when the
    /// batch has room and nothing else is waiting.
    pub batch_window: Duration,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self { max_batch: 8, queue: 32, api_key: None, batch_window: Duration::from_millis(10) }
    }
}

impl ServeConfig {
    /// Checks the ranges: a batch and a queue of at least one, a non-empty key.
    pub fn validate(&self) -> Result<(), ServeError> {
        if self.max_batch == 0 {
            return Err(ServeError::Config("--max-batch must be at least 1, got 0".into()));
        }
        if self.queue == 0 {
            return Err(ServeError::Config("--queue must be at least 1, got 0".into()));
        }
        if self.api_key.as_deref().is_some_and(|key| key.trim().is_empty()) {
            return Err(ServeError::Config(format!("--api-key (or {API_KEY_ENV}) must not be empty")));
        }
        Ok(())
    }
}
