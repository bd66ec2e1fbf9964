//! A scripted HTTP/1.1 server on 127.0.0.1 and a fake hub that answers the client's three
//! requests (listing, file metadata, file bytes), plus a sandbox folder that proves nothing was
//! written outside its cache.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use vq_pipeline::hub::HubOptions;

/// The repository every test asks for.
pub const REPO: &str = "vq-diffusion-rs/tiny-random";
/// The commit the fake hub serves.
pub const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

/// A request as the server read it.
#[derive(Debug, Clone)]
pub struct Request {
    /// `GET`, `HEAD`, …
    pub method: String,
    /// The path with its query.
    pub path: String,
    /// The headers, names in lower case.
    pub headers: Vec<(String, String)>,
}

impl Request {
    /// The value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// What the server does, in order, before closing the connection.
pub enum Step {
    /// Write these bytes.
    Send(Vec<u8>),
    /// Wait (a stalled server).
    Sleep(Duration),
}

/// A server whose every connection gets one answer from `handler`, then is closed.
pub struct Server {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl Server {
    /// Starts the server on a free port.
    pub fn start(handler: impl Fn(&Request) -> Vec<Step> + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = requests.clone();
        let handler = Arc::new(handler);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (handler, log) = (handler.clone(), log.clone());
                std::thread::spawn(move || serve(stream, &*handler, &log));
            }
        });
        Self { url, requests }
    }

    /// The requests so far.
    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().expect("request log").clone()
    }
}

fn serve(mut stream: TcpStream, handler: &dyn Fn(&Request) -> Vec<Step>, log: &Mutex<Vec<Request>>) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 64 << 10 {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let text = String::from_utf8_lossy(&head);
    let mut lines = text.split("\r\n");
    let mut first = lines.next().unwrap_or_default().split(' ');
    let (method, path) = (first.next().unwrap_or_default().to_string(), first.next().unwrap_or_default().to_string());
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let request = Request { method, path, headers };
    log.lock().expect("request log").push(request.clone());
    for step in handler(&request) {
        match step {
            Step::Send(bytes) => {
                if stream.write_all(&bytes).is_err() {
                    return;
                }
            }
            Step::Sleep(duration) => std::thread::sleep(duration),
        }
    }
    let _ = stream.flush();
}

/// An answer with exactly these headers (no `Content-Length` unless given) and body.
pub fn raw(status: u16, headers: &[(&str, String)], body: &[u8]) -> Vec<Step> {
    let mut bytes = format!("HTTP/1.1 {status} Status\r\nConnection: close\r\n").into_bytes();
    for (name, value) in headers {
        bytes.extend(format!("{name}: {value}\r\n").bytes());
    }
    bytes.extend(b"\r\n");
    bytes.extend(body);
    vec![Step::Send(bytes)]
}

/// An answer with `Content-Length` of the body.
pub fn with_length(status: u16, headers: &[(&str, String)], body: &[u8]) -> Vec<Step> {
    let mut headers = headers.to_vec();
    headers.push(("Content-Length", body.len().to_string()));
    raw(status, &headers, body)
}

/// A fake hub: one repository at commit [`SHA`] with these files.
pub struct FakeHub {
    /// (path, bytes).
    pub files: Vec<(String, Vec<u8>)>,
}

impl FakeHub {
    /// The committed random-weight pipeline `fixtures/tiny/hub`.
    pub fn tiny() -> Self {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/tiny/hub");
        Self { files: crate::common::files_below(&dir) }
    }

    /// A few small files in a pipeline's layout (not a loadable pipeline).
    pub fn small() -> Self {
        let files = [
            ("model_index.json", "{\"_class_name\": \"VQDiffusionPipeline\"}".as_bytes()),
            ("transformer/config.json", b"{}"),
            ("transformer/diffusion_pytorch_model.safetensors", b"0123456789 weights"),
            ("tokenizer/vocab.json", b"{\"a\": 0}"),
        ];
        Self { files: files.iter().map(|(n, b)| (n.to_string(), b.to_vec())).collect() }
    }

    /// The bytes of `file`.
    pub fn bytes(&self, file: &str) -> &[u8] {
        &self.files.iter().find(|(n, _)| n == file).expect("a file of the hub").1
    }

    /// The etag of some bytes: 64 hex digits (a stand-in for the sha256 the hub uses).
    pub fn etag(bytes: &[u8]) -> String {
        (0..4u64)
            .map(|seed| {
                let hash = bytes
                    .iter()
                    .fold(0xcbf2_9ce4_8422_2325 ^ seed, |h, &b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3));
                format!("{hash:016x}")
            })
            .collect()
    }

    /// The listing of any revision: [`SHA`] and `names` as its files.
    pub fn listing(sha: &str, names: &[&str]) -> Vec<Step> {
        let siblings: Vec<String> = names.iter().map(|n| format!("{{\"rfilename\": {}}}", json_string(n))).collect();
        let body =
            format!("{{\"id\": \"{REPO}\", \"sha\": {}, \"siblings\": [{}]}}", json_string(sha), siblings.join(", "));
        with_length(200, &[("Content-Type", "application/json".into())], body.as_bytes())
    }

    /// The headers of `HEAD` for `file`, as the hub sends them for a small file.
    pub fn head_headers(&self, file: &str) -> Vec<(&'static str, String)> {
        let bytes = self.bytes(file);
        vec![
            ("ETag", format!("\"{}\"", Self::etag(bytes))),
            ("X-Repo-Commit", SHA.into()),
            ("Content-Length", bytes.len().to_string()),
        ]
    }

    /// The file a request asks for at [`SHA`], if it is one of the hub's.
    pub fn requested_file(&self, request: &Request) -> Option<&str> {
        let rest = request.path.strip_prefix(&format!("/{REPO}/resolve/{SHA}/"))?;
        self.files.iter().map(|(n, _)| n.as_str()).find(|n| *n == rest)
    }

    /// The hub's answer to `request`: the listing, a file's metadata or bytes, else 404.
    pub fn answer(&self, request: &Request) -> Vec<Step> {
        if request.method == "GET" && request.path.starts_with(&format!("/api/models/{REPO}/revision/")) {
            let names: Vec<&str> = self.files.iter().map(|(n, _)| n.as_str()).collect();
            return Self::listing(SHA, &names);
        }
        match (request.method.as_str(), self.requested_file(request)) {
            ("HEAD", Some(file)) => raw(200, &self.head_headers(file), b""),
            ("GET", Some(file)) => with_length(200, &[], self.bytes(file)),
            _ => with_length(404, &[("X-Error-Message", "Entry not found".into())], b"not found"),
        }
    }
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).expect("a string is JSON")
}

/// A fresh folder holding the cache (`cache/`) and a bystander file; it checks that a run added
/// nothing outside `cache/` and left no temporary file inside it.
pub struct Sandbox {
    /// The folder.
    pub root: PathBuf,
    before: BTreeSet<PathBuf>,
}

impl Sandbox {
    /// A new sandbox named after `label`.
    pub fn new(label: &str) -> Self {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let n = COUNT.fetch_add(1, Ordering::Relaxed);
        let root = std::env::temp_dir().join(format!("vq-hub-sandbox-{}-{n}-{label}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("cache")).expect("create the cache");
        std::fs::write(root.join("bystander.txt"), "untouched").expect("write a bystander");
        let before = tree(&root);
        Self { root, before }
    }

    /// The cache folder.
    pub fn cache(&self) -> PathBuf {
        self.root.join("cache")
    }

    /// Online options for the hub at `endpoint`, with 2 s timeouts.
    pub fn options(&self, endpoint: &str) -> HubOptions {
        let mut options = HubOptions::from_vars(|_| None);
        options.cache_dir = self.cache();
        options.endpoint = Some(endpoint.into());
        options.connect_timeout = Duration::from_secs(2);
        options.stall_timeout = Duration::from_secs(2);
        options
    }

    /// Asserts every path added since [`Sandbox::new`] is inside the cache, the bystander is
    /// unchanged, and no temporary file is left in the cache.
    pub fn assert_contained(&self) {
        let cache = self.cache();
        for path in tree(&self.root).difference(&self.before) {
            assert!(path.starts_with(&cache), "written outside the cache: {}", path.display());
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            assert!(!name.ends_with(".incomplete"), "temporary file left behind: {}", path.display());
        }
        assert_eq!(std::fs::read_to_string(self.root.join("bystander.txt")).expect("bystander"), "untouched");
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// Every path below `dir` (symlinks not followed).
fn tree(dir: &Path) -> BTreeSet<PathBuf> {
    let mut paths = BTreeSet::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            paths.extend(tree(&path));
        }
        paths.insert(path);
    }
    paths
}
