//! How a command reports that it failed: the sentence to print and the
//! process's exit status, decided where the command knows them.

use std::fmt;
use std::process::ExitCode;

/// A command failed: `message` says why, `status` is the exit status.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    message: String,
    status: u8,
}

impl Failure {
    /// `error`'s sentence (its `Display`, without its sources: the command
    /// errors already say everything in one line) with exit status `status`.
    pub fn new(error: &impl fmt::Display, status: u8) -> Self {
        Self {
            message: error.to_string(),
            status,
        }
    }
}

/// The exit status for an error a command returned: a [`Failure`]'s own,
/// else 1.
pub fn exit_status(error: &anyhow::Error) -> ExitCode {
    match error.downcast_ref::<Failure>() {
        Some(failure) => ExitCode::from(failure.status),
        None => ExitCode::FAILURE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_keeps_its_status_and_sentence() {
        let err = anyhow::Error::from(Failure::new(&"the helper is not running", 2));
        assert_eq!(format!("{err:#}"), "the helper is not running");
        assert_eq!(exit_status(&err), ExitCode::from(2));
        let other = anyhow::anyhow!("could not open the window");
        assert_eq!(exit_status(&other), ExitCode::FAILURE);
    }
}
