//! `earshot-mock-spotify`: serve the fixture group's listening as the Spotify Web API and accounts
//! service on loopback, for the demo and the Airflow end-to-end test.
//!
//! `--help` lists the flags. The app it registers: client id `earshot0test0client0id0000000000`, secret
//! `earshot0test0client0secret000000` (test values).

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;
use earshot_testkit::fixtures::Listening;
use earshot_testkit::spotify::{MockOptions, MockSpotify, Shape};
use tokio::io::AsyncReadExt as _;

/// Serve the fixture group's listening as the Spotify Web API and accounts service on loopback.
///
/// Prints the base URL on stdout's first line, then serves until SIGINT or SIGTERM.
/// `GET /mock/clock?set=<RFC 3339>` moves the mock clock while it runs.
#[derive(Debug, Parser)]
#[command(name = "earshot-mock-spotify")]
struct Cli {
    /// The mock clock, RFC 3339. Default: just after the last play.
    #[arg(long)]
    now: Option<chrono::DateTime<chrono::FixedOffset>>,
    /// Serve pre-2026 response shapes (popularity, markets, email…).
    #[arg(long)]
    full_shapes: bool,
    /// The fixture folder to serve. Default: the committed fixtures/.
    #[arg(long)]
    fixtures: Option<PathBuf>,
    /// Also stop when the parent closes stdin (or dies).
    #[arg(long)]
    exit_on_stdin_close: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("earshot-mock-spotify: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    let mut options = MockOptions::default();
    if cli.full_shapes {
        options.shape = Shape::Full;
    }
    let watch_stdin = cli.exit_on_stdin_close;
    let fixtures = cli
        .fixtures
        .unwrap_or_else(earshot_testkit::fixtures::fixtures_dir);
    let listening = Listening::load(&fixtures)?;
    let mock = MockSpotify::start(&listening, options).await?;
    if let Some(now) = cli.now {
        mock.set_now(now.with_timezone(&chrono::Utc));
    }
    let mut stdout = std::io::stdout();
    writeln!(stdout, "{}", mock.base_url())?;
    stdout.flush()?;
    eprintln!(
        "earshot-mock-spotify: serving {} members at {}",
        listening.members.len(),
        mock.base_url()
    );
    let stdin_closed = async {
        if !watch_stdin {
            return std::future::pending().await;
        }
        let mut stdin = tokio::io::stdin();
        let mut sink = [0u8; 256];
        while matches!(stdin.read(&mut sink).await, Ok(n) if n > 0) {}
    };
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        () = stdin_closed => {},
        _ = tokio::signal::ctrl_c() => {},
        _ = terminate.recv() => {},
    }
    Ok(())
}
