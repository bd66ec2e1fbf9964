//! The web page of `vq-diffusion serve` in headless Chromium, through chromedriver (WebDriver):
//! type a prompt, press Generate, watch the progress bar move, and get the PNG file
//! `vq-diffusion generate` writes for the same seed. Skipped, saying so, only where Debian's
//! `chromium` and `chromium-driver` are not installed and `VQ_REQUIRE_BROWSER` is not set
//! (`.ci/run` installs them and sets it).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

use crate::common::{tiny, Scratch};
use crate::serve::{generate_pngs, Server};

/// Set (as `.ci/run` sets it), missing browser tools fail the test instead of skipping it.
const REQUIRE_BROWSER: &str = "VQ_REQUIRE_BROWSER";

/// The first of `names` found on `PATH`.
fn find_on_path(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).flat_map(|dir| names.iter().map(move |name| dir.join(name))).find(|p| p.is_file())
}

/// Chromium and chromedriver, or why the test cannot run.
fn browser_tools() -> Result<(PathBuf, PathBuf), String> {
    let chromium = find_on_path(&["chromium", "chromium-browser", "google-chrome"]);
    let driver = find_on_path(&["chromedriver"]);
    match (chromium, driver) {
        (Some(chromium), Some(driver)) => Ok((chromium, driver)),
        _ => {
            Err("chromium and chromedriver are not installed (Debian: apt-get install chromium chromium-driver)".into())
        }
    }
}

/// chromedriver on a free loopback port; killed on drop.
struct Driver {
    url: String,
    child: Child,
}

impl Driver {
    fn start(binary: &Path) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().unwrap().port();
        let child = Command::new(binary)
            .args([format!("--port={port}"), "--allowed-ips=127.0.0.1".into()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        // Killed by `drop` whatever happens next.
        let driver = Self { url: format!("http://127.0.0.1:{port}"), child };
        for _ in 0..500 {
            if ureq::get(&format!("{}/status", driver.url)).call().is_ok() {
                return driver;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("chromedriver did not answer on {}", driver.url);
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A headless Chromium session with a fresh profile in `scratch`.
async fn browser(driver: &Driver, chromium: &Path, scratch: &Scratch) -> Client {
    let profile = scratch.join("chromium-profile");
    let args = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=960,840",
    ]
    .map(String::from)
    .into_iter()
    .chain([format!("--user-data-dir={}", profile.display())]);
    let options = json!({ "binary": chromium, "args": args.collect::<Vec<_>>() });
    let capabilities = serde_json::Map::from_iter([("goog:chromeOptions".to_string(), options)]);
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector).capabilities(capabilities).connect(&driver.url).await.expect("a WebDriver session")
}

/// Runs `body` with a browser session, then ends the session — also when `body` panics, which
/// would otherwise leave Chromium running after the test.
async fn with_browser<F, Fut>(driver: &Driver, chromium: &Path, scratch: &Scratch, body: F)
where
    F: FnOnce(Client) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let client = browser(driver, chromium, scratch).await;
    let outcome = tokio::spawn(body(client.clone())).await;
    let _ = client.close().await;
    if let Err(error) = outcome {
        std::panic::resume_unwind(error.into_panic());
    }
}

/// Sets the input `id` to `value` as a user would.
async fn fill(client: &Client, id: &str, value: &str) {
    let input = client.find(Locator::Id(id)).await.expect(id);
    input.clear().await.expect("clear");
    input.send_keys(value).await.expect("type");
}

/// The progress bar's (value, max) and the status line.
async fn progress(client: &Client) -> (f64, f64, String) {
    let script = "const p = document.getElementById('progress'); \
                  return [p.value, p.max, document.getElementById('status').textContent];";
    let state = client.execute(script, vec![]).await.expect("script");
    (state[0].as_f64().unwrap_or(0.0), state[1].as_f64().unwrap_or(0.0), state[2].as_str().unwrap_or("").to_string())
}

/// What one generation through the page gave.
struct PageRun {
    /// Progress values seen while it ran (value, max).
    seen: Vec<(f64, f64)>,
    /// The result's PNG file.
    png: Vec<u8>,
    /// The result's parameter line.
    params: String,
}

/// Types `prompt`, `seed` and `steps`, presses Generate and watches until the result.
async fn generate_on_page(client: &Client, prompt: &str, seed: u64, steps: usize) -> PageRun {
    fill(client, "prompt", prompt).await;
    fill(client, "seed", &seed.to_string()).await;
    fill(client, "steps", &steps.to_string()).await;
    let valid = client.execute("return document.getElementById('form').checkValidity();", vec![]).await;
    assert_eq!(valid.expect("script"), json!(true), "the form accepts its values (else Generate does nothing)");
    client.find(Locator::Id("generate")).await.expect("button").click().await.expect("click");
    let start = Instant::now();
    let mut seen = Vec::new();
    loop {
        let (value, max, status) = progress(client).await;
        if seen.last() != Some(&(value, max)) {
            seen.push((value, max));
        }
        if status.starts_with("done") {
            break;
        }
        assert!(!status.contains("error") && !status.contains("cannot"), "the page says: {status}");
        assert!(start.elapsed() < Duration::from_secs(600), "no result after 10 minutes; status {status:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let src = client.execute("return document.querySelector('#result img').src;", vec![]).await.expect("src");
    let data = src.as_str().expect("a data URL").strip_prefix("data:image/png;base64,").expect("a PNG data URL");
    let png = base64::engine::general_purpose::STANDARD.decode(data).expect("base64");
    let params = client.find(Locator::Id("params")).await.expect("params").text().await.expect("text");
    PageRun { seen, png, params }
}

#[tokio::test(flavor = "current_thread")]
async fn the_page_makes_the_command_line_s_image_with_moving_progress() {
    let (chromium, chromedriver) = match browser_tools() {
        Ok(tools) => tools,
        Err(why) if std::env::var_os(REQUIRE_BROWSER).is_some() => panic!("{why}, and {REQUIRE_BROWSER} is set"),
        Err(why) => {
            eprintln!("SKIPPED the browser test: {why}");
            return;
        }
    };
    let model = tiny("hub").display().to_string();
    let server = Server::start(&["--model", &model], &[]);
    let driver = Driver::start(&chromedriver);
    let scratch = Scratch::new("browser");
    let expected = generate_pngs(&scratch, "cli", &model, &["--prompt", "a red car", "--seed", "42", "--steps", "60"]);
    let url = server.url.clone();
    with_browser(&driver, &chromium, &scratch, |client| async move {
        client.goto(&url).await.expect("the page loads");
        // The model's defaults fill the form once /v1/models answered.
        client.wait().for_element(Locator::Css("#generate:not([disabled])")).await.expect("the form is ready");
        let default_steps = client.find(Locator::Id("steps")).await.unwrap().prop("value").await.unwrap();
        assert_eq!(default_steps.as_deref(), Some("100"), "the tiny model's default steps");

        let run = generate_on_page(&client, "a red car", 42, 60).await;
        let moving: Vec<f64> =
            run.seen.iter().filter(|(v, max)| *max == 60.0 && *v > 0.0 && *v < *max).map(|s| s.0).collect();
        assert!(moving.len() >= 2, "the progress bar moved through steps: {:?}", run.seen);
        assert!(moving.windows(2).all(|w| w[0] < w[1]), "and only forward: {:?}", run.seen);
        assert_eq!(run.seen.last(), Some(&(60.0, 60.0)), "full at the end");
        assert!(run.png == expected[0], "the page's PNG is the command line's file");
        let params = "“a red car” · seed 42 · 60 steps · guidance 5 · truncation 1 · posterior";
        assert!(run.params.contains(params), "{}", run.params);

        // The gallery keeps this page's results, each with a download link.
        generate_on_page(&client, "a blue square", 7, 3).await;
        let script =
            "return [...document.querySelectorAll('#gallery figure a')].map(a => [a.download, a.href.length > 100]);";
        let links: Value = client.execute(script, vec![]).await.expect("links");
        assert_eq!(links, json!([["vq-diffusion-7-0.png", true], ["vq-diffusion-42-0.png", true]]), "newest first");

        let screenshot = client.screenshot().await.expect("a screenshot");
        let image = image::load_from_memory_with_format(&screenshot, image::ImageFormat::Png).expect("a PNG");
        assert!(image.width() >= 640 && image.height() >= 400, "{}x{}", image.width(), image.height());
    })
    .await;
}

/// Regenerates `docs/serve-page.png`, the README's picture of the page, with the shipped model:
/// `cargo test -p vq-cli --test cli readme_screenshot -- --ignored`.
#[tokio::test(flavor = "current_thread")]
#[ignore = "writes docs/serve-page.png; run by hand"]
async fn readme_screenshot() {
    let (chromium, chromedriver) = browser_tools().expect("the browser tools");
    // From the repository's root, so that the page names the model as a user would.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let server = Server::start_in(&root, &["--model", "models/shapes"], &[]);
    let driver = Driver::start(&chromedriver);
    let scratch = Scratch::new("screenshot");
    let url = server.url.clone();
    with_browser(&driver, &chromium, &scratch, |client| async move {
        client.goto(&url).await.expect("the page loads");
        client.wait().for_element(Locator::Css("#generate:not([disabled])")).await.expect("the form is ready");
        for (prompt, seed) in [
            ("a small yellow triangle in the top left on a white background", 3),
            ("a large green square in the center on a black background", 1),
            ("a large red circle in the center on a blue background", 0),
        ] {
            generate_on_page(&client, prompt, seed, 50).await;
        }
        let screenshot = client.screenshot().await.expect("a screenshot");
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/serve-page.png");
        std::fs::write(&path, screenshot).expect("write the screenshot");
    })
    .await;
}
