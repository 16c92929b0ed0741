//! `earshot-fixtures`: write the fixture group (default) or a synthetic set for benchmarks.
//!
//! ```text
//! earshot-fixtures [OUT_DIR]                                   # the committed set, default fixtures/
//! earshot-fixtures OUT_DIR --members 50 --days 30 --plays-per-day 40   # a synthetic set
//! earshot-fixtures OUT_DIR --raw --members 100 --days 200 --plays-per-day 50
//! ```
//!
//! `--raw` writes what a fetcher would have stored instead (`OUT_DIR/group.toml` and the raw pages
//! under `OUT_DIR/storage/raw/`), one member at a time, for benchmark sets of any size; it prints
//! `{"members":…,"plays":…,"pages":…,"bytes":…}` on stdout.

use std::path::PathBuf;
use std::process::ExitCode;

use earshot_testkit::fixtures::{GeneratorConfig, fixtures_dir, generate, write_raw_set};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut out: Option<PathBuf> = None;
    let mut synthetic = (None, None, None);
    let mut raw = false;
    while let Some(arg) = args.next() {
        let mut number = |name: &str| -> Option<u32> {
            let value = args.next().and_then(|v| v.parse().ok());
            if value.is_none() {
                eprintln!("earshot-fixtures: `{name}` needs a positive number");
            }
            value
        };
        match arg.as_str() {
            "--members" => synthetic.0 = Some(number("--members")),
            "--days" => synthetic.1 = Some(number("--days")),
            "--plays-per-day" => synthetic.2 = Some(number("--plays-per-day")),
            "--raw" => raw = true,
            "-h" | "--help" => {
                eprintln!(
                    "usage: earshot-fixtures [OUT_DIR] [--raw] [--members N --days N --plays-per-day N]"
                );
                return ExitCode::SUCCESS;
            }
            other if !other.starts_with('-') && out.is_none() => out = Some(PathBuf::from(other)),
            other => {
                eprintln!("earshot-fixtures: unknown argument `{other}`");
                return ExitCode::from(2);
            }
        }
    }
    let config = match synthetic {
        (None, None, None) => GeneratorConfig::fixture_group(),
        (Some(Some(m)), Some(Some(d)), Some(Some(p))) => {
            GeneratorConfig::synthetic(m as usize, d, p)
        }
        _ => {
            eprintln!(
                "earshot-fixtures: give all of --members, --days and --plays-per-day, or none"
            );
            return ExitCode::from(2);
        }
    };
    if raw {
        let Some(out) = out else {
            eprintln!("earshot-fixtures: `--raw` needs an OUT_DIR");
            return ExitCode::from(2);
        };
        return match write_raw_set(&config, &out) {
            Ok(summary) => {
                println!(
                    "{{\"members\":{},\"plays\":{},\"pages\":{},\"bytes\":{}}}",
                    summary.members, summary.plays, summary.pages, summary.bytes
                );
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("earshot-fixtures: {err:#}");
                ExitCode::FAILURE
            }
        };
    }
    let out = out.unwrap_or_else(fixtures_dir);
    match generate(&config).write_to(&out) {
        Ok(()) => {
            eprintln!("earshot-fixtures: wrote {}", out.display());
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("earshot-fixtures: {err:#}");
            ExitCode::FAILURE
        }
    }
}
