//! The two kinds of failure and their exit statuses.

use vq_train::TrainError;

/// Exit status of a usage error (clap uses the same).
pub const EXIT_USAGE: u8 = 2;
/// Exit status of every other error.
pub const EXIT_FAILURE: u8 = 1;

/// Why a command failed; printed as one line `error: …`.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The command line asks for something this build or these flags cannot do (exit status 2).
    #[error("{0}")]
    Usage(String),
    /// Anything else: the files, the model, the device, a diverging loss (exit status 1).
    #[error("{0}")]
    Failure(String),
}

impl CliError {
    /// The process exit status.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Usage(_) => EXIT_USAGE,
            Self::Failure(_) => EXIT_FAILURE,
        }
    }

    /// The message on one line (nested errors may carry line breaks).
    pub fn one_line(&self) -> String {
        one_line(&self.to_string())
    }
}

impl From<TrainError> for CliError {
    fn from(error: TrainError) -> Self {
        Self::Failure(error.to_string())
    }
}

/// `text` with its lines trimmed and joined by spaces, empty ones dropped.
pub fn one_line(text: &str) -> String {
    text.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_has_its_exit_status_and_one_line() {
        let usage = CliError::Usage("--backend cuda is not compiled into this build".into());
        assert_eq!((usage.exit_code(), usage.one_line()), (2, "--backend cuda is not compiled into this build".into()));
        let failure = CliError::from(TrainError::io(std::path::Path::new("runs/x"), "denied\n  (os error 13)\n"));
        assert_eq!((failure.exit_code(), failure.one_line()), (1, "runs/x: denied (os error 13)".into()));
    }
}
