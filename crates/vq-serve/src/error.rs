//! Errors: what a client gets (a status and an OpenAI-style JSON body naming the field) and
//! why the server could not start.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// A failed request: its HTTP status and the JSON body
/// `{"error": {"message": …, "type": …, "param": …, "code": null}}` (the OpenAI API's shape).
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// What went wrong, for people.
    pub message: String,
    /// The request field at fault, when one is.
    pub param: Option<String>,
    /// Seconds after which a retry may succeed (`Retry-After`, with 503).
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// A 400 naming the field `param`.
    pub fn invalid(param: impl Into<String>, message: impl Into<String>) -> Self {
        let param = param.into();
        Self {
            status: StatusCode::BAD_REQUEST,
            message: format!("{param}: {}", message.into()),
            param: Some(param),
            retry_after: None,
        }
    }

    /// An error with `status` and no field.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self { status, message: message.into(), param: None, retry_after: None }
    }

    /// The queue is full: 503 with `Retry-After: seconds`.
    pub fn busy(queue: usize, seconds: u64) -> Self {
        Self {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: format!("the server is busy: all {queue} places of the queue are taken; retry after {seconds} s"),
            param: None,
            retry_after: Some(seconds),
        }
    }

    /// The OpenAI error type of the status.
    fn kind(&self) -> &'static str {
        match self.status {
            StatusCode::UNAUTHORIZED => "authentication_error",
            StatusCode::NOT_FOUND => "not_found_error",
            StatusCode::SERVICE_UNAVAILABLE => "server_busy",
            status if status.is_client_error() => "invalid_request_error",
            _ => "server_error",
        }
    }

    /// The JSON body.
    pub fn body(&self) -> ErrorBody<'_> {
        ErrorBody {
            error: ErrorDetail { message: &self.message, kind: self.kind(), param: self.param.as_deref(), code: None },
        }
    }
}

/// `{"error": …}`.
#[derive(Debug, Serialize)]
pub struct ErrorBody<'a> {
    /// The error.
    pub error: ErrorDetail<'a>,
}

/// The fields of an error.
#[derive(Debug, Serialize)]
pub struct ErrorDetail<'a> {
    /// What went wrong.
    pub message: &'a str,
    /// `invalid_request_error`, `authentication_error`, `not_found_error`, `server_busy` or
    /// `server_error`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The request field at fault.
    pub param: Option<&'a str>,
    /// Always null (the field exists for OpenAI clients).
    pub code: Option<&'static str>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body())).into_response();
        let headers = response.headers_mut();
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: String,
        /// The operating-system error.
        source: std::io::Error,
    },
    /// A setting is out of range.
    #[error("{0}")]
    Config(String),
    /// The HTTP server or its runtime failed.
    #[error("server: {0}")]
    Io(#[from] std::io::Error),
    /// The worker thread could not be started or died.
    #[error("worker: {0}")]
    Worker(String),
}
