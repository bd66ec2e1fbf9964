//! HTTP with the hub (or an `HF_ENDPOINT` mirror), the requests `huggingface_hub` makes:
//!
//! - `GET {endpoint}/api/models/{repo}/revision/{revision}`: the commit and the file listing;
//! - `HEAD {endpoint}/{repo}/resolve/{commit}/{file}`: the file's etag (`X-Linked-Etag` or
//!   `ETag`), size (`X-Linked-Size` or `Content-Length`) and commit (`X-Repo-Commit`); relative
//!   redirects (a renamed repository) are followed, an absolute one (large files live on a CDN)
//!   is where the file is downloaded from;
//! - `GET` of that location: the bytes.
//!
//! Nothing here trusts the server: connecting and every read have a timeout (a slow download
//! that keeps moving goes on, one that stalls fails), the listing is read up to 16 MiB, a file's
//! declared size is checked against [`HubOptions::max_file_size`] before the download starts and
//! the download must deliver exactly that many bytes. The token goes only to the endpoint:
//! redirects to other hosts are followed without it. Connections are not reused, so the bytes
//! of one answer can never be read as the next one.

use std::io::{Read, Write};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Deserialize;
use url::Url;

use crate::hub::cache::TempFile;
use crate::hub::names::{check_commit, check_etag, normalize_etag};
use crate::hub::{HubError, HubOptions};

/// The hub when `HF_ENDPOINT` is not set.
const DEFAULT_ENDPOINT: &str = "https://huggingface.co";
/// The largest repository listing read.
const MAX_LISTING: u64 = 16 << 20;
/// Redirects followed per request.
const MAX_REDIRECTS: u32 = 5;
/// Files from this size on get a progress bar (on a terminal).
const PROGRESS_FROM: u64 = 1 << 20;

/// The commit and files of a revision.
pub(crate) struct RepoInfo {
    /// The commit hash (checked).
    pub sha: String,
    /// The file paths (not checked: only the ones used are).
    pub files: Vec<String>,
}

/// Where and what a file is.
pub(crate) struct FileMeta {
    /// The blob name (checked).
    pub etag: String,
    /// The declared size, within the limit.
    pub size: u64,
    /// Where to download it from.
    pub url: String,
}

/// A client for one repository.
pub(crate) struct Client<'a> {
    repo: &'a str,
    options: &'a HubOptions,
    endpoint: String,
    /// Follows no redirect itself (relative ones are followed by [`Client::call_relative`]).
    direct: ureq::Agent,
    /// Follows up to [`MAX_REDIRECTS`] redirects, without the token.
    following: ureq::Agent,
}

#[derive(Deserialize)]
struct Listing {
    sha: Option<String>,
    #[serde(default)]
    siblings: Vec<Sibling>,
}

#[derive(Deserialize)]
struct Sibling {
    rfilename: String,
}

impl<'a> Client<'a> {
    /// A client for `repo` (a valid repository id) with `options`' endpoint, token and limits.
    pub fn new(repo: &'a str, options: &'a HubOptions) -> Self {
        let endpoint = options.endpoint.as_deref().unwrap_or(DEFAULT_ENDPOINT).trim_end_matches('/').to_string();
        let agent = |redirects| {
            ureq::AgentBuilder::new()
                .timeout_connect(options.connect_timeout)
                .timeout_read(options.stall_timeout)
                .timeout_write(options.stall_timeout)
                .redirects(redirects)
                .redirect_auth_headers(ureq::RedirectAuthHeaders::Never)
                .max_idle_connections(0)
                .try_proxy_from_env(true)
                .user_agent(concat!("vq-diffusion-rs/", env!("CARGO_PKG_VERSION")))
                .build()
        };
        Self { repo, options, endpoint, direct: agent(0), following: agent(MAX_REDIRECTS) }
    }

    /// The commit and file listing of `revision`.
    pub fn info(&self, revision: &str) -> Result<RepoInfo, HubError> {
        let url = format!("{}/api/models/{}/revision/{}", self.endpoint, self.repo, encode(revision, false));
        let (response, url) = self.call_relative("GET", &url, None)?;
        if response.status() != 200 {
            return Err(
                self.download_error(None, format!("{url} answered {} instead of the listing", response.status()))
            );
        }
        let mut body = Vec::new();
        response
            .into_reader()
            .take(MAX_LISTING + 1)
            .read_to_end(&mut body)
            .map_err(|e| self.read_error(None, e, "waiting for an answer"))?;
        if body.len() as u64 > MAX_LISTING {
            return Err(self.download_error(None, format!("the listing at {url} is larger than {MAX_LISTING} bytes")));
        }
        let listing: Listing = serde_json::from_slice(&body)
            .map_err(|e| self.download_error(None, format!("the listing at {url} is not a hub listing: {e}")))?;
        let sha = listing.sha.ok_or_else(|| self.download_error(None, format!("the listing at {url} has no `sha`")))?;
        check_commit(self.repo, None, &sha)?;
        Ok(RepoInfo { sha, files: listing.siblings.into_iter().map(|s| s.rfilename).collect() })
    }

    /// The etag, size and download location of `file` (a checked name) at `commit`.
    pub fn metadata(&self, commit: &str, file: &str) -> Result<FileMeta, HubError> {
        let url = format!("{}/{}/resolve/{commit}/{}", self.endpoint, self.repo, encode(file, true));
        let (response, url) = self.call_relative("HEAD", &url, Some(file))?;
        let header = |name: &str| response.header(name).map(str::trim);
        if let Some(answered) = header("X-Repo-Commit") {
            check_commit(self.repo, Some(file), answered)?;
            if answered != commit {
                return Err(HubError::CommitMismatch {
                    repo: self.repo.into(),
                    file: file.into(),
                    expected: commit.into(),
                    answered: answered.into(),
                });
            }
        }
        let etag = header("X-Linked-Etag").or(header("ETag")).ok_or_else(|| HubError::MissingHeader {
            repo: self.repo.into(),
            file: file.into(),
            header: "ETag",
        })?;
        let etag = normalize_etag(etag);
        check_etag(self.repo, file, etag)?;
        let (size_header, size) = match (header("X-Linked-Size"), header("Content-Length")) {
            (Some(size), _) => ("X-Linked-Size", size),
            (None, Some(size)) => ("Content-Length", size),
            (None, None) => {
                return Err(HubError::MissingHeader {
                    repo: self.repo.into(),
                    file: file.into(),
                    header: "X-Linked-Size or Content-Length",
                })
            }
        };
        let size = self.parse_size(file, size_header, size)?;
        if size > self.options.max_file_size {
            return Err(HubError::TooLarge {
                repo: self.repo.into(),
                file: file.into(),
                size,
                limit: self.options.max_file_size,
            });
        }
        // A redirect left in the answer is absolute (another host): the file is there.
        let url = match response.status() {
            300..=399 => header("Location").map(str::to_string).unwrap_or(url),
            _ => url,
        };
        Ok(FileMeta { etag: etag.into(), size, url })
    }

    /// Downloads `file` into `to`: exactly `meta.size` bytes, or an error.
    pub fn download(&self, file: &str, meta: &FileMeta, to: &mut TempFile) -> Result<(), HubError> {
        // The token goes to the endpoint only, not to the host a large file redirects to.
        let same_origin = match (Url::parse(&meta.url), Url::parse(&self.endpoint)) {
            (Ok(file_url), Ok(endpoint)) => file_url.origin() == endpoint.origin(),
            _ => false,
        };
        let response = self.call(&self.following, "GET", &meta.url, Some(file), same_origin)?;
        if response.status() != 200 {
            let message = format!("{} answered {} to the download", meta.url, response.status());
            return Err(self.download_error(Some(file), message));
        }
        if let Some(length) = response.header("Content-Length") {
            let length = self.parse_size(file, "Content-Length", length.trim())?;
            if length != meta.size {
                return Err(HubError::SizeMismatch {
                    repo: self.repo.into(),
                    file: file.into(),
                    expected: meta.size,
                    download: length,
                });
            }
        }
        let bar = progress_bar(file, meta.size);
        // One byte more than declared is read, to tell a longer body from an exact one.
        let mut reader = response.into_reader().take(meta.size + 1);
        let mut buffer = vec![0; 256 << 10];
        let mut received = 0u64;
        loop {
            let n = match reader.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
                Err(e) => return Err(self.read_error(Some(file), e, "downloading")),
            };
            received += n as u64;
            if received > meta.size {
                return Err(HubError::Oversized { repo: self.repo.into(), file: file.into(), expected: meta.size });
            }
            let path = to.path().to_path_buf();
            to.file().write_all(&buffer[..n]).map_err(HubError::cache(path))?;
            bar.inc(n as u64);
        }
        bar.finish_and_clear();
        if received < meta.size {
            return Err(HubError::Truncated {
                repo: self.repo.into(),
                file: file.into(),
                expected: meta.size,
                received,
            });
        }
        Ok(())
    }

    /// `method url` with the token, following relative redirects (same host: the token goes
    /// along); an absolute redirect is returned as the answer.
    fn call_relative(&self, method: &str, url: &str, file: Option<&str>) -> Result<(ureq::Response, String), HubError> {
        let mut url = url.to_string();
        for _ in 0..=MAX_REDIRECTS {
            let response = self.call(&self.direct, method, &url, file, true)?;
            let location = match (response.status(), response.header("Location")) {
                (300..=399, Some(location)) => location.to_string(),
                _ => return Ok((response, url)),
            };
            match Url::parse(&location) {
                Ok(_) => return Ok((response, url)),
                Err(url::ParseError::RelativeUrlWithoutBase) => {
                    url = Url::parse(&url)
                        .and_then(|base| base.join(&location))
                        .map_err(|e| self.download_error(file, format!("bad redirect {location:?} from {url}: {e}")))?
                        .to_string();
                }
                Err(e) => return Err(self.download_error(file, format!("bad redirect {location:?} from {url}: {e}"))),
            }
        }
        Err(self.download_error(file, format!("more than {MAX_REDIRECTS} redirects from {url}")))
    }

    /// One request, with the token if `authorized`, and no content encoding (sizes are of the
    /// bytes as stored).
    fn call(
        &self,
        agent: &ureq::Agent,
        method: &str,
        url: &str,
        file: Option<&str>,
        authorized: bool,
    ) -> Result<ureq::Response, HubError> {
        let mut request = agent.request(method, url).set("Accept-Encoding", "identity");
        if let Some(token) = self.options.token.as_ref().filter(|_| authorized) {
            request = request.set("Authorization", &format!("Bearer {token}"));
        }
        request.call().map_err(|error| match error {
            ureq::Error::Status(status, response) => self.status_error(file, status, &response),
            ureq::Error::Transport(transport) => self.transport_error(file, transport),
        })
    }

    fn status_error(&self, file: Option<&str>, status: u16, response: &ureq::Response) -> HubError {
        let meaning = match (status, file) {
            (401 | 403, _) => "not allowed: a private or gated repository needs HF_TOKEN (with access to it)",
            (404, None) => "no such repository or revision",
            (404, Some(_)) => "no such file",
            (429, _) => "too many requests: try again later",
            (500.., _) => "the hub failed",
            _ => "refused",
        };
        let message = match response.header("X-Error-Message") {
            Some(hub) => format!("{meaning} ({})", crate::hub::error::shown(hub)),
            None => meaning.to_string(),
        };
        HubError::Status { repo: self.repo.into(), file: file.map(Into::into), status, message }
    }

    fn transport_error(&self, file: Option<&str>, transport: ureq::Transport) -> HubError {
        let timed_out = std::error::Error::source(&transport)
            .and_then(|e| e.downcast_ref::<std::io::Error>())
            .is_some_and(|e| is_timeout(e.kind()));
        match (timed_out, transport.kind()) {
            (true, ureq::ErrorKind::ConnectionFailed) => self.stalled(file, "connecting", self.options.connect_timeout),
            (true, _) => self.stalled(file, "waiting for an answer", self.options.stall_timeout),
            (false, ureq::ErrorKind::Dns | ureq::ErrorKind::ConnectionFailed) => self.download_error(
                file,
                format!("{transport} (HF_HUB_OFFLINE=1 uses the cache only, HF_ENDPOINT names another hub)"),
            ),
            // ureq's message names the URL.
            _ => self.download_error(file, transport.to_string()),
        }
    }

    fn read_error(&self, file: Option<&str>, error: std::io::Error, during: &'static str) -> HubError {
        match is_timeout(error.kind()) {
            true => self.stalled(file, during, self.options.stall_timeout),
            false => self.download_error(file, format!("reading the answer: {error}")),
        }
    }

    fn stalled(&self, file: Option<&str>, during: &'static str, timeout: Duration) -> HubError {
        HubError::Stalled { repo: self.repo.into(), file: file.map(Into::into), during, timeout }
    }

    fn download_error(&self, file: Option<&str>, message: String) -> HubError {
        let message = match file {
            Some(file) => format!("file `{file}`: {message}"),
            None => message,
        };
        HubError::Download { repo: self.repo.into(), message }
    }

    fn parse_size(&self, file: &str, header: &'static str, value: &str) -> Result<u64, HubError> {
        value.parse().map_err(|_| HubError::BadSize {
            repo: self.repo.into(),
            file: file.into(),
            header,
            value: value.into(),
        })
    }
}

/// A socket read or connect that ran out of time (`WouldBlock` is how Unix reports a read
/// timeout).
fn is_timeout(kind: std::io::ErrorKind) -> bool {
    matches!(kind, std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock)
}

/// Percent-encodes `s` for a URL path, keeping `/` where `keep_slash` (a file path; a revision
/// such as `refs/pr/1` is one path segment, as `huggingface_hub` quotes it).
fn encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => out.push(b as char),
            b'/' if keep_slash => out.push('/'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A byte progress bar for `file` on stderr (drawn only on a terminal, and only for files of a
/// megabyte or more).
fn progress_bar(file: &str, size: u64) -> ProgressBar {
    if size < PROGRESS_FROM {
        return ProgressBar::hidden();
    }
    let style = ProgressStyle::with_template("{msg} {bar:30} {bytes}/{total_bytes} {bytes_per_sec} [{eta}]")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    ProgressBar::with_draw_target(Some(size), ProgressDrawTarget::stderr())
        .with_style(style)
        .with_message(file.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_percent_encoded() {
        assert_eq!(encode("tokenizer/vocab.json", true), "tokenizer/vocab.json");
        assert_eq!(encode("a b/ü?#", true), "a%20b/%C3%BC%3F%23");
        assert_eq!(encode("refs/pr/1", false), "refs%2Fpr%2F1");
    }
}
