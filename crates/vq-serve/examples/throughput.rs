//! Images per second of the server, batched against one request at a time, for several numbers
//! of concurrent clients, as a markdown table for `BENCHMARKS.md`.
//!
//! ```sh
//! cargo run --release -p vq-serve --example throughput -- --images 16 --clients 1,4,16 --max-batch 1,16
//! ```
//!
//! For every `--max-batch` value it loads the model (burn-flex, f32, as `vq-diffusion serve`
//! runs it by default), serves it on a free loopback port in this process and warms it up with
//! one request; then for every `--clients` count it sends `--images` one-image requests, spread
//! over that many clients sending one after another, each with a seed of its own, and prints a
//! row: images per second over the whole run and the median latency. Last it compares the PNGs
//! of every seed across the `--max-batch` values (the same seed should give the same file).
//!
//! Flags: `--model DIR` (default: the shipped `models/shapes`), `--images N` (16), `--clients
//! LIST` (1,4,16), `--max-batch LIST` (1,16), `--steps N` (the model's default).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use base64::Engine as _;
use vq_pipeline::burn::backend::Flex;
use vq_pipeline::{LoadOptions, VQDiffusionPipeline};
use vq_serve::{PipelineEngine, ServeConfig, ServeError};

/// Prompts of the shipped shapes model, taken in turn.
const PROMPTS: [&str; 4] = [
    "a large red circle in the center on a blue background",
    "a small yellow triangle in the top left on a white background",
    "a large green square in the center on a black background",
    "a small purple diamond on the right on a yellow background",
];

/// The command line.
struct Options {
    model: PathBuf,
    images: usize,
    clients: Vec<usize>,
    max_batch: Vec<usize>,
    steps: Option<usize>,
}

fn options() -> Result<Options, String> {
    let mut options = Options {
        model: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models/shapes"),
        images: 16,
        clients: vec![1, 4, 16],
        max_batch: vec![1, 16],
        steps: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        let number = |text: &str| match text.parse::<usize>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!("{flag} {value}: expected a whole number ≥ 1")),
        };
        let list = || value.split(',').map(|item| number(item.trim())).collect::<Result<Vec<_>, _>>();
        match flag.as_str() {
            "--model" => options.model = PathBuf::from(&value),
            "--images" => options.images = number(&value)?,
            "--clients" => options.clients = list()?,
            "--max-batch" => options.max_batch = list()?,
            "--steps" => options.steps = Some(number(&value)?),
            other => {
                return Err(format!("unknown flag {other} (flags: --model, --images, --clients, --max-batch, --steps)"))
            }
        }
    }
    Ok(options)
}

/// A server on a free loopback port in a thread of its own; stopped gracefully by [`Self::stop`].
struct Server {
    url: String,
    shutdown: tokio::sync::oneshot::Sender<()>,
    thread: JoinHandle<Result<(), ServeError>>,
}

impl Server {
    fn start(engine: PipelineEngine<Flex>, config: ServeConfig) -> Result<Self, String> {
        let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
        let (bound, address) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
                let _ = bound.send(listener.local_addr()?);
                vq_serve::serve(listener, config, engine, async move {
                    let _ = stop.await;
                })
                .await
            })
        });
        let addr = address.recv().map_err(|_| "the server did not bind a loopback port".to_string())?;
        Ok(Self { url: format!("http://{addr}"), shutdown, thread })
    }

    fn stop(self) -> Result<(), String> {
        let _ = self.shutdown.send(());
        self.thread.join().map_err(|_| "the server thread panicked".to_string())?.map_err(|e| e.to_string())
    }
}

/// One request for one image with `seed`: its PNG and how long the answer took.
fn request(agent: &ureq::Agent, url: &str, seed: usize, steps: Option<usize>) -> Result<(Vec<u8>, Duration), String> {
    let steps = steps.map(|s| format!(r#", "steps": {s}"#)).unwrap_or_default();
    let body = format!(r#"{{"prompt": "{}", "seed": {seed}{steps}}}"#, PROMPTS[seed % PROMPTS.len()]);
    let sent = Instant::now();
    let response = agent
        .post(&format!("{url}/v1/images/generations"))
        .set("Content-Type", "application/json")
        .send_string(&body)
        .map_err(|e| format!("seed {seed}: {e}"))?;
    let json: serde_json::Value = serde_json::from_reader(response.into_reader()).map_err(|e| e.to_string())?;
    let latency = sent.elapsed();
    let b64 = json["data"][0]["b64_json"].as_str().ok_or(format!("seed {seed}: no image in {json}"))?;
    let png = base64::engine::general_purpose::STANDARD.decode(b64).map_err(|e| e.to_string())?;
    Ok((png, latency))
}

/// The PNG of every seed, the whole run's seconds and the median latency.
type LoadResult = (BTreeMap<usize, Vec<u8>>, f64, f64);

/// `images` requests (seeds 0..images) from `clients` clients.
fn run_load(url: &str, clients: usize, images: usize, steps: Option<usize>) -> Result<LoadResult, String> {
    let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(3600)).build();
    let start = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|client| {
            let (agent, url) = (agent.clone(), url.to_string());
            std::thread::spawn(move || {
                // Client c sends seeds c, c + clients, c + 2·clients, … one after another.
                (client..images)
                    .step_by(clients)
                    .map(|seed| request(&agent, &url, seed, steps).map(|(png, latency)| (seed, png, latency)))
                    .collect::<Result<Vec<_>, String>>()
            })
        })
        .collect();
    let mut pngs = BTreeMap::new();
    let mut latencies = Vec::new();
    for thread in threads {
        for (seed, png, latency) in thread.join().map_err(|_| "a client panicked")?? {
            pngs.insert(seed, png);
            latencies.push(latency.as_secs_f64());
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    Ok((pngs, seconds, latencies[latencies.len() / 2]))
}

fn main() -> Result<(), String> {
    let options = options()?;
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("model name").map(|v| v.trim_start_matches([' ', '\t', ':']).to_string()))
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    println!(
        "{} on {cpu} ({cores} threads), burn-flex f32, {} one-image requests per row\n",
        options.model.display(),
        options.images
    );
    println!("| --max-batch | clients | images/s | median latency (s) | wall (s) |");
    println!("|---|---|---|---|---|");
    // PNGs by seed, per --max-batch value (of its last run).
    let mut runs: Vec<(usize, BTreeMap<usize, Vec<u8>>)> = Vec::new();
    for &max_batch in &options.max_batch {
        let device = Default::default();
        let pipeline = VQDiffusionPipeline::<Flex>::from_pretrained(
            &options.model.display().to_string(),
            &LoadOptions::default(),
            &device,
        )
        .map_err(|e| e.to_string())?;
        let engine = PipelineEngine::new(pipeline, &options.model.display().to_string(), "flex", "f32");
        let queue = options.clients.iter().copied().max().unwrap_or(1).max(1);
        let server = Server::start(engine, ServeConfig { max_batch, queue, ..ServeConfig::default() })?;
        // Warm-up: the first generation pays for allocations and thread pools.
        run_load(&server.url, 1, 1, options.steps)?;
        let mut last = BTreeMap::new();
        for &clients in &options.clients {
            let (pngs, seconds, median) = run_load(&server.url, clients, options.images, options.steps)?;
            println!(
                "| {max_batch} | {clients} | {:.3} | {median:.2} | {seconds:.1} |",
                options.images as f64 / seconds
            );
            last = pngs;
        }
        server.stop()?;
        runs.push((max_batch, last));
    }
    if let Some(((first_batch, first), rest)) = runs.split_first() {
        for (max_batch, pngs) in rest {
            let same = first.iter().filter(|(seed, png)| pngs.get(seed) == Some(png)).count();
            println!(
                "\nSame PNG file for {same} of {} seeds with --max-batch {first_batch} and {max_batch}",
                first.len()
            );
        }
    }
    Ok(())
}
