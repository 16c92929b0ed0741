//! `earshot-fixtures`: write the fixture group (default) or a synthetic set for benchmarks.
//!
//! ```text
//! earshot-fixtures [OUT_DIR]                                   # the committed set, default fixtures/
//! earshot-fixtures OUT_DIR --members 50 --days 30 --plays-per-day 40   # a synthetic set
//! earshot-fixtures OUT_DIR --raw --members 100 --days 200 --plays-per-day 50
//! earshot-fixtures OUT_DIR --raw --members 20 --days 200 --plays-per-day 50 --market-heavy
//! earshot-fixtures OUT_DIR --history-plays 150000   # one member's ten-year streaming-history export
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;
use earshot_testkit::fixtures::{
    GeneratorConfig, HistoryShape, fixtures_dir, generate, streaming_history, write_raw_set,
};

/// Write the fixture group (default) or a synthetic listening set for benchmarks.
///
/// With `--raw`, writes what a fetcher would have stored instead (`OUT_DIR/group.toml` and the raw
/// pages under `OUT_DIR/storage/raw/`), one member at a time, for sets of any size, and prints
/// `{"members":…,"plays":…,"pages":…,"bytes":…}` on stdout.
#[derive(Debug, Parser)]
#[command(name = "earshot-fixtures")]
struct Cli {
    /// Where to write. Default: the committed fixtures/ folder (not with `--raw`).
    out: Option<PathBuf>,
    /// Write raw pages as a fetcher would have stored them.
    #[arg(long, requires = "out")]
    raw: bool,
    /// Members of a synthetic set (with `--days` and `--plays-per-day`).
    #[arg(long, requires_all = ["days", "plays_per_day"], value_parser = clap::value_parser!(u32).range(1..))]
    members: Option<u32>,
    /// Days of listening of a synthetic set.
    #[arg(long, requires_all = ["members", "plays_per_day"], value_parser = clap::value_parser!(u32).range(1..))]
    days: Option<u32>,
    /// Plays per member and day of a synthetic set.
    #[arg(long, requires_all = ["members", "days"], value_parser = clap::value_parser!(u32).range(1..))]
    plays_per_day: Option<u32>,
    /// Every track and album of a synthetic set lists all 185 markets, as Spotify's pages do for apps
    /// outside development mode.
    #[arg(long, requires = "members")]
    market_heavy: bool,
    /// Write the first fixture member's Extended Streaming History export of about this many plays
    /// over ten years (about ten files, with the real export's quirks) into `OUT_DIR/export/`, and
    /// the fixture group's config as `OUT_DIR/group.toml`; prints `{"member":…,"files":…,"entries":…}`.
    #[arg(long, requires = "out", conflicts_with_all = ["raw", "members"])]
    history_plays: Option<u64>,
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("earshot-fixtures: {err:#}");
            ExitCode::FAILURE
        }
    }
}

// The summary of a raw set is this command's data: it goes to stdout.
#[allow(clippy::print_stdout)]
fn run(cli: Cli) -> Result<()> {
    let config = match (cli.members, cli.days, cli.plays_per_day) {
        (Some(members), Some(days), Some(per_day)) => GeneratorConfig {
            market_heavy: cli.market_heavy,
            ..GeneratorConfig::synthetic(members as usize, days, per_day)
        },
        _ => GeneratorConfig::fixture_group(),
    };
    let out = cli.out.unwrap_or_else(fixtures_dir);
    if let Some(plays) = cli.history_plays {
        let listening = generate(&GeneratorConfig::fixture_group());
        let member = &listening.members[0];
        let days = 3_650;
        let shape = HistoryShape {
            seed: 150_000,
            days_before: days,
            plays_per_day: u32::try_from(plays.div_ceil(u64::from(days))).unwrap_or(u32::MAX),
            per_file: usize::try_from(plays / 10).unwrap_or(usize::MAX).max(1),
            overlap_days: 4,
            quirks: true,
        };
        let export = out.join("export");
        std::fs::create_dir_all(&export)?;
        let (mut files, mut entries) = (0, 0);
        for (name, file) in streaming_history(member, 0, &shape) {
            entries += file.as_array().map_or(0, Vec::len);
            std::fs::write(export.join(name), serde_json::to_vec(&file)?)?;
            files += 1;
        }
        std::fs::write(out.join("group.toml"), listening.group_toml())?;
        println!(
            "{{\"member\":\"{}\",\"files\":{files},\"entries\":{entries}}}",
            member.id()
        );
    } else if cli.raw {
        let summary = write_raw_set(&config, &out)?;
        println!(
            "{{\"members\":{},\"plays\":{},\"pages\":{},\"bytes\":{}}}",
            summary.members, summary.plays, summary.pages, summary.bytes
        );
    } else if cli.members.is_none() {
        generate(&config).write_fixture_to(&out)?;
        eprintln!("earshot-fixtures: wrote {}", out.display());
    } else {
        generate(&config).write_to(&out)?;
        eprintln!("earshot-fixtures: wrote {}", out.display());
    }
    Ok(())
}
