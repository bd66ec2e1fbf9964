//! The server over HTTP on a loopback port, with the tiny fixture pipeline: the API and its
//! errors, batching with per-request noise, a bounded queue under load, and faults (a panic in a
//! job, clients that go away, shutdown with requests in flight).

mod api;
mod batching;
mod common;
mod faults;
