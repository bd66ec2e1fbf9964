//! A hostile `HF_ENDPOINT`: each trick gives a typed error naming the problem, and nothing is
//! written outside the cache nor left half-written inside it. The path tricks aim exactly at the
//! sandbox folder above the cache (`escaped` next to `cache/`), where the walk would see them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use vq_pipeline::hub::{resolve_pipeline_dir, HubError, NameKind};

use crate::mock::{raw, with_length, FakeHub, Request, Sandbox, Server, Step, REPO, SHA};

/// The weights file the tricks are played on.
const WEIGHTS: &str = "transformer/diffusion_pytorch_model.safetensors";

/// Serves [`FakeHub::small`], with `trick` answering first where it returns something.
fn hostile(trick: impl Fn(&FakeHub, &Request) -> Option<Vec<Step>> + Send + Sync + 'static) -> Server {
    let hub = Arc::new(FakeHub::small());
    Server::start(move |request| trick(&hub, request).unwrap_or_else(|| hub.answer(request)))
}

/// Resolves [`REPO`] against `server` in a new sandbox, checks the sandbox, returns the error.
fn refused(label: &str, server: &Server) -> HubError {
    let sandbox = Sandbox::new(label);
    let error = resolve_pipeline_dir(REPO, None, &sandbox.options(&server.url)).expect_err("the trick is refused");
    sandbox.assert_contained();
    error
}

fn is_head_of(request: &Request, file: &str) -> bool {
    request.method == "HEAD" && request.path.ends_with(&format!("/{file}"))
}

fn is_get_of(request: &Request, file: &str) -> bool {
    request.method == "GET" && request.path.ends_with(&format!("/{file}"))
}

#[test]
fn file_names_that_leave_the_snapshot_are_refused() {
    // From snapshots/<commit>/ four `..` reach the sandbox.
    for evil in [
        "../../../../escaped/config.json",
        "/tmp/escaped/config.json",
        "tokenizer/../../../../../escaped",
        // A weights file of a folder named `..`.
        "../diffusion_pytorch_model.safetensors",
    ] {
        let server = hostile(move |hub, request| {
            let mut names: Vec<&str> = hub.files.iter().map(|(n, _)| n.as_str()).collect();
            names.push(evil);
            request.path.starts_with("/api/").then(|| FakeHub::listing(SHA, &names))
        });
        let error = refused("file-name", &server);
        assert!(
            matches!(&error, HubError::UnsafeName { kind: NameKind::FileName, value, .. } if value == evil),
            "{evil}: {error}"
        );
        assert!(error.to_string().contains(REPO), "{error}");
        // Refused before any file is fetched.
        assert!(server.requests().iter().all(|r| r.path.starts_with("/api/")), "{:?}", server.requests());
    }
}

#[test]
fn etags_that_are_not_blob_names_are_refused() {
    // From blobs/ three `..` reach the sandbox.
    for evil in ["../../../escaped", "a/b", "..", "W/\"x\\\\y\""] {
        let server = hostile(move |hub, request| {
            is_head_of(request, WEIGHTS).then(|| {
                let mut headers = hub.head_headers(WEIGHTS);
                headers[0] = ("ETag", format!("\"{evil}\""));
                raw(200, &headers, b"")
            })
        });
        let error = refused("etag", &server);
        assert!(matches!(&error, HubError::UnsafeName { kind: NameKind::Etag, .. }), "{evil}: {error}");
        assert!(error.to_string().contains(WEIGHTS), "names the file: {error}");
    }
}

#[test]
fn linked_etags_are_checked_too() {
    let server = hostile(|hub, request| {
        is_head_of(request, WEIGHTS).then(|| {
            let mut headers = hub.head_headers(WEIGHTS);
            headers.push(("X-Linked-Etag", "\"../../../escaped\"".into()));
            raw(200, &headers, b"")
        })
    });
    let error = refused("linked-etag", &server);
    assert!(
        matches!(&error, HubError::UnsafeName { kind: NameKind::Etag, value, .. } if value == "../../../escaped"),
        "{error}"
    );
}

#[test]
fn commit_headers_that_are_not_commit_hashes_are_refused() {
    for evil in ["../../../escaped", "0123456789abcdef/../../../escaped/0123456", "main"] {
        let server = hostile(move |hub, request| {
            is_head_of(request, WEIGHTS).then(|| {
                let mut headers = hub.head_headers(WEIGHTS);
                headers[1] = ("X-Repo-Commit", evil.into());
                raw(200, &headers, b"")
            })
        });
        let error = refused("commit-header", &server);
        assert!(
            matches!(&error, HubError::UnsafeName { kind: NameKind::Commit, value, file: Some(f), .. }
                if value == evil && f == WEIGHTS),
            "{evil}: {error}"
        );
    }
    // A well-formed commit that is not the one asked for is refused too.
    let other = "89abcdef0123456789abcdef0123456789abcdef";
    let server = hostile(move |hub, request| {
        is_head_of(request, WEIGHTS).then(|| {
            let mut headers = hub.head_headers(WEIGHTS);
            headers[1] = ("X-Repo-Commit", other.into());
            raw(200, &headers, b"")
        })
    });
    let error = refused("commit-mismatch", &server);
    assert!(matches!(&error, HubError::CommitMismatch { answered, .. } if answered == other), "{error}");
}

#[test]
fn a_listing_whose_commit_is_not_a_hash_is_refused() {
    for evil in ["../../../escaped", "not-a-commit", "0123456789ABCDEF0123456789ABCDEF01234567", ""] {
        let server = hostile(move |hub, request| {
            let names: Vec<&str> = hub.files.iter().map(|(n, _)| n.as_str()).collect();
            request.path.starts_with("/api/").then(|| FakeHub::listing(evil, &names))
        });
        let error = refused("listing-sha", &server);
        assert!(
            matches!(&error, HubError::UnsafeName { kind: NameKind::Commit, value, file: None, .. } if value == evil),
            "{evil:?}: {error}"
        );
    }
}

#[test]
fn a_revision_that_leaves_refs_is_refused_before_any_request() {
    let server = hostile(|_, _| None);
    let sandbox = Sandbox::new("revision");
    let options = sandbox.options(&server.url).with_revision("../../../escaped");
    let error = resolve_pipeline_dir(REPO, None, &options).unwrap_err();
    sandbox.assert_contained();
    assert!(matches!(error, HubError::UnsafeName { kind: NameKind::Revision, .. }), "{error}");
    assert!(server.requests().is_empty(), "{:?}", server.requests());
}

#[test]
fn a_body_longer_than_declared_is_refused() {
    // The download declares more than the metadata did.
    let server = hostile(|hub, request| {
        is_get_of(request, WEIGHTS).then(|| with_length(200, &[], &[hub.bytes(WEIGHTS), b"and more"].concat()))
    });
    let error = refused("longer-declared", &server);
    let size = FakeHub::small().bytes(WEIGHTS).len() as u64;
    assert!(
        matches!(&error, HubError::SizeMismatch { expected, download, file, .. }
            if *expected == size && *download == size + 8 && file == WEIGHTS),
        "{error}"
    );
    // No length on the download, and more bytes than the metadata declared.
    let server = hostile(|hub, request| {
        is_get_of(request, WEIGHTS).then(|| raw(200, &[], &[hub.bytes(WEIGHTS), b"and more"].concat()))
    });
    let error = refused("longer-undeclared", &server);
    assert!(matches!(&error, HubError::Oversized { expected, .. } if *expected == size), "{error}");
}

#[test]
fn a_body_shorter_than_declared_is_refused() {
    let server = hostile(|hub, request| {
        is_get_of(request, WEIGHTS).then(|| {
            let bytes = hub.bytes(WEIGHTS);
            raw(200, &[("Content-Length", bytes.len().to_string())], &bytes[..5])
        })
    });
    let error = refused("shorter", &server);
    let size = FakeHub::small().bytes(WEIGHTS).len() as u64;
    assert!(
        matches!(&error, HubError::Truncated { expected, received, .. } if *expected == size && *received == 5),
        "{error}"
    );
}

#[test]
fn huge_or_malformed_sizes_are_refused_before_downloading() {
    let server = hostile(|hub, request| {
        is_head_of(request, WEIGHTS).then(|| {
            let mut headers = hub.head_headers(WEIGHTS);
            headers.push(("X-Linked-Size", (1u64 << 63).to_string()));
            raw(200, &headers, b"")
        })
    });
    let error = refused("huge", &server);
    assert!(
        matches!(&error, HubError::TooLarge { size, limit, .. } if *size == 1 << 63 && *limit == 16 << 30),
        "{error}"
    );
    assert!(!server.requests().iter().any(|r| is_get_of(r, WEIGHTS)), "not downloaded");

    for (label, value) in [("overflow", "18446744073709551616"), ("negative", "-1"), ("words", "lots")] {
        let server = hostile(move |hub, request| {
            is_head_of(request, WEIGHTS).then(|| {
                let mut headers = hub.head_headers(WEIGHTS);
                headers[2] = ("Content-Length", value.into());
                raw(200, &headers, b"")
            })
        });
        let error = refused(label, &server);
        assert!(matches!(&error, HubError::BadSize { value: v, .. } if v == value), "{error}");
    }
}

#[test]
fn a_smaller_limit_from_the_options_applies() {
    let server = hostile(|_, _| None);
    let sandbox = Sandbox::new("limit");
    let mut options = sandbox.options(&server.url);
    options.max_file_size = 10;
    let error = resolve_pipeline_dir(REPO, None, &options).unwrap_err();
    sandbox.assert_contained();
    assert!(
        matches!(&error, HubError::TooLarge { file, size: 38, limit: 10, .. } if file == "model_index.json"),
        "{error}"
    );
}

#[test]
fn missing_etag_or_size_is_refused() {
    let server =
        hostile(|hub, request| is_head_of(request, WEIGHTS).then(|| raw(200, &hub.head_headers(WEIGHTS)[1..], b"")));
    let error = refused("no-etag", &server);
    assert!(matches!(&error, HubError::MissingHeader { header: "ETag", .. }), "{error}");
    let server =
        hostile(|hub, request| is_head_of(request, WEIGHTS).then(|| raw(200, &hub.head_headers(WEIGHTS)[..2], b"")));
    let error = refused("no-size", &server);
    assert!(matches!(&error, HubError::MissingHeader { header, .. } if header.contains("Content-Length")), "{error}");
}

#[test]
fn a_stalled_download_times_out() {
    // The headers and a few bytes, then nothing: the configured 300 ms pass, not minutes.
    let server = hostile(|hub, request| {
        is_get_of(request, WEIGHTS).then(|| {
            let bytes = hub.bytes(WEIGHTS);
            let mut steps = raw(200, &[("Content-Length", bytes.len().to_string())], &bytes[..5]);
            steps.push(Step::Sleep(Duration::from_secs(30)));
            steps
        })
    });
    let sandbox = Sandbox::new("stall");
    let mut options = sandbox.options(&server.url);
    options.stall_timeout = Duration::from_millis(300);
    let start = Instant::now();
    let error = resolve_pipeline_dir(REPO, None, &options).unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(20), "gave up on the timeout, not the server");
    sandbox.assert_contained();
    assert!(
        matches!(&error, HubError::Stalled { during: "downloading", file: Some(f), timeout, .. }
            if f == WEIGHTS && *timeout == Duration::from_millis(300)),
        "{error}"
    );
    assert!(error.to_string().contains("HF_HUB_DOWNLOAD_TIMEOUT"), "{error}");
}

#[test]
fn a_listing_that_never_comes_times_out() {
    let server =
        hostile(|_, request| request.path.starts_with("/api/").then(|| vec![Step::Sleep(Duration::from_secs(30))]));
    let sandbox = Sandbox::new("stall-listing");
    let mut options = sandbox.options(&server.url);
    options.stall_timeout = Duration::from_millis(300);
    let error = resolve_pipeline_dir(REPO, None, &options).unwrap_err();
    sandbox.assert_contained();
    assert!(matches!(&error, HubError::Stalled { during: "waiting for an answer", file: None, .. }), "{error}");
}

#[test]
fn a_slow_download_that_keeps_moving_succeeds() {
    // 15 pieces 100 ms apart: 1.5 s in all, longer than the 1 s stall timeout.
    let server = hostile(|hub, request| {
        is_get_of(request, WEIGHTS).then(|| {
            let bytes = hub.bytes(WEIGHTS);
            let mut steps = raw(200, &[("Content-Length", bytes.len().to_string())], b"");
            for piece in bytes.chunks(bytes.len().div_ceil(15)) {
                steps.push(Step::Sleep(Duration::from_millis(100)));
                steps.push(Step::Send(piece.to_vec()));
            }
            steps
        })
    });
    let sandbox = Sandbox::new("slow");
    let mut options = sandbox.options(&server.url);
    options.stall_timeout = Duration::from_secs(1);
    let dir = resolve_pipeline_dir(REPO, None, &options).expect("a slow download completes");
    sandbox.assert_contained();
    assert_eq!(std::fs::read(dir.join(WEIGHTS)).unwrap(), FakeHub::small().bytes(WEIGHTS));
}

#[test]
fn redirects_to_another_host_get_no_token_and_loops_end() {
    let cdn_hub = Arc::new(FakeHub::small());
    let cdn = Server::start(move |request| match request.path.as_str() {
        "/blob" => with_length(200, &[], cdn_hub.bytes(WEIGHTS)),
        _ => raw(302, &[("Location", "/loop".into()), ("Content-Length", "0".into())], b""),
    });
    let redirect = |cdn: String, target: &'static str| {
        hostile(move |hub, request| {
            is_head_of(request, WEIGHTS).then(|| {
                let bytes = hub.bytes(WEIGHTS);
                let headers = [
                    ("Location", format!("{cdn}{target}")),
                    ("X-Linked-Etag", format!("\"{}\"", FakeHub::etag(bytes))),
                    ("X-Linked-Size", bytes.len().to_string()),
                    ("X-Repo-Commit", SHA.into()),
                    ("Content-Length", "0".into()),
                ];
                raw(302, &headers, b"")
            })
        })
    };
    let server = redirect(cdn.url.clone(), "/blob");
    let sandbox = Sandbox::new("redirect");
    let mut options = sandbox.options(&server.url);
    options.token = Some("hf_secret".into());
    let dir = resolve_pipeline_dir(REPO, None, &options).expect("the file comes from the other host");
    sandbox.assert_contained();
    assert_eq!(std::fs::read(dir.join(WEIGHTS)).unwrap(), FakeHub::small().bytes(WEIGHTS));
    assert!(server.requests().iter().all(|r| r.header("authorization") == Some("Bearer hf_secret")));
    assert_eq!(cdn.requests().len(), 1);
    assert!(cdn.requests().iter().all(|r| r.header("authorization").is_none()), "{:?}", cdn.requests());

    let server = redirect(cdn.url.clone(), "/loop");
    let error = refused("redirect-loop", &server);
    assert!(matches!(&error, HubError::Download { message, .. } if message.contains("redirect")), "{error}");
}

#[test]
fn http_errors_name_the_status_and_the_file() {
    let server = hostile(|_, request| is_head_of(request, WEIGHTS).then(|| with_length(404, &[], b"")));
    let error = refused("404", &server);
    assert!(matches!(&error, HubError::Status { status: 404, file: Some(f), .. } if f == WEIGHTS), "{error}");
    let server = hostile(|_, request| {
        request.path.starts_with("/api/").then(|| {
            with_length(401, &[("X-Error-Message", "Invalid credentials in Authorization header".into())], b"")
        })
    });
    let error = refused("401", &server);
    assert!(matches!(&error, HubError::Status { status: 401, file: None, .. }), "{error}");
    assert!(error.to_string().contains("HF_TOKEN") && error.to_string().contains("Invalid credentials"), "{error}");
}
