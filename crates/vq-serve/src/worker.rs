//! The worker thread: takes batches from the queue, runs them on the engine, and answers each
//! job. A panic fails only its own job: a batch that panics is run again job by job, so the
//! others still get their images; the worker carries on either way.

use std::io::Write;
use std::ops::ControlFlow;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use base64::Engine as _;
use image::RgbImage;
use vq_kernels::setup::panic_message;
use vq_pipeline::{encode_png, GenerateRequest, PipelineError};

use crate::api::{unix_time, ImageData, ImagesResponse};
use crate::metrics::{Metrics, Outcome};
use crate::queue::{Job, Progress, Queue};
use crate::{ApiError, Engine, ModelInfo};

/// Starts the worker thread; it ends when the queue is closed and empty.
pub fn spawn<E: Engine>(
    mut engine: E,
    queue: Arc<Queue>,
    metrics: Arc<Metrics>,
    max_batch: usize,
    window: Duration,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new().name("vq-serve-worker".into()).spawn(move || {
        let model = engine.model().clone();
        while let Some(jobs) = queue.take_batch(max_batch, window) {
            let start = Instant::now();
            metrics.batch_started(jobs.iter().map(Job::images).sum());
            run_batch(&mut engine, &model, &metrics, jobs);
            metrics.batch_ended(start.elapsed());
        }
    })
}

/// Runs `jobs` as one batch and answers each of them.
fn run_batch<E: Engine>(engine: &mut E, model: &ModelInfo, metrics: &Metrics, jobs: Vec<Job>) {
    let requests: Vec<GenerateRequest> = jobs.iter().map(|job| job.spec.request.clone()).collect();
    let total = requests[0].num_inference_steps;
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        engine.generate(&requests, &mut |step| {
            for job in &jobs {
                job.progress.send_replace(Progress { step, total });
            }
            match jobs.iter().all(Job::is_cancelled) {
                true => ControlFlow::Break(()),
                false => ControlFlow::Continue(()),
            }
        })
    }));
    match outcome {
        Ok(Ok(images)) => {
            for (job, images) in jobs.into_iter().zip(images) {
                let reply = respond(&job, model, &images);
                finish(job, reply, metrics);
            }
        }
        Ok(Err(PipelineError::Cancelled { .. })) => {
            for _ in &jobs {
                metrics.request(Outcome::Cancelled);
            }
        }
        Ok(Err(error)) => {
            log(&format!("a batch of {} request(s) failed: {error}", jobs.len()));
            let error = match error {
                PipelineError::InvalidArgument { name, message } => ApiError::invalid(name, message),
                other => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, other.to_string()),
            };
            for job in jobs {
                finish(job, Err(error.clone()), metrics);
            }
        }
        Err(panic) if jobs.len() > 1 => {
            log(&format!(
                "a batch of {} requests panicked ({}); running them one by one",
                jobs.len(),
                panic_message(panic.as_ref())
            ));
            for job in jobs {
                run_batch(engine, model, metrics, vec![job]);
            }
        }
        Err(panic) => {
            let message = format!("internal error (a bug, please report it): {}", panic_message(panic.as_ref()));
            log(&format!("the request {:?} failed: {message}", jobs[0].spec.prompt()));
            for job in jobs {
                finish(job, Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message.clone())), metrics);
            }
        }
    }
}

/// The response of `job`: its images as PNGs with the command line's text chunks.
fn respond(job: &Job, model: &ModelInfo, images: &[RgbImage]) -> Result<ImagesResponse, ApiError> {
    let metadata = job.spec.metadata(model);
    let data = images
        .iter()
        .enumerate()
        .map(|(index, image)| {
            let mut png = Vec::new();
            encode_png(&mut png, image, &metadata.chunks(index))
                .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("cannot encode the PNG: {e}")))?;
            let b64_json = base64::engine::general_purpose::STANDARD.encode(png);
            Ok(ImageData { b64_json, seed: job.spec.seed })
        })
        .collect::<Result<_, ApiError>>()?;
    Ok(ImagesResponse { created: unix_time(), data })
}

/// Counts the outcome and sends `reply` to the job's requester (counted first, so that a
/// client reading `/metrics` after its answer finds it counted).
fn finish(job: Job, reply: Result<ImagesResponse, ApiError>, metrics: &Metrics) {
    match &reply {
        _ if job.is_cancelled() => metrics.request(Outcome::Cancelled),
        Ok(response) => metrics.answered(response.data.len(), job.admitted.elapsed()),
        Err(error) if error.status.is_client_error() => metrics.request(Outcome::Invalid),
        Err(_) => metrics.request(Outcome::Failed),
    }
    let _ = job.reply.send(reply);
}

/// A line on stderr (a closed stderr is not worth a panic).
pub fn log(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}
