//! The demo's hourly fetches in one process (dev only, never shipped): `scripts/demo.sh` replays weeks
//! of Airflow's hourly `data-fetcher fetch --what recently-played` against the mock Spotify. Each hour
//! the mock's clock is set (`GET /mock/clock?set=`, the mock's own control endpoint), the fetcher's
//! clock reads the same hour, and [`Fetcher::run`] runs as one `data-fetcher fetch` would: the same
//! stores, tokens, cursors and gap reports. What it saves is the process start-up of each hour.
//!
//! `cargo run --example hourly_replay -- FROM TO` (RFC 3339 hours), with the environment
//! `data-fetcher` reads (`SPOTIFY_API_BASE` naming the mock). Stops at the first hour that does not
//! end in success, as the demo's `set -e` loop of processes did.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use chrono::{DateTime, Utc};
use clap::Parser as _;
use data_fetcher::Cli;
use data_fetcher::fetch::What;
use earshot_core::cli::Outcome;
use earshot_core::env;
use earshot_state::clock::Clock;

/// A clock this replay sets to each hour.
#[derive(Default)]
struct ReplayClock(Mutex<DateTime<Utc>>);

impl Clock for ReplayClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().expect("clock lock")
    }

    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(tokio::time::sleep(duration))
    }
}

fn hour(text: &str) -> Result<DateTime<Utc>> {
    Ok(DateTime::parse_from_rfc3339(text)
        .with_context(|| format!("`{text}` is not an RFC 3339 time"))?
        .with_timezone(&Utc))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    earshot_core::cli::init_logging();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [from, to] = args.as_slice() else {
        bail!("usage: hourly_replay FROM TO (RFC 3339 hours)");
    };
    let (mut at, end) = (hour(from)?, hour(to)?);
    let mock = std::env::var(env::SPOTIFY_API_BASE)
        .with_context(|| format!("`{}` names the mock Spotify", env::SPOTIFY_API_BASE))?;
    let cli = Cli::try_parse_from([
        "data-fetcher",
        "fetch",
        "--what",
        "recently-played",
        "--concurrency",
        "5",
    ])?;
    let clock = Arc::new(ReplayClock::default());
    let fetcher = data_fetcher::fetcher_for(&cli, clock.clone()).await?;
    let http = reqwest::Client::new();
    let mut runs = 0;
    while at <= end {
        let stamp = at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        http.get(format!("{mock}/mock/clock"))
            .query(&[("set", &stamp)])
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .with_context(|| format!("setting the mock's clock to {stamp}"))?;
        *clock.0.lock().expect("clock lock") = at;
        let outcome = fetcher.run(What::RecentlyPlayed, &[]).await?.outcome();
        if outcome != Outcome::Success {
            bail!("the fetch of {stamp} ended {outcome:?}");
        }
        at += chrono::Duration::hours(1);
        runs += 1;
    }
    println!("  {runs} hourly runs from {from} to {to}");
    Ok(())
}
