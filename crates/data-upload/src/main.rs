//! `data-upload` binary: parse flags, set up logging, run, map the outcome to an exit code.

use std::process::ExitCode;

use clap::Parser;
use data_upload::{Cli, run};

#[tokio::main]
async fn main() -> ExitCode {
    earshot_core::cli::init_logging();
    let cli = Cli::parse();
    // A scheduled run (EARSHOT_STEP set by the DAG) is recorded for the operator's metrics.
    let files = cli.store.files.clone();
    earshot_core::step_runs::exit_code_of("data-upload", &files, run(cli)).await
}
