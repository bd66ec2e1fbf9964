//! The bounded job queue between the HTTP handlers and the worker, and how the worker takes a
//! batch from it: the oldest job, then the waiting jobs with the same settings
//! ([`BatchKey`]) that still fit, oldest first.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::{oneshot, watch};
use vq_pipeline::BatchKey;

use crate::api::{ImagesResponse, JobSpec};
use crate::metrics::{Metrics, Outcome};
use crate::ApiError;

/// How far a job has come: `step` of `total` denoising steps done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Progress {
    /// Steps done.
    pub step: usize,
    /// Steps of the chain.
    pub total: usize,
}

/// What a job's requester receives: the response, or why there is none.
pub type Reply = Result<ImagesResponse, ApiError>;

/// A request admitted to the queue.
#[derive(Debug)]
pub struct Job {
    /// The checked request.
    pub spec: JobSpec,
    /// The settings it shares with its batch.
    pub key: BatchKey,
    /// When it was admitted.
    pub admitted: Instant,
    /// Steps done, for a streaming requester.
    pub progress: watch::Sender<Progress>,
    /// The answer.
    pub reply: oneshot::Sender<Reply>,
}

/// The requester's end of a job.
#[derive(Debug)]
pub struct JobHandle {
    /// Steps done.
    pub progress: watch::Receiver<Progress>,
    /// The answer; dropping it cancels the job.
    pub reply: oneshot::Receiver<Reply>,
}

impl Job {
    /// A job for `spec` and the handle its requester keeps.
    pub fn new(spec: JobSpec) -> (Self, JobHandle) {
        let total = spec.request.num_inference_steps;
        let (progress, progress_rx) = watch::channel(Progress { step: 0, total });
        let (reply, reply_rx) = oneshot::channel();
        let key = BatchKey::of(&spec.request);
        (
            Self { spec, key, admitted: Instant::now(), progress, reply },
            JobHandle { progress: progress_rx, reply: reply_rx },
        )
    }

    /// Images of the job.
    pub fn images(&self) -> usize {
        self.spec.request.batch_size()
    }

    /// Whether its requester went away (dropped its [`JobHandle`]).
    pub fn is_cancelled(&self) -> bool {
        self.reply.is_closed()
    }
}

/// A job refused: every place of the queue is taken (or the server is stopping).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

/// Jobs waiting for the worker, at most `capacity`.
#[derive(Debug)]
pub struct Queue {
    state: Mutex<State>,
    arrived: Condvar,
    capacity: usize,
    metrics: Arc<Metrics>,
}

#[derive(Debug, Default)]
struct State {
    jobs: VecDeque<Job>,
    closed: bool,
}

impl Queue {
    /// An empty queue of `capacity` places; cancelled jobs it drops are counted in `metrics`.
    pub fn new(capacity: usize, metrics: Arc<Metrics>) -> Self {
        Self { state: Mutex::default(), arrived: Condvar::new(), capacity, metrics }
    }

    /// Most jobs that may wait.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Jobs waiting now.
    pub fn depth(&self) -> usize {
        self.lock().jobs.len()
    }

    /// Admits `job`, or refuses it when the queue is full or closed.
    pub fn push(&self, job: Job) -> Result<(), Full> {
        let mut state = self.lock();
        if state.closed || state.jobs.len() >= self.capacity {
            return Err(Full);
        }
        state.jobs.push_back(job);
        self.arrived.notify_one();
        Ok(())
    }

    /// No job is admitted any more; the worker takes what waits, then [`Self::take_batch`]
    /// returns `None`.
    pub fn close(&self) {
        self.lock().closed = true;
        self.arrived.notify_all();
    }

    /// Blocks for the next batch: the oldest job, then waiting jobs with its settings while the
    /// batch has at most `max_batch` images (a job of more images runs alone). With room left,
    /// waits up to `window` after the first job for others to arrive. `None` once closed and
    /// empty. Jobs whose requester went away are dropped, never run.
    pub fn take_batch(&self, max_batch: usize, window: Duration) -> Option<Vec<Job>> {
        let mut state = self.lock();
        let head = loop {
            self.drop_cancelled(&mut state);
            if let Some(job) = state.jobs.pop_front() {
                break job;
            }
            if state.closed {
                return None;
            }
            state = self.arrived.wait(state).unwrap_or_else(PoisonError::into_inner);
        };
        let deadline = Instant::now() + window;
        let mut images = head.images();
        let mut batch = vec![head];
        loop {
            self.drop_cancelled(&mut state);
            let mut i = 0;
            while i < state.jobs.len() && images < max_batch {
                let job = &state.jobs[i];
                if job.key == batch[0].key && images + job.images() <= max_batch {
                    images += job.images();
                    batch.extend(state.jobs.remove(i));
                } else {
                    i += 1;
                }
            }
            let now = Instant::now();
            if images >= max_batch || state.closed || now >= deadline {
                return Some(batch);
            }
            state = self.arrived.wait_timeout(state, deadline - now).unwrap_or_else(PoisonError::into_inner).0;
        }
    }

    fn drop_cancelled(&self, state: &mut State) {
        let before = state.jobs.len();
        state.jobs.retain(|job| !job.is_cancelled());
        for _ in state.jobs.len()..before {
            self.metrics.request(Outcome::Cancelled);
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use vq_pipeline::{GenerateRequest, NoiseSource};

    use super::*;

    fn job(prompt: &str, n: usize, steps: usize) -> (Job, JobHandle) {
        let request = GenerateRequest::new([prompt])
            .with_images_per_prompt(n)
            .with_steps(steps)
            .with_noise(NoiseSource::Torch { seed: 1 });
        Job::new(JobSpec { request, seed: 1, sampler: "posterior", stream: false })
    }

    fn prompts(batch: &[Job]) -> Vec<&str> {
        batch.iter().map(|job| job.spec.prompt()).collect()
    }

    #[test]
    fn batches_gather_compatible_jobs_oldest_first_up_to_the_image_limit() {
        let queue = Queue::new(8, Arc::default());
        let mut handles = Vec::new();
        for (prompt, n, steps) in [("a", 1, 10), ("b", 1, 20), ("c", 2, 10), ("d", 3, 10), ("e", 1, 10), ("f", 2, 20)] {
            let (job, handle) = job(prompt, n, steps);
            queue.push(job).expect("room");
            handles.push(handle);
        }
        let window = Duration::ZERO;
        // 4 images at most: a (1) + c (2) + e (1); d (3) does not fit and waits.
        assert_eq!(prompts(&queue.take_batch(4, window).unwrap()), ["a", "c", "e"]);
        assert_eq!(prompts(&queue.take_batch(4, window).unwrap()), ["b", "f"]);
        assert_eq!(prompts(&queue.take_batch(4, window).unwrap()), ["d"]);
        // A job larger than the limit runs alone.
        let (big, _big_handle) = job("g", 6, 10);
        queue.push(big).expect("room");
        assert_eq!(prompts(&queue.take_batch(4, window).unwrap()), ["g"]);
        queue.close();
        assert!(queue.take_batch(4, window).is_none());
    }

    #[test]
    fn a_full_queue_gives_the_job_back_and_cancelled_jobs_never_run() {
        let metrics = Arc::new(Metrics::default());
        let queue = Queue::new(2, metrics.clone());
        let (a, a_handle) = job("a", 1, 10);
        let (b, b_handle) = job("b", 1, 10);
        let (c, _c_handle) = job("c", 1, 10);
        queue.push(a).expect("room");
        queue.push(b).expect("room");
        assert_eq!(queue.push(c), Err(Full));
        assert_eq!(queue.depth(), 2);
        drop(a_handle);
        assert_eq!(prompts(&queue.take_batch(8, Duration::ZERO).unwrap()), ["b"]);
        assert_eq!(metrics.count(Outcome::Cancelled), 1);
        drop(b_handle);
    }

    #[test]
    fn the_window_lets_late_jobs_join() {
        let queue = Arc::new(Queue::new(8, Arc::default()));
        let (first, _first_handle) = job("a", 1, 10);
        queue.push(first).expect("room");
        let late = {
            let queue = queue.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(50));
                let (job, handle) = job("b", 1, 10);
                queue.push(job).expect("room");
                handle
            })
        };
        let batch = queue.take_batch(2, Duration::from_secs(10)).unwrap();
        assert_eq!(prompts(&batch), ["a", "b"], "the batch filled up before the window ended");
        drop(late.join());
    }
}
