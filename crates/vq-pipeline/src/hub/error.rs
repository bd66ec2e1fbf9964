//! Why a model could not be found or downloaded. Every error names the repository, the file
//! where there is one, and the problem; values that come from the server are shown escaped and
//! shortened, so a hostile server cannot put control characters or megabytes into the message.

use std::path::PathBuf;
use std::time::Duration;

/// What kind of name was refused (see [`HubError::UnsafeName`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    /// The branch, tag or commit asked for (`HubOptions::revision`).
    Revision,
    /// A file path of the repository listing.
    FileName,
    /// A commit hash: the listing's `sha`, an `X-Repo-Commit` header or a `refs/` file.
    Commit,
    /// An `ETag` / `X-Linked-Etag` header: the name of the blob file.
    Etag,
}

impl std::fmt::Display for NameKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Revision => "revision",
            Self::FileName => "file name",
            Self::Commit => "commit hash",
            Self::Etag => "etag",
        })
    }
}

/// Why a model could not be found or downloaded.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// The argument is neither an existing folder nor a hub repository id.
    #[error("`{0}` is not a folder, and not a hub repository id of the form `owner/name`")]
    NotAModel(String),
    /// Offline mode and the repository is not (completely) in the cache.
    #[error("`{repo}` (revision `{revision}`) is not in the Hugging Face cache {cache} and HF_HUB_OFFLINE is set: {missing}")]
    NotCached {
        /// The repository id.
        repo: String,
        /// The revision asked for.
        revision: String,
        /// The cache folder searched.
        cache: PathBuf,
        /// What is missing.
        missing: String,
    },
    /// The hub could not be reached, or answered something that is not a hub's answer.
    #[error("cannot download `{repo}` from the hub: {message}")]
    Download {
        /// The repository id.
        repo: String,
        /// What went wrong (the file, the URL or the client's error).
        message: String,
    },
    /// A name that would become part of a cache path is not safe as one (e.g. `..` in a file
    /// name of the listing, a `/` in an etag, a commit that is not 40 hex digits).
    #[error("`{repo}`{}: the {kind} {} is refused: {reason}", for_file(.file), shown(.value))]
    UnsafeName {
        /// The repository id.
        repo: String,
        /// The file whose download gave the name, if any.
        file: Option<String>,
        /// Which name.
        kind: NameKind,
        /// The name as given.
        value: String,
        /// Why it is refused.
        reason: String,
    },
    /// The hub answered with an HTTP error status.
    #[error("`{repo}`{}: the hub answered HTTP {status}: {message}", for_file(.file))]
    Status {
        /// The repository id.
        repo: String,
        /// The file asked for (none for the repository listing).
        file: Option<String>,
        /// The HTTP status.
        status: u16,
        /// What the status means here, with the hub's own message where it gives one.
        message: String,
    },
    /// No connection, or no data on one, within the timeout (`HF_HUB_DOWNLOAD_TIMEOUT`).
    #[error(
        "`{repo}`{}: nothing from the hub for {:.1} s while {during} (HF_HUB_DOWNLOAD_TIMEOUT sets the limit)",
        for_file(.file), .timeout.as_secs_f64()
    )]
    Stalled {
        /// The repository id.
        repo: String,
        /// The file being fetched (none for the repository listing).
        file: Option<String>,
        /// `connecting`, `waiting for an answer` or `downloading`.
        during: &'static str,
        /// The timeout that ran out.
        timeout: Duration,
    },
    /// The hub's answer for a file lacks a header the cache needs.
    #[error("`{repo}`, file `{file}`: the hub's answer has no {header} header")]
    MissingHeader {
        /// The repository id.
        repo: String,
        /// The file.
        file: String,
        /// The header (`ETag`, or `X-Linked-Size` / `Content-Length` for the size).
        header: &'static str,
    },
    /// A declared size is not a number of bytes.
    #[error("`{repo}`, file `{file}`: the size {} declared in {header} is not a number of bytes", shown(.value))]
    BadSize {
        /// The repository id.
        repo: String,
        /// The file.
        file: String,
        /// The header.
        header: &'static str,
        /// Its value.
        value: String,
    },
    /// A file is larger than [`HubOptions::max_file_size`](crate::hub::HubOptions::max_file_size).
    #[error(
        "`{repo}`, file `{file}`: {size} bytes is more than the limit of {limit} bytes (HubOptions::max_file_size)"
    )]
    TooLarge {
        /// The repository id.
        repo: String,
        /// The file.
        file: String,
        /// The size the hub declared.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The download declares another size than the file's metadata.
    #[error("`{repo}`, file `{file}`: the download declares {download} bytes, the file's metadata {expected}")]
    SizeMismatch {
        /// The repository id.
        repo: String,
        /// The file.
        file: String,
        /// The size from the metadata request.
        expected: u64,
        /// The download's `Content-Length`.
        download: u64,
    },
    /// The connection ended before the declared size was received.
    #[error("`{repo}`, file `{file}`: the download ended after {received} of {expected} bytes")]
    Truncated {
        /// The repository id.
        repo: String,
        /// The file.
        file: String,
        /// The declared size.
        expected: u64,
        /// The bytes received.
        received: u64,
    },
    /// The server sent more bytes than it declared.
    #[error("`{repo}`, file `{file}`: the server sent more than the {expected} bytes it declared")]
    Oversized {
        /// The repository id.
        repo: String,
        /// The file.
        file: String,
        /// The declared size.
        expected: u64,
    },
    /// The hub answered for another commit than the one asked for.
    #[error("`{repo}`, file `{file}`: asked for commit {expected}, the hub answered for {}", shown(.answered))]
    CommitMismatch {
        /// The repository id.
        repo: String,
        /// The file.
        file: String,
        /// The commit asked for.
        expected: String,
        /// The commit of the answer (`X-Repo-Commit`).
        answered: String,
    },
    /// A file or folder of the cache could not be written or read.
    #[error("Hugging Face cache: {path}: {source}")]
    Cache {
        /// The path.
        path: PathBuf,
        /// The operating-system error.
        source: std::io::Error,
    },
}

impl HubError {
    pub(crate) fn cache(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Cache { path, source }
    }
}

/// `, file `name`` where there is a file.
fn for_file(file: &Option<String>) -> String {
    file.as_ref().map(|f| format!(", file {}", shown(f))).unwrap_or_default()
}

/// A value from the server, for an error message: escaped, at most 100 characters.
pub(crate) fn shown(value: &str) -> String {
    const MAX: usize = 100;
    match value.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{:?}…", &value[..cut]),
        None => format!("{value:?}"),
    }
}
