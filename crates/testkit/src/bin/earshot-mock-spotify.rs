//! `earshot-mock-spotify`: serve the fixture group's listening as the Spotify Web API and accounts
//! service on loopback, for the demo and the Airflow end-to-end test.
//!
//! Prints the base URL on stdout's first line, then serves until SIGINT/SIGTERM (or, with
//! `--exit-on-stdin-close`, until its parent closes stdin).
//! `--now <RFC 3339>` sets the mock clock (default: just after the last play); `--full-shapes` serves
//! pre-2026 shapes. `GET /mock/clock?set=<RFC 3339>` moves the clock while it runs.
//! The app it registers: client id `earshot0test0client0id0000000000`, secret
//! `earshot0test0client0secret000000` (test values).

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use earshot_testkit::fixtures::Listening;
use earshot_testkit::spotify::{MockOptions, MockSpotify, Shape};
use tokio::io::AsyncReadExt as _;

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("earshot-mock-spotify: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<()> {
    let mut options = MockOptions::default();
    let mut now = None;
    let mut fixtures = earshot_testkit::fixtures::fixtures_dir();
    let mut watch_stdin = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--full-shapes" => options.shape = Shape::Full,
            "--exit-on-stdin-close" => watch_stdin = true,
            "--now" => {
                let text = args.next().context("`--now` needs an RFC 3339 time")?;
                now = Some(
                    chrono::DateTime::parse_from_rfc3339(&text)
                        .with_context(|| format!("`--now {text}`"))?,
                );
            }
            "--fixtures" => fixtures = args.next().context("`--fixtures` needs a folder")?.into(),
            other => bail!(
                "unknown argument `{other}` (usage: earshot-mock-spotify [--now T] [--full-shapes] [--fixtures DIR] [--exit-on-stdin-close])"
            ),
        }
    }
    let listening = Listening::load(&fixtures)?;
    let mock = MockSpotify::start(&listening, options).await?;
    if let Some(now) = now {
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
