//! `analytics` binary: parse flags, set up logging, run, map the outcome to an exit code.

use std::process::ExitCode;

use analytics::cli::{Cli, run};
use clap::Parser;

/// jemalloc, not glibc's malloc: polars allocates and frees whole columns' buffers in every plan, and
/// glibc keeps much of what is freed (at 10M plays a peak of 1.3-1.6 GB against 1.0 GB here). Its
/// settings are compiled in (`.cargo/config.toml`); BENCHMARKS.md (issue #24) has the measurements.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> ExitCode {
    earshot_core::cli::init_logging();
    let cli = Cli::parse();
    // A scheduled run (EARSHOT_STEP set by the DAG) is recorded for the operator's metrics.
    let files = cli.store.files.clone();
    earshot_core::step_runs::exit_code_of("analytics", &files, run(cli)).await
}
