//! `vq-diffusion serve`: VQ-Diffusion text-to-image as an HTTP service.
//!
//! - `POST /v1/images/generations`: the OpenAI images API where it applies (`prompt`, `n`,
//!   `size`, `response_format: b64_json`), with this project's sampling parameters (`seed`,
//!   `steps`, `guidance_scale`, `truncation_rate`, `sampler`, `purity_weight`) and `stream: true`
//!   for server-sent progress events ([`api`]).
//! - `GET /healthz`, `GET /v1/models`, `GET /metrics` (Prometheus text), and `GET /`, a web page
//!   embedded in the binary.
//!
//! One worker thread owns the model ([`Engine`]). Requests wait in a bounded queue (a full queue
//! answers 503 with `Retry-After`); the worker takes the oldest one together with the waiting
//! requests that share its settings, up to `max_batch` images, and runs them as one transformer
//! batch in which each request draws its own noise
//! ([`VQDiffusionPipeline::generate_batch`](vq_pipeline::VQDiffusionPipeline::generate_batch)):
//! a seed gives the images `vq-diffusion generate --rng torch` gives, batched or not. A client
//! that goes away cancels its request; the server keeps nothing between requests, so replicas
//! behind any HTTP load balancer scale it out.
//!
//! ```no_run
//! use vq_pipeline::burn::backend::Flex;
//! use vq_pipeline::{LoadOptions, VQDiffusionPipeline};
//! use vq_serve::{PipelineEngine, ServeConfig};
//!
//! let device = Default::default();
//! let pipeline = VQDiffusionPipeline::<Flex>::from_pretrained("models/shapes", &LoadOptions::default(), &device)?;
//! let engine = PipelineEngine::new(pipeline, "models/shapes", "flex", "f32");
//! let listener = vq_serve::bind("127.0.0.1:8080")?;
//! vq_serve::run(listener, ServeConfig::default(), engine)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod api;
mod config;
mod engine;
mod error;
mod metrics;
mod queue;
mod routes;
mod worker;

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;

pub use config::{ServeConfig, API_KEY_ENV};
pub use engine::{Engine, ModelInfo, PipelineEngine};
pub use error::{ApiError, ServeError};
pub use metrics::{Metrics, Outcome};
pub use queue::Progress;

/// Serves `engine` on `listener` until `shutdown` completes; then stops accepting, answers the
/// requests already admitted, and returns.
pub async fn serve<E: Engine>(
    listener: TcpListener,
    config: ServeConfig,
    engine: E,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    config.validate()?;
    let metrics = Arc::new(Metrics::default());
    let queue = Arc::new(queue::Queue::new(config.queue, metrics.clone()));
    let model = engine.model().clone();
    let worker = worker::spawn(engine, queue.clone(), metrics.clone(), config.max_batch, config.batch_window)
        .map_err(|e| ServeError::Worker(e.to_string()))?;
    let state = Arc::new(routes::AppState { queue: queue.clone(), metrics, model, config, started: api::unix_time() });
    let served = axum::serve(listener, routes::router(state)).with_graceful_shutdown(shutdown).await;
    // Every connection is closed: nothing waits for the queue any more.
    queue.close();
    let joined = tokio::task::spawn_blocking(move || worker.join()).await;
    served?;
    match joined {
        Ok(Ok(())) => Ok(()),
        _ => Err(ServeError::Worker("the worker thread panicked".into())),
    }
}

/// Binds `addr` (`HOST:PORT`; port 0 picks a free port), before the model is loaded: an
/// address in use fails at once, and connections made while the model loads wait.
pub fn bind(addr: &str) -> Result<std::net::TcpListener, ServeError> {
    let bind_error = |source| ServeError::Bind { addr: addr.to_string(), source };
    let listener = std::net::TcpListener::bind(addr).map_err(bind_error)?;
    listener.set_nonblocking(true).map_err(bind_error)?;
    Ok(listener)
}

/// Serves `engine` on `listener` (from [`bind`]) on a runtime of its own until Ctrl-C or
/// SIGTERM ([`shutdown_signal`]).
pub fn run<E: Engine>(listener: std::net::TcpListener, config: ServeConfig, engine: E) -> Result<(), ServeError> {
    config.validate()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("vq-serve-io")
        .enable_all()
        .build()?;
    runtime.block_on(async { serve(TcpListener::from_std(listener)?, config, engine, shutdown_signal()).await })
}

/// Completes on Ctrl-C (SIGINT) or SIGTERM, saying so on stderr.
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
    worker::log("Stopping: no new connections; answering the requests in flight…");
}
