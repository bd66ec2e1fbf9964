//! A server on a loopback port around the tiny fixture pipeline, an HTTP client, and an engine
//! wrapper that can hold a batch, panic on a prompt, and record what ran.

use std::io::{BufRead, BufReader};
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use base64::Engine as _;
use image::RgbImage;
use serde_json::Value;
use vq_pipeline::burn::backend::Flex;
use vq_pipeline::{GenerateRequest, PipelineError, VQDiffusionPipeline};
use vq_serve::{Engine, ModelInfo, PipelineEngine, ServeConfig, ServeError};

pub type B = Flex;

/// `fixtures/tiny/hub`: a random-weight pipeline of 16×16 images, 100 training steps.
pub fn tiny() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/tiny/hub")
}

/// The tiny pipeline.
pub fn pipeline() -> VQDiffusionPipeline<B> {
    VQDiffusionPipeline::from_dir(&tiny(), None, &Default::default()).expect("tiny pipeline")
}

/// The tiny pipeline as the server runs it.
pub fn engine() -> PipelineEngine<B> {
    PipelineEngine::new(pipeline(), "tiny", "flex", "f32")
}

/// What a [`Probe`] saw.
#[derive(Debug, Default)]
pub struct Record {
    /// The prompts of every batch run, in order.
    pub batches: Vec<Vec<String>>,
    /// Steps reported by the last batch.
    pub last_steps: usize,
    /// Whether the last batch ended cancelled.
    pub last_cancelled: bool,
}

/// An engine around another: records the batches, holds the first batch until
/// [`Gate::open`], and panics on [`PANIC_PROMPT`].
pub struct Probe<E> {
    inner: E,
    gate: Option<mpsc::Receiver<()>>,
    record: Arc<Mutex<Record>>,
}

/// The prompt a [`Probe`] panics on (a stand-in for a bug inside a job).
pub const PANIC_PROMPT: &str = "panic inside the engine";

/// Releases a [`Probe`]'s first batch.
pub struct Gate(mpsc::Sender<()>);

impl Gate {
    /// Lets the held batch run.
    pub fn open(self) {
        let _ = self.0.send(());
    }
}

impl<E: Engine> Probe<E> {
    /// A probe around `inner`; with `gated`, its first batch waits for the returned [`Gate`].
    pub fn new(inner: E, gated: bool) -> (Self, Option<Gate>, Arc<Mutex<Record>>) {
        let record = Arc::new(Mutex::new(Record::default()));
        let (gate, receiver) = match gated {
            true => {
                let (sender, receiver) = mpsc::channel();
                (Some(Gate(sender)), Some(receiver))
            }
            false => (None, None),
        };
        (Self { inner, gate: receiver, record: record.clone() }, gate, record)
    }
}

impl<E: Engine> Engine for Probe<E> {
    fn model(&self) -> &ModelInfo {
        self.inner.model()
    }

    fn generate(
        &mut self,
        requests: &[GenerateRequest],
        progress: &mut dyn FnMut(usize) -> ControlFlow<()>,
    ) -> Result<Vec<Vec<RgbImage>>, PipelineError> {
        {
            let mut record = self.record.lock().unwrap();
            record.batches.push(requests.iter().map(|r| r.prompts[0].clone()).collect());
            record.last_steps = 0;
        }
        if let Some(gate) = self.gate.take() {
            gate.recv().expect("the test opens the gate");
        }
        if requests.iter().any(|r| r.prompts[0] == PANIC_PROMPT) {
            panic!("a bug in the engine");
        }
        let record = self.record.clone();
        let result = self.inner.generate(requests, &mut |step| {
            record.lock().unwrap().last_steps = step;
            progress(step)
        });
        self.record.lock().unwrap().last_cancelled = matches!(result, Err(PipelineError::Cancelled { .. }));
        result
    }
}

/// A server on 127.0.0.1 (a free port) in a thread of its own; stopped gracefully on drop.
pub struct TestServer {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<Result<(), ServeError>>>,
}

impl TestServer {
    /// Starts serving `engine` with `config`.
    pub fn start<E: Engine>(config: ServeConfig, engine: E) -> Self {
        let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
        let (bound, address) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
                bound.send(listener.local_addr()?).expect("the test waits");
                vq_serve::serve(listener, config, engine, async move {
                    let _ = stop.await;
                })
                .await
            })
        });
        let addr = address.recv().expect("the server binds");
        Self { url: format!("http://{addr}"), shutdown: Some(shutdown), thread: Some(thread) }
    }

    /// Starts the graceful shutdown without waiting for it.
    pub fn begin_shutdown(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }

    /// Shuts down and waits for [`vq_serve::serve`] to return.
    pub fn stop(mut self) -> Result<(), ServeError> {
        self.begin_shutdown();
        self.thread.take().expect("running").join().expect("the server thread does not panic")
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> Reply {
        Reply::of(agent().get(&format!("{}{path}", self.url)).call())
    }

    /// `GET path` with `Authorization: Bearer key`.
    pub fn get_with_key(&self, path: &str, key: &str) -> Reply {
        Reply::of(agent().get(&format!("{}{path}", self.url)).set("Authorization", &format!("Bearer {key}")).call())
    }

    /// `POST /v1/images/generations` with `body`.
    pub fn generate(&self, body: &str) -> Reply {
        Reply::of(self.post_request().send_string(body))
    }

    /// The request of [`Self::generate`], to add headers to.
    pub fn post_request(&self) -> ureq::Request {
        agent().post(&format!("{}/v1/images/generations", self.url)).set("Content-Type", "application/json")
    }

    /// The value of the unlabelled series `name` of `/metrics`.
    pub fn metric(&self, name: &str) -> f64 {
        let text = self.get("/metrics").body;
        text.lines()
            .find_map(|line| line.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
            .unwrap_or_else(|| panic!("{name} missing from\n{text}"))
            .parse()
            .expect("a number")
    }

    /// Waits until the metric `name` has `value` (the worker moves on its own thread).
    pub fn wait_for_metric(&self, name: &str, value: f64) {
        for _ in 0..2000 {
            if self.metric(name) == value {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("{name} never reached {value}");
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.begin_shutdown();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new().timeout(Duration::from_secs(300)).build()
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// `Content-Type`.
    pub content_type: String,
    /// `Retry-After`.
    pub retry_after: Option<String>,
    /// `WWW-Authenticate`.
    pub www_authenticate: Option<String>,
    /// The body.
    pub body: String,
}

impl Reply {
    fn of(result: Result<ureq::Response, ureq::Error>) -> Self {
        let response = match result {
            Ok(response) => response,
            Err(ureq::Error::Status(_, response)) => response,
            Err(error) => panic!("transport error: {error}"),
        };
        let header = |name: &str| response.header(name).map(str::to_string);
        Self {
            status: response.status(),
            content_type: header("Content-Type").unwrap_or_default(),
            retry_after: header("Retry-After"),
            www_authenticate: header("WWW-Authenticate"),
            body: response.into_string().expect("a text body"),
        }
    }

    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    /// Asserts a JSON error with `status` whose `param` is `param` and whose message has `words`.
    pub fn assert_error(&self, status: u16, param: Option<&str>, words: &str) {
        assert_eq!(self.status, status, "{}", self.body);
        assert!(self.content_type.starts_with("application/json"), "{}", self.content_type);
        let error = &self.json()["error"];
        assert_eq!(error["param"].as_str(), param, "{}", self.body);
        let message = error["message"].as_str().expect("a message");
        assert!(message.contains(words), "{message:?} lacks {words:?}");
    }

    /// The images of a 200 answer, with the seed of each and the PNG text chunks.
    pub fn images(&self) -> Vec<Png> {
        assert_eq!(self.status, 200, "{}", self.body);
        self.json()["data"].as_array().expect("data").iter().map(Png::of).collect()
    }
}

/// One image of a response.
#[derive(Debug, Clone, PartialEq)]
pub struct Png {
    /// The pixels.
    pub image: RgbImage,
    /// The `seed` field.
    pub seed: u64,
    /// The text chunks (keyword, text).
    pub text: Vec<(String, String)>,
}

impl Png {
    /// Decodes `{"b64_json": …, "seed": …}`.
    pub fn of(item: &Value) -> Self {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(item["b64_json"].as_str().expect("b64_json"))
            .expect("base64");
        let image = image::load_from_memory_with_format(&bytes, image::ImageFormat::Png).expect("a PNG").to_rgb8();
        let reader = png::Decoder::new(std::io::Cursor::new(&bytes)).read_info().expect("PNG header");
        let text = reader.info().utf8_text.iter().map(|c| (c.keyword.clone(), c.get_text().expect("iTXt"))).collect();
        Self { image, seed: item["seed"].as_u64().expect("seed"), text }
    }
}

/// The events of a server-sent event stream: (event name, JSON data), until the stream ends.
pub fn read_events(reader: impl std::io::Read) -> Vec<(String, Value)> {
    let mut events = Vec::new();
    let mut name = String::new();
    for line in BufReader::new(reader).lines() {
        let line = line.expect("a line");
        if let Some(value) = line.strip_prefix("event:") {
            name = value.trim().to_string();
        } else if let Some(data) = line.strip_prefix("data:") {
            events.push((name.clone(), serde_json::from_str(data.trim()).expect("JSON data")));
        }
    }
    events
}

/// The images `request` gives through the pipeline directly.
pub fn alone(pipeline: &VQDiffusionPipeline<B>, request: &GenerateRequest) -> Vec<RgbImage> {
    pipeline.generate(request).expect("generate").rgb8()
}
