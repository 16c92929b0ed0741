//! `recap` binary: parse flags, set up logging, run, map the outcome to an exit code.

use std::process::ExitCode;

use clap::Parser;
use recap::{Cli, run};

#[tokio::main]
async fn main() -> ExitCode {
    earshot_core::cli::init_logging();
    match run(Cli::parse()).await {
        Ok(outcome) => outcome.exit_code(),
        Err(err) => earshot_core::cli::report_error("recap", &err),
    }
}
