//! Counters and histograms of the server, rendered as Prometheus text (`GET /metrics`).

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// How a generation request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Answered with its images.
    Ok,
    /// Refused as malformed or out of range (4xx).
    Invalid,
    /// Refused for a missing or wrong API key (401).
    Unauthorized,
    /// Refused because the queue was full (503).
    Busy,
    /// Its client went away before the answer.
    Cancelled,
    /// Failed inside the server (500).
    Failed,
}

impl Outcome {
    const ALL: [Outcome; 6] = [Self::Ok, Self::Invalid, Self::Unauthorized, Self::Busy, Self::Cancelled, Self::Failed];

    fn label(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Invalid => "invalid",
            Self::Unauthorized => "unauthorized",
            Self::Busy => "busy",
            Self::Cancelled => "cancelled",
            Self::Failed => "failed",
        }
    }
}

/// Upper bounds (seconds) of the request latency histogram's buckets.
const LATENCY_BUCKETS: [f64; 11] = [0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0];
/// Upper bounds (images) of the batch size histogram's buckets.
const BATCH_BUCKETS: [f64; 6] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0];

/// A cumulative histogram: counts per bucket, sum and count.
#[derive(Debug)]
struct Histogram {
    bounds: &'static [f64],
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Self { bounds, counts: vec![0; bounds.len()], sum: 0.0, count: 0 }
    }

    fn observe(&mut self, value: f64) {
        for (bound, count) in self.bounds.iter().zip(&mut self.counts) {
            if value <= *bound {
                *count += 1;
            }
        }
        self.sum += value;
        self.count += 1;
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (bound, count) in self.bounds.iter().zip(&self.counts) {
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {count}");
        }
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum {}\n{name}_count {}", self.sum, self.count);
    }
}

/// The server's metrics, shared by the handlers and the worker.
#[derive(Debug)]
pub struct Metrics {
    requests: [AtomicU64; Outcome::ALL.len()],
    images: AtomicU64,
    running_images: AtomicU64,
    latency: Mutex<Histogram>,
    batches: Mutex<Histogram>,
    batch_seconds: Mutex<(f64, u64)>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            requests: Default::default(),
            images: AtomicU64::new(0),
            running_images: AtomicU64::new(0),
            latency: Mutex::new(Histogram::new(&LATENCY_BUCKETS)),
            batches: Mutex::new(Histogram::new(&BATCH_BUCKETS)),
            batch_seconds: Mutex::new((0.0, 0)),
        }
    }
}

impl Metrics {
    /// Counts a request that ended with `outcome`.
    pub fn request(&self, outcome: Outcome) {
        self.requests[outcome as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a request answered with `images` images, `latency` after it was admitted.
    pub fn answered(&self, images: usize, latency: Duration) {
        self.request(Outcome::Ok);
        self.images.fetch_add(images as u64, Ordering::Relaxed);
        lock(&self.latency).observe(latency.as_secs_f64());
    }

    /// A batch of `images` images starts.
    pub fn batch_started(&self, images: usize) {
        self.running_images.store(images as u64, Ordering::Relaxed);
        lock(&self.batches).observe(images as f64);
    }

    /// The running batch ended after `took`.
    pub fn batch_ended(&self, took: Duration) {
        self.running_images.store(0, Ordering::Relaxed);
        let mut seconds = lock(&self.batch_seconds);
        seconds.0 += took.as_secs_f64();
        seconds.1 += 1;
    }

    /// Requests that ended with `outcome` so far.
    pub fn count(&self, outcome: Outcome) -> u64 {
        self.requests[outcome as usize].load(Ordering::Relaxed)
    }

    /// The mean time of a batch so far, rounded up to whole seconds (at least 1): what a client
    /// refused for a full queue should wait before trying again.
    pub fn retry_after(&self) -> u64 {
        let (sum, count) = *lock(&self.batch_seconds);
        match count {
            0 => 1,
            _ => ((sum / count as f64).ceil() as u64).clamp(1, 600),
        }
    }

    /// The Prometheus text exposition, with the queue's current `depth` and `capacity`.
    pub fn render(&self, depth: usize, capacity: usize) -> String {
        let mut out = String::new();
        let gauge = |out: &mut String, name: &str, help: &str, value: u64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}");
        };
        gauge(&mut out, "vq_queue_depth", "Requests waiting for the worker.", depth as u64);
        gauge(&mut out, "vq_queue_capacity", "Most requests that may wait (--queue).", capacity as u64);
        let running = self.running_images.load(Ordering::Relaxed);
        gauge(&mut out, "vq_running_images", "Images in the batch being generated.", running);
        let name = "vq_requests_total";
        let _ = writeln!(out, "# HELP {name} Generation requests by outcome.\n# TYPE {name} counter");
        for outcome in Outcome::ALL {
            let _ = writeln!(out, "{name}{{outcome=\"{}\"}} {}", outcome.label(), self.count(outcome));
        }
        let images = self.images.load(Ordering::Relaxed);
        let _ = writeln!(out, "# HELP vq_images_total Images generated and answered.");
        let _ = writeln!(out, "# TYPE vq_images_total counter\nvq_images_total {images}");
        lock(&self.batches).render(&mut out, "vq_batch_images", "Images per transformer batch (one count per batch).");
        lock(&self.latency).render(
            &mut out,
            "vq_request_duration_seconds",
            "Time from admission to answer of the requests answered with images.",
        );
        out
    }
}

/// The lock's data, even if a thread panicked holding it (counters stay usable).
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_has_every_series_with_its_values() {
        let metrics = Metrics::default();
        metrics.batch_started(3);
        metrics.answered(2, Duration::from_millis(700));
        metrics.answered(1, Duration::from_secs(3));
        metrics.request(Outcome::Busy);
        metrics.batch_ended(Duration::from_millis(1500));
        let text = metrics.render(4, 8);
        for line in [
            "vq_queue_depth 4",
            "vq_queue_capacity 8",
            "vq_running_images 0",
            "vq_requests_total{outcome=\"ok\"} 2",
            "vq_requests_total{outcome=\"busy\"} 1",
            "vq_requests_total{outcome=\"failed\"} 0",
            "vq_images_total 3",
            "vq_batch_images_bucket{le=\"2\"} 0",
            "vq_batch_images_bucket{le=\"4\"} 1",
            "vq_batch_images_count 1",
            "vq_request_duration_seconds_bucket{le=\"0.5\"} 0",
            "vq_request_duration_seconds_bucket{le=\"1\"} 1",
            "vq_request_duration_seconds_bucket{le=\"5\"} 2",
            "vq_request_duration_seconds_bucket{le=\"+Inf\"} 2",
            "vq_request_duration_seconds_sum 3.7",
            "vq_request_duration_seconds_count 2",
            "# TYPE vq_request_duration_seconds histogram",
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} missing from\n{text}");
        }
        assert_eq!(metrics.retry_after(), 2, "1.5 s per batch, rounded up");
    }
}
