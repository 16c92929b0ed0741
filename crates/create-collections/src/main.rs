//! `create-collections` binary: parse flags, set up logging, run, map the outcome to an exit code.

use std::process::ExitCode;

use clap::Parser;
use create_collections::{Cli, run};

#[tokio::main]
async fn main() -> ExitCode {
    earshot_core::cli::init_logging();
    let cli = Cli::parse();
    // A scheduled run (EARSHOT_STEP set by the DAG) is recorded for the operator's metrics.
    let clock = earshot_core::step_runs::StepClock::start(&cli.store.files);
    let result = run(cli).await;
    clock.finish(&result).await;
    match result {
        Ok(outcome) => outcome.exit_code(),
        Err(err) => earshot_core::cli::report_error("create-collections", &err),
    }
}
