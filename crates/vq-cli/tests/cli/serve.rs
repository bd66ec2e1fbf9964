//! `vq-diffusion serve` as a process: images equal to `vq-diffusion generate`'s (PNG bytes and
//! all) under concurrent mixed requests, SIGTERM with a request in flight, the API key from the
//! environment, and bad flags.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use serde_json::Value;

use crate::common::{tiny, vq_diffusion, Scratch};

/// A `vq-diffusion serve` process on a free loopback port; killed on drop if still running.
pub struct Server {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    child: Child,
    stderr: std::thread::JoinHandle<String>,
}

impl Server {
    /// Starts `vq-diffusion serve --addr 127.0.0.1:0` with `args` and `env`, and waits for the
    /// URL it prints.
    pub fn start(args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::start_in(Path::new("."), args, env)
    }

    /// [`Self::start`] in the folder `dir`.
    pub fn start_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_vq-diffusion"));
        command
            .current_dir(dir)
            .args(["serve", "--addr", "127.0.0.1:0"])
            .args(args)
            .env_remove("VQ_DIFFUSION_MODEL")
            .env_remove("VQ_DIFFUSION_API_KEY")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("the binary starts");
        let mut stderr_pipe = child.stderr.take().expect("stderr");
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr_pipe.read_to_string(&mut text);
            text
        });
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("stdout");
        if line.is_empty() {
            let status = child.wait().expect("exit status");
            panic!("the server exited ({status}) without listening:\n{}", stderr.join().unwrap_or_default());
        }
        let url = line.trim().trim_end_matches('/').to_string();
        assert!(url.starts_with("http://127.0.0.1:"), "{url}");
        Self { url, child, stderr }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the process to exit: its status code and stderr.
    pub fn wait(mut self) -> (Option<i32>, String) {
        let status = self.child.wait().expect("exit status");
        let stderr = std::mem::replace(&mut self.stderr, std::thread::spawn(String::new));
        (status.code(), stderr.join().expect("stderr"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `POST /v1/images/generations` with `body` and an optional key: status and JSON body.
pub fn post(url: &str, body: &str, key: Option<&str>) -> (u16, Value) {
    let mut request = ureq::post(&format!("{url}/v1/images/generations")).set("Content-Type", "application/json");
    if let Some(key) = key {
        request = request.set("Authorization", &format!("Bearer {key}"));
    }
    let response = match request.timeout(Duration::from_secs(300)).send_string(body) {
        Ok(response) => response,
        Err(ureq::Error::Status(_, response)) => response,
        Err(error) => panic!("transport error: {error}"),
    };
    let status = response.status();
    (status, serde_json::from_str(&response.into_string().expect("body")).expect("JSON"))
}

/// `GET path`: the status.
pub fn get_status(url: &str, path: &str, key: Option<&str>) -> u16 {
    let mut request = ureq::get(&format!("{url}{path}"));
    if let Some(key) = key {
        request = request.set("Authorization", &format!("Bearer {key}"));
    }
    match request.call() {
        Ok(response) => response.status(),
        Err(ureq::Error::Status(status, _)) => status,
        Err(error) => panic!("transport error: {error}"),
    }
}

/// The PNG files of a response.
pub fn pngs(response: &Value) -> Vec<Vec<u8>> {
    let data = response["data"].as_array().unwrap_or_else(|| panic!("no images: {response}"));
    data.iter()
        .map(|item| base64::engine::general_purpose::STANDARD.decode(item["b64_json"].as_str().expect("b64")).unwrap())
        .collect()
}

/// One request: its JSON body and the `generate` flags that ask for the same images.
struct Case {
    body: &'static str,
    flags: &'static [&'static str],
}

const CASES: [Case; 4] = [
    Case {
        body: r#"{"prompt": "teddy bear playing in the pool", "seed": 0, "steps": 10}"#,
        flags: &["--prompt", "teddy bear playing in the pool", "--seed", "0", "--steps", "10"],
    },
    Case {
        body: r#"{"prompt": "a red car", "n": 2, "seed": 4294967301, "steps": 6}"#,
        flags: &["--prompt", "a red car", "--num-images-per-prompt", "2", "--seed", "4294967301", "--steps", "6"],
    },
    Case {
        body: r#"{"prompt": "a cat", "seed": 3, "steps": 6, "guidance_scale": 2.5, "truncation_rate": 0.8}"#,
        flags: &[
            "--prompt",
            "a cat",
            "--seed",
            "3",
            "--steps",
            "6",
            "--guidance-scale",
            "2.5",
            "--truncation-rate",
            "0.8",
        ],
    },
    Case {
        body: r#"{"prompt": "a dog", "seed": 8, "steps": 6, "sampler": "purity", "purity_weight": 0.5}"#,
        flags: &["--prompt", "a dog", "--seed", "8", "--steps", "6", "--sampler", "purity", "--purity-weight", "0.5"],
    },
];

/// The PNG files `vq-diffusion generate` writes for `flags` on `model`.
pub fn generate_pngs(scratch: &Scratch, name: &str, model: &str, flags: &[&str]) -> Vec<Vec<u8>> {
    let output = scratch.join(&format!("{name}.png"));
    let mut args = vec!["generate", "--model", model, "--rng", "torch"];
    args.extend(flags);
    let output_arg = output.display().to_string();
    args.extend(["--output", &output_arg]);
    let run = vq_diffusion(&args);
    run.assert_success();
    run.stdout.lines().map(|path| std::fs::read(path).expect("a written PNG")).collect()
}

#[test]
fn concurrent_mixed_requests_give_the_command_line_s_png_files() {
    let model = tiny("hub").display().to_string();
    let server = Server::start(&["--model", &model, "--max-batch", "8"], &[]);
    let url = server.url.clone();
    let clients: Vec<_> = CASES
        .iter()
        .map(|case| {
            let url = url.clone();
            std::thread::spawn(move || post(&url, case.body, None))
        })
        .collect();
    let replies: Vec<_> = clients.into_iter().map(|client| client.join().expect("client")).collect();
    let scratch = Scratch::new("serve");
    for (i, (case, (status, response))) in CASES.iter().zip(&replies).enumerate() {
        assert_eq!(*status, 200, "{}: {response}", case.body);
        let expected = generate_pngs(&scratch, &format!("case{i}"), &model, case.flags);
        // Same pixels, same text chunks, same encoder: the same files.
        assert!(pngs(response) == expected, "{}: the server's PNGs differ from the command line's", case.body);
    }
    drop(server);
}

#[test]
fn sigterm_stops_accepting_answers_the_request_in_flight_and_exits_0() {
    let model = tiny("hub").display().to_string();
    let server = Server::start(&["--model", &model], &[]);
    let url = server.url.clone();
    let in_flight = std::thread::spawn(move || post(&url, r#"{"prompt": "a cat", "steps": 100, "seed": 1}"#, None));
    // Wait until the worker runs it.
    let mut running = false;
    for _ in 0..2000 {
        let metrics = ureq::get(&format!("{}/metrics", server.url)).call().expect("metrics").into_string().unwrap();
        if metrics.lines().any(|line| line == "vq_running_images 1") {
            running = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(running, "the request never ran");
    let kill = Command::new("kill").args(["-TERM", &server.pid().to_string()]).status().expect("kill runs");
    assert!(kill.success());
    let (status, response) = in_flight.join().expect("client");
    assert_eq!(status, 200, "{response}");
    assert_eq!(pngs(&response).len(), 1);
    let address = server.url.trim_start_matches("http://").to_string();
    let (code, stderr) = server.wait();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("Stopping: no new connections"), "{stderr}");
    assert!(std::net::TcpStream::connect(address).is_err(), "nothing listens any more");
}

#[test]
fn the_api_key_comes_from_the_flag_or_the_environment() {
    let model = tiny("hub").display().to_string();
    for (args, env) in [
        (vec!["--model", model.as_str(), "--api-key", "s3cret"], vec![("VQ_DIFFUSION_API_KEY", "other")]),
        (vec!["--model", model.as_str()], vec![("VQ_DIFFUSION_API_KEY", "s3cret")]),
    ] {
        let server = Server::start(&args, &env);
        assert_eq!(get_status(&server.url, "/healthz", None), 200);
        assert_eq!(get_status(&server.url, "/v1/models", None), 401);
        assert_eq!(get_status(&server.url, "/v1/models", Some("other")), 401, "the flag wins over the environment");
        assert_eq!(get_status(&server.url, "/v1/models", Some("s3cret")), 200);
        assert_eq!(post(&server.url, r#"{"prompt": "a", "steps": 1}"#, None).0, 401);
        assert_eq!(post(&server.url, r#"{"prompt": "a", "steps": 1}"#, Some("s3cret")).0, 200);
    }
}

#[test]
fn bad_serve_flags_are_one_line_errors() {
    let model = tiny("hub").display().to_string();
    let scratch = Scratch::new("serve-flags");
    let missing = scratch.join("no/such/pipeline").display().to_string();
    for (flags, code, words) in [
        (vec!["--model", &model, "--max-batch", "0"], 2, "--max-batch must be at least 1, got 0"),
        (vec!["--model", &model, "--queue", "0"], 2, "--queue must be at least 1, got 0"),
        (vec!["--model", &model, "--api-key", ""], 2, "--api-key (or VQ_DIFFUSION_API_KEY) must not be empty"),
        (vec!["--model", &model, "--addr", "127.0.0.1:http"], 1, "cannot listen on 127.0.0.1:http"),
        (vec!["--model", &missing, "--addr", "127.0.0.1:0"], 1, "not a folder"),
    ] {
        vq_diffusion(&[&["serve"], flags.as_slice()].concat()).assert_error(code, &[words]);
    }
    // An address in use.
    let server = Server::start(&["--model", &model], &[]);
    let address = server.url.trim_start_matches("http://");
    vq_diffusion(&["serve", "--model", &model, "--addr", address]).assert_error(1, &["cannot listen on", address]);
}

#[test]
fn serve_help_documents_every_flag_and_default() {
    let run = vq_diffusion(&["serve", "--help"]);
    run.assert_success();
    for flag in ["--model <", "--addr <", "--backend <", "--max-batch <", "--queue <", "--api-key <"] {
        assert!(run.stdout.contains(flag), "{flag} missing from:\n{}", run.stdout);
    }
    for word in [
        "[default: 127.0.0.1:8080]",
        "[default: 8]",
        "[default: 32]",
        "VQ_DIFFUSION_API_KEY",
        "/v1/images/generations",
        "Examples:",
        "Exit status",
    ] {
        assert!(run.stdout.contains(word), "{word:?} missing from:\n{}", run.stdout);
    }
    let top = vq_diffusion(&["--help"]);
    assert!(top.stdout.contains("serve"), "{}", top.stdout);
}
