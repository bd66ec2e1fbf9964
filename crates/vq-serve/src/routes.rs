//! The HTTP endpoints and the API-key check in front of them.

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::stream::{self, Stream, StreamExt};
use serde_json::json;

use crate::api::{self, MAX_BODY_BYTES, MAX_IMAGES, MAX_PROMPT_CHARS};
use crate::metrics::{Metrics, Outcome};
use crate::queue::{Job, JobHandle, Progress, Queue};
use crate::{ApiError, ModelInfo, ServeConfig};

/// What every handler shares.
#[derive(Debug)]
pub struct AppState {
    /// The job queue.
    pub queue: Arc<Queue>,
    /// The metrics.
    pub metrics: Arc<Metrics>,
    /// What is loaded.
    pub model: ModelInfo,
    /// The settings.
    pub config: ServeConfig,
    /// Unix time of the start (`created` of `GET /v1/models`).
    pub started: u64,
}

/// The endpoints, behind the API-key check.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/healthz", get(healthz))
        .route("/v1/models", get(models))
        .route("/metrics", get(metrics))
        .route("/v1/images/generations", post(generations))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), authorize))
        .with_state(state)
}

/// With an API key configured, every path but `/healthz` needs `Authorization: Bearer <key>`.
async fn authorize(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let Some(key) = &state.config.api_key else {
        return next.run(request).await;
    };
    if request.uri().path() == "/healthz" || bearer_matches(request.headers(), key) {
        return next.run(request).await;
    }
    if request.uri().path() == "/v1/images/generations" {
        state.metrics.request(Outcome::Unauthorized);
    }
    ApiError::new(StatusCode::UNAUTHORIZED, "missing or wrong API key: send the header `Authorization: Bearer <key>`")
        .into_response()
}

/// Whether the request carries `Authorization: Bearer <key>`, compared in constant time.
fn bearer_matches(headers: &HeaderMap, key: &str) -> bool {
    let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
    else {
        return false;
    };
    let (token, key) = (token.trim().as_bytes(), key.as_bytes());
    token.len() == key.len() && token.iter().zip(key).fold(0u8, |diff, (a, b)| diff | (a ^ b)) == 0
}

/// `GET /`: the web page, embedded in the binary.
async fn page() -> Html<&'static str> {
    Html(include_str!("page.html"))
}

/// `GET /healthz`: 200 while the server runs (no key needed).
async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// `GET /v1/models`: the loaded model, in the OpenAI list shape, with its size and defaults.
async fn models(State(state): State<Arc<AppState>>) -> Json<serde_json::Value> {
    let model = &state.model;
    Json(json!({
        "object": "list",
        "data": [{
            "id": model.id,
            "object": "model",
            "created": state.started,
            "owned_by": "vq-diffusion-rs",
            "size": model.size(),
            "num_train_timesteps": model.num_train_timesteps,
            "defaults": {
                "steps": model.default_steps,
                "guidance_scale": shortest(model.guidance_scale),
                "truncation_rate": shortest(model.truncation_rate),
                "sampler": "posterior",
            },
            "limits": { "n": MAX_IMAGES, "prompt_chars": MAX_PROMPT_CHARS, "max_batch": state.config.max_batch },
            "backend": model.backend,
            "dtype": model.dtype,
        }],
    }))
}

/// `x` as the f64 with its shortest decimal form (0.7, not the 0.699999988… of `x as f64`), so
/// that clients and the page show the numbers the model's files hold.
fn shortest(x: f32) -> f64 {
    x.to_string().parse().unwrap_or(f64::from(x))
}

/// `GET /metrics`: Prometheus text.
async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    let text = state.metrics.render(state.queue.depth(), state.queue.capacity());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text)
}

/// `POST /v1/images/generations`.
async fn generations(State(state): State<Arc<AppState>>, request: Request) -> Response {
    match admit(&state, request.into_body()).await {
        Ok((handle, true)) => stream(handle).into_response(),
        Ok((handle, false)) => match handle.reply.await {
            Ok(Ok(response)) => Json(response).into_response(),
            Ok(Err(error)) => error.into_response(),
            Err(_) => shutting_down().into_response(),
        },
        Err(error) => {
            state.metrics.request(match error.status {
                StatusCode::SERVICE_UNAVAILABLE => Outcome::Busy,
                _ => Outcome::Invalid,
            });
            error.into_response()
        }
    }
}

/// Reads and checks a request and puts it in the queue; the handle and whether to stream.
async fn admit(state: &AppState, body: Body) -> Result<(JobHandle, bool), ApiError> {
    let body = to_bytes(body, MAX_BODY_BYTES).await.map_err(|_| ApiError {
        status: StatusCode::PAYLOAD_TOO_LARGE,
        ..ApiError::invalid("body", format!("larger than {MAX_BODY_BYTES} bytes"))
    })?;
    let spec = api::parse(&body)?.check(&state.model)?;
    let stream = spec.stream;
    let (job, handle) = Job::new(spec);
    state.queue.push(job).map_err(|_| ApiError::busy(state.queue.capacity(), state.metrics.retry_after()))?;
    Ok((handle, stream))
}

/// The worker dropped a job unanswered: the server is stopping.
fn shutting_down() -> ApiError {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "the server is shutting down")
}

/// Server-sent events of a job: `progress` (`{"step", "total"}`) at once and after every step,
/// then `result` (the response) or `error` (`{"error": …}`). Dropping the stream (the client
/// went away) drops the handle, which cancels the job.
fn stream(handle: JobHandle) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let first = progress_event(*handle.progress.borrow());
    let rest = stream::unfold(Some(handle), |handle| async move {
        let mut handle = handle?;
        let event = tokio::select! {
            biased;
            Ok(()) = handle.progress.changed() => {
                let progress = *handle.progress.borrow_and_update();
                return Some((progress_event(progress), Some(handle)));
            }
            reply = &mut handle.reply => match reply {
                Ok(Ok(response)) => json_event("result", &response),
                Ok(Err(error)) => json_event("error", &error.body()),
                Err(_) => json_event("error", &shutting_down().body()),
            },
        };
        Some((event, None))
    });
    Sse::new(stream::once(async move { first }).chain(rest).map(Ok)).keep_alive(KeepAlive::default())
}

fn progress_event(progress: Progress) -> Event {
    json_event("progress", &progress)
}

fn json_event(name: &str, data: &impl serde::Serialize) -> Event {
    let data = serde_json::to_string(data).unwrap_or_else(|e| format!("{{\"error\": {{\"message\": \"{e}\"}}}}"));
    Event::default().event(name).data(data)
}

async fn not_found(request: Request) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, format!("no endpoint {} {}", request.method(), request.uri().path()))
}

async fn method_not_allowed(request: Request) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{} is not allowed on {}", request.method(), request.uri().path()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f32_settings_reach_json_in_their_shortest_form() {
        assert_eq!(shortest(0.7), 0.7);
        assert_eq!(shortest(3.0), 3.0);
        assert_eq!(shortest(0.86), 0.86);
        assert_ne!(f64::from(0.7f32), 0.7, "what a plain conversion gives instead");
    }

    #[test]
    fn only_the_exact_bearer_key_passes() {
        let headers = |value: &str| HeaderMap::from_iter([(header::AUTHORIZATION, value.parse().unwrap())]);
        assert!(bearer_matches(&headers("Bearer s3cret"), "s3cret"));
        for wrong in ["Bearer s3cre", "Bearer s3cret!", "Basic s3cret", "bearer s3cret", "s3cret", "Bearer "] {
            assert!(!bearer_matches(&headers(wrong), "s3cret"), "{wrong}");
        }
        assert!(!bearer_matches(&HeaderMap::new(), "s3cret"));
    }
}
