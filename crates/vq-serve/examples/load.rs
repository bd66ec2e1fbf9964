//! A load generator for `vq-diffusion serve`: `--clients` threads each send `--requests` requests
//! one after another (one image each, a seed of its own), then it prints images per second.
//!
//! ```sh
//! vq-diffusion serve --max-batch 16 --queue 64 &
//! cargo run --release -p vq-serve --example load -- --url http://127.0.0.1:8080 --clients 4 --requests 8
//! ```
//!
//! With `--save DIR` the PNG of seed S is written to `DIR/S.png`, so that runs with other
//! batch sizes can be compared file by file (`cmp`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;

/// The command line: `--url`, `--clients`, `--requests` (per client), `--steps`, `--save`.
struct Options {
    url: String,
    clients: usize,
    requests: usize,
    steps: Option<usize>,
    save: Option<PathBuf>,
}

fn options() -> Result<Options, String> {
    let mut options = Options { url: "http://127.0.0.1:8080".into(), clients: 1, requests: 4, steps: None, save: None };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        let number = || value.parse::<usize>().map_err(|e| format!("{flag} {value}: {e}"));
        match flag.as_str() {
            "--url" => options.url = value.trim_end_matches('/').to_string(),
            "--clients" => options.clients = number()?,
            "--requests" => options.requests = number()?,
            "--steps" => options.steps = Some(number()?),
            "--save" => options.save = Some(PathBuf::from(value)),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(options)
}

/// Prompts of the shipped shapes model.
const PROMPTS: [&str; 4] = [
    "a large red circle in the center on a blue background",
    "a small yellow triangle in the top left on a white background",
    "a large green square in the center on a black background",
    "a small purple diamond on the right on a yellow background",
];

fn main() -> Result<(), String> {
    let options = Arc::new(options()?);
    if let Some(dir) = &options.save {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(3600)).build();
    let start = Instant::now();
    let clients: Vec<_> = (0..options.clients)
        .map(|client| {
            let (options, agent) = (options.clone(), agent.clone());
            std::thread::spawn(move || -> Result<Vec<Duration>, String> {
                let mut latencies = Vec::new();
                for i in 0..options.requests {
                    let seed = client * options.requests + i;
                    let steps = options.steps.map(|s| format!(r#", "steps": {s}"#)).unwrap_or_default();
                    let body = format!(r#"{{"prompt": "{}", "seed": {seed}{steps}}}"#, PROMPTS[seed % PROMPTS.len()]);
                    let sent = Instant::now();
                    let response = agent
                        .post(&format!("{}/v1/images/generations", options.url))
                        .set("Content-Type", "application/json")
                        .send_string(&body)
                        .map_err(|e| format!("seed {seed}: {e}"))?;
                    let json: serde_json::Value =
                        serde_json::from_reader(response.into_reader()).map_err(|e| e.to_string())?;
                    latencies.push(sent.elapsed());
                    if let Some(dir) = &options.save {
                        let b64 = json["data"][0]["b64_json"].as_str().ok_or("no image")?;
                        let png = base64::engine::general_purpose::STANDARD.decode(b64).map_err(|e| e.to_string())?;
                        std::fs::write(dir.join(format!("{seed}.png")), png).map_err(|e| e.to_string())?;
                    }
                }
                Ok(latencies)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for client in clients {
        latencies.extend(client.join().map_err(|_| "a client panicked")??);
    }
    let seconds = start.elapsed().as_secs_f64();
    latencies.sort();
    let median = latencies[latencies.len() / 2].as_secs_f64();
    println!(
        "{} clients × {} requests: {} images in {seconds:.1} s = {:.3} images/s (median latency {median:.1} s)",
        options.clients,
        options.requests,
        latencies.len(),
        latencies.len() as f64 / seconds
    );
    Ok(())
}
