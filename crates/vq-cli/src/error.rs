//! The two kinds of failure and their exit statuses.

use vq_pipeline::PipelineError;

/// Exit status of a usage error (clap uses the same).
pub const EXIT_USAGE: u8 = 2;
/// Exit status of every other error.
pub const EXIT_FAILURE: u8 = 1;

/// Why a run failed; printed as one line `error: …`.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The command line asks for something out of range (exit status 2).
    #[error("{0}")]
    Usage(String),
    /// Anything else: the model, the files, the device (exit status 1).
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
        self.to_string().lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ")
    }
}

impl From<PipelineError> for CliError {
    /// A rejected generation argument is a usage error, named by its flag; the rest are failures.
    fn from(error: PipelineError) -> Self {
        match error {
            PipelineError::InvalidArgument { name, message } => Self::Usage(format!("{}: {message}", flag_of(name))),
            other => Self::Failure(other.to_string()),
        }
    }
}

/// The command-line flag of a `GenerateRequest` field, as the pipeline names it.
fn flag_of(argument: &str) -> String {
    match argument {
        "num_inference_steps" => "--steps".into(),
        other => format!("--{}", other.replace('_', "-")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejected_request_arguments_name_their_flag() {
        let error = CliError::from(PipelineError::InvalidArgument {
            name: "num_inference_steps",
            message: "0 is outside 1..=100".into(),
        });
        assert_eq!((error.exit_code(), error.one_line()), (2, "--steps: 0 is outside 1..=100".to_string()));
        let error = CliError::from(PipelineError::InvalidArgument {
            name: "guidance_scale",
            message: "NaN must be a finite number ≥ 0".into(),
        });
        assert_eq!(error.one_line(), "--guidance-scale: NaN must be a finite number ≥ 0");
    }
}
