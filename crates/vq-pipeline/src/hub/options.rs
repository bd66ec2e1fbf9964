//! Where and how to look for hub repositories, from the environment as `huggingface_hub` reads it.

use std::path::PathBuf;
use std::time::Duration;

/// The timeout without `HF_HUB_DOWNLOAD_TIMEOUT` (`huggingface_hub`'s default).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest file downloaded without a change of [`HubOptions::max_file_size`]: 16 GiB, so that
/// a server declaring terabytes is stopped before the download starts; raise it for larger files.
pub const DEFAULT_MAX_FILE_SIZE: u64 = 16 << 30;

/// Where and how to look for hub repositories.
#[derive(Debug, Clone, PartialEq)]
pub struct HubOptions {
    /// The cache folder (`…/huggingface/hub`).
    pub cache_dir: PathBuf,
    /// Never use the network.
    pub offline: bool,
    /// Replacement for `https://huggingface.co`.
    pub endpoint: Option<String>,
    /// Access token.
    pub token: Option<String>,
    /// Branch, tag or commit.
    pub revision: String,
    /// The longest wait for a connection.
    pub connect_timeout: Duration,
    /// The longest wait for the next bytes of an answer: a download that stalls this long fails;
    /// a slow one that keeps moving does not.
    pub stall_timeout: Duration,
    /// The largest file accepted, by its declared size (checked before the download starts).
    pub max_file_size: u64,
}

impl HubOptions {
    /// Options from the process environment (see the [module docs](crate::hub)).
    pub fn from_env() -> Self {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// Options from any variable lookup (the environment in [`HubOptions::from_env`]).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Self {
        let home = var("HF_HOME").map(PathBuf::from).unwrap_or_else(|| {
            let user_home = var("HOME").map(PathBuf::from).unwrap_or_default();
            user_home.join(".cache").join("huggingface")
        });
        let cache_dir = var("HF_HUB_CACHE").map(PathBuf::from).unwrap_or_else(|| home.join("hub"));
        let offline = var("HF_HUB_OFFLINE")
            .is_some_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on"));
        let token = var("HF_TOKEN").or_else(|| read_small(&home.join("token")));
        let token = token.map(|t| t.trim().to_string()).filter(|t| !t.is_empty());
        // Seconds, as `huggingface_hub` reads it; a value that is not a positive number is ignored.
        let timeout = var("HF_HUB_DOWNLOAD_TIMEOUT")
            .and_then(|v| v.trim().parse::<f64>().ok())
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
            .filter(|d| !d.is_zero())
            .unwrap_or(DEFAULT_TIMEOUT);
        Self {
            cache_dir,
            offline,
            endpoint: var("HF_ENDPOINT"),
            token,
            revision: "main".into(),
            connect_timeout: timeout,
            stall_timeout: timeout,
            max_file_size: DEFAULT_MAX_FILE_SIZE,
        }
    }

    /// The same options for another revision.
    pub fn with_revision(mut self, revision: impl Into<String>) -> Self {
        self.revision = revision.into();
        self
    }
}

/// A token file's text; a file that is not a small regular file (a FIFO, a device, megabytes) is
/// no token.
fn read_small(path: &std::path::Path) -> Option<String> {
    use std::io::Read;
    const MAX: u64 = 64 << 10;
    let metadata = std::fs::metadata(path).ok()?;
    if !metadata.is_file() || metadata.len() > MAX {
        return None;
    }
    let mut text = String::new();
    std::fs::File::open(path).ok()?.take(MAX).read_to_string(&mut text).ok()?;
    Some(text)
}
