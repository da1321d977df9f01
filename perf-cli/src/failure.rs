//! [`Failure`]: why `perf` stopped without a verdict, and the exit status
//! each cause maps to (a broken threshold is not a failure: it is a
//! verdict, exit status 1).

use std::path::PathBuf;
use std::process::ExitCode;

use perf_runtime::bench::BenchError;

/// Exit status: the arguments were wrong (clap uses it for its own errors too).
pub(crate) const EXIT_USAGE: u8 = 2;
/// Exit status: the run could not start, or a file could not be read or written.
pub(crate) const EXIT_RUN: u8 = 3;

/// What stopped `perf`.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Failure {
    /// A setting the engine refused, or a run it could not start.
    #[error("{0}")]
    Bench(#[from] BenchError),
    /// `--json` was not JSON.
    #[error(
        "the --json payload is not valid JSON ({0}); quote it for the shell, e.g. --json '{{\"message\": \"hi\"}}'"
    )]
    Payload(serde_json::Error),
    /// A `--header` without a colon.
    #[error("bad --header `{0}`: expected \"Name: value\", e.g. -H 'authorization: Bearer …'")]
    Header(String),
    /// `-X` was not an HTTP method.
    #[error("bad -X/--method `{0}`: expected an HTTP method such as GET, POST or PUT")]
    Method(String),
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A file could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A file that is not a report `perf` wrote.
    #[error("{} is not a JSON report written by perf --out: {reason}", path.display())]
    NotAReport { path: PathBuf, reason: String },
}

impl Failure {
    /// The exit status for this failure.
    pub(crate) fn exit_code(&self) -> ExitCode {
        ExitCode::from(match self {
            Failure::Bench(BenchError::InvalidConfig { .. })
            | Failure::Payload(_)
            | Failure::Header(_)
            | Failure::Method(_) => EXIT_USAGE,
            Failure::Bench(_)
            | Failure::Read { .. }
            | Failure::Write { .. }
            | Failure::NotAReport { .. } => EXIT_RUN,
        })
    }
}
