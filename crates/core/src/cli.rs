//! What every Earshot binary does the same way around its work: exit codes and logging.
//!
//! Exit codes (documented in each binary's `--help`): 0 success, 1 failure, 2 usage (clap), 3 partial
//! success (some members or files failed, the rest is done). Never 99: Airflow's BashOperator reads 99
//! as "skipped". Logs go to stderr through tracing, human-readable on a terminal and JSON otherwise
//! (Airflow task logs, Cloud Logging); stdout is reserved for data.

use std::io::IsTerminal;
use std::process::ExitCode;

use tracing_subscriber::EnvFilter;

use crate::env;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything done (exit 0).
    Success,
    /// Some members or files failed; the rest is done and a re-run finishes the job (exit 3).
    Partial,
    /// Nothing useful was done (exit 1).
    Failure,
}

impl Outcome {
    /// The outcome of a run that did `ok` items and failed `failed`.
    pub fn from_counts(ok: usize, failed: usize) -> Outcome {
        match (ok, failed) {
            (_, 0) => Outcome::Success,
            (0, _) => Outcome::Failure,
            _ => Outcome::Partial,
        }
    }

    /// The process exit code.
    pub fn exit_code(self) -> ExitCode {
        match self {
            Outcome::Success => ExitCode::SUCCESS,
            Outcome::Failure => ExitCode::from(1),
            Outcome::Partial => ExitCode::from(3),
        }
    }
}

/// The `--help` paragraph on exit codes, shared by every binary.
pub const EXIT_CODES_HELP: &str = "Exit codes: 0 success; 1 failure; 2 usage error; \
3 partial success (some files or members failed, the rest is done: re-run to finish).";

/// Send tracing to stderr: human-readable on a terminal, JSON lines otherwise. `EARSHOT_LOG` filters
/// (default `info`).
pub fn init_logging() {
    let filter =
        EnvFilter::try_from_env(env::EARSHOT_LOG).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::io::stderr().is_terminal() {
        let _ = builder.with_target(false).try_init();
    } else {
        let _ = builder.json().with_current_span(false).try_init();
    }
}

/// Print an error with its whole cause chain to stderr and return exit code 1.
pub fn report_error(program: &str, error: &anyhow::Error) -> ExitCode {
    eprintln!("{program}: error: {error:#}");
    ExitCode::from(1)
}
