//! The `analytics` command line: its flags, and a run from the snapshot to the stored results
//! (`report.json` and the charts in storage, the rows in MongoDB `analytics_*`).

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::{Result, bail};
use bytes::Bytes;
use chrono::{DateTime, NaiveDate, Utc};
use clap::{Parser, ValueEnum};
use earshot_core::cli::{EXIT_CODES_HELP, Outcome, StoreArgs};
use earshot_core::erasure::ErasureGuard;
use earshot_core::period::local_midnight;
use earshot_core::{Storage, env, layout};
use tracing::info;

use crate::snapshot::Filters;
use crate::{EngineChoice, RunOutput, analyse_with, assemble, charts, save, spark};

/// Which engine computes the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Engine {
    /// polars on this machine (embedded).
    Polars,
    /// Spark through `--spark-submit` (local mode, YARN, Dataproc): the same SQL, plus ALS.
    Spark,
}

/// Answer the group's questions from the newest complete Parquet snapshot.
///
/// Reads `exports/…` under `--storage` (written by `gcs-export`), computes every metric, stores the
/// results in MongoDB `analytics_*` collections and `reports/<run>/report.json`, and prints a summary.
/// `--engine spark` runs the same SQL on Spark (local mode, YARN or Dataproc) and adds ALS
/// recommendations; the rest of the run is the same.
#[derive(Debug, Parser)]
#[command(name = "analytics", version, after_help = EXIT_CODES_HELP)]
pub struct Cli {
    /// Engine.
    #[arg(long, value_enum, default_value_t = Engine::Polars)]
    pub engine: Engine,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Snapshot run id to read. Default: the newest complete one.
    #[arg(long)]
    pub snapshot: Option<String>,
    /// Run id the results are stored under. Default: the snapshot id (plus the filters).
    #[arg(long)]
    pub run: Option<String>,
    /// A named period in the group's time zone: a year (`2024`), a month (`2024-10`) or an ISO week
    /// (`2024-W44`). Its run is kept (never pruned) and is the dashboard's recap of that period.
    #[arg(long, conflicts_with_all = ["from", "to"])]
    pub period: Option<earshot_core::period::Period>,
    /// Only plays from this day on (YYYY-MM-DD, group time zone), or an RFC 3339 time.
    #[arg(long)]
    pub from: Option<String>,
    /// Only plays before this day (YYYY-MM-DD, exclusive, group time zone), or an RFC 3339 time.
    #[arg(long)]
    pub to: Option<String>,
    /// Only these members (Spotify ids, comma-separated): a subset of the group the config names.
    #[arg(long, value_delimiter = ',')]
    pub members: Vec<String>,
    /// The Spark submit command (split on spaces), e.g. `spark-submit --master local[2]` or
    /// `gcloud dataproc jobs submit pyspark --cluster=earshot --region=europe-west1`.
    #[arg(long, env = env::EARSHOT_SPARK_SUBMIT, default_value = "spark-submit --master local[2]")]
    pub spark_submit: String,
    /// The PySpark job file. Default: `crates/analytics/spark/earshot_job.py` of this build's sources.
    #[arg(long)]
    pub spark_job: Option<PathBuf>,
    /// The metric SQL folder the job reads (a gs:// URL on Dataproc). Default: `crates/metrics/sql`.
    #[arg(long)]
    pub spark_sql: Option<String>,
    /// Do not store results in MongoDB (report.json and the summary only).
    #[arg(long)]
    pub skip_mongodb: bool,
    /// Scheduled runs (no `--from`, `--to` or `--members`) kept in `analytics_*`: older ones are removed
    /// after this run is stored. Runs asked for a period or group are always kept.
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..))]
    pub keep_runs: u32,
}

/// `YYYY-MM-DD` (midnight in `zone`) or an RFC 3339 time.
fn parse_bound(flag: &str, text: &str, zone: chrono_tz::Tz) -> Result<DateTime<Utc>> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&Utc));
    }
    let day = NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| anyhow::anyhow!("`{flag} {text}`: expected YYYY-MM-DD or an RFC 3339 time"))?;
    match local_midnight(day, zone) {
        Some(at) => Ok(at),
        None => bail!("`{flag} {text}`: midnight does not exist in {zone}"),
    }
}

/// Run the command line.
pub async fn run(cli: Cli) -> Result<Outcome> {
    let scoped = cli.store.scoped()?;
    let group = &scoped.group;
    let filters = cli.filters(group.zone().map_err(anyhow::Error::msg)?)?;
    let storage = scoped.storage().await?;
    let guard = ErasureGuard::begin(&storage, "analytics").await?;
    info!(snapshot = ?cli.snapshot, "Analytics started.");
    let engine = cli.engine_choice();
    let analysed = analyse_with(
        &storage,
        cli.snapshot.as_deref(),
        &filters,
        group,
        cli.run.as_deref(),
        &engine,
    )
    .await;
    let output = match analysed {
        Ok(output) => output,
        // An erase removes the snapshot being read: say so rather than which file went missing.
        Err(err) => match guard.check(false).await {
            Err(erased) => {
                if let Some(run) = &cli.run {
                    withdraw(&storage, None, run).await?;
                }
                tracing::warn!(error = %format!("{err:#}"), "The analysis failed while a member was erased.");
                return Err(erased.into());
            }
            Ok(()) => return Err(err),
        },
    };
    // An erase during the run: nothing of it may be stored (Spark's outputs under the run's report
    // folder included).
    if let Err(err) = guard.check(false).await {
        withdraw(&storage, None, &output.run).await?;
        return Err(err.into());
    }
    let db = if cli.skip_mongodb {
        None
    } else {
        Some(scoped.database().await?)
    };
    store_run(&cli, &storage, db.as_ref(), &filters, &output).await?;
    // An erase that started while this run stored: what it stored goes, the member with it.
    if let Err(err) = guard.check(true).await {
        withdraw(&storage, db.as_ref(), &output.run).await?;
        return Err(err.into());
    }
    if let Some(db) = &db {
        let pruned = earshot_metrics::runs::prune(db, cli.keep_runs as usize).await?;
        if !pruned.is_empty() {
            info!(runs = ?pruned, kept = cli.keep_runs, "Removed old scheduled runs from analytics_*.");
        }
    }
    let key = layout::report_key(&output.run, layout::REPORT_JSON);
    info!(run = %output.run, report = %storage.location(&key), "Analytics done.");
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(assemble::summary(&output.report).as_bytes())?;
    writeln!(stdout, "\nReport: {}", storage.location(&key))?;
    Ok(Outcome::Success)
}

impl Cli {
    /// The plays the flags pick: a named period, or `--from`/`--to`, and `--members`.
    fn filters(&self, zone: chrono_tz::Tz) -> Result<Filters> {
        let (from, to) = match self.period {
            Some(period) => {
                let bounds = Filters::for_period(period, zone)?;
                (bounds.from, bounds.to)
            }
            None => (
                self.from
                    .as_deref()
                    .map(|t| parse_bound("--from", t, zone))
                    .transpose()?,
                self.to
                    .as_deref()
                    .map(|t| parse_bound("--to", t, zone))
                    .transpose()?,
            ),
        };
        Ok(Filters {
            from,
            to,
            members: self.members.clone(),
            ..Filters::default()
        })
    }

    /// The engine the flags ask for, with its options.
    fn engine_choice(&self) -> EngineChoice {
        match self.engine {
            Engine::Polars => EngineChoice::Polars,
            Engine::Spark => {
                let mut options = spark::SparkOptions::from_sources(&self.spark_submit);
                if let Some(job) = &self.spark_job {
                    options.job = job.clone();
                }
                if let Some(sql) = &self.spark_sql {
                    options.sql = sql.clone();
                }
                EngineChoice::Spark(options)
            }
        }
    }
}

/// Remove a run's report folder and, with a database, its rows and listing.
async fn withdraw(storage: &Storage, db: Option<&mongodb::Database>, run: &str) -> Result<()> {
    storage.delete_prefix(&layout::report_prefix(run)).await?;
    if let Some(db) = db {
        earshot_metrics::runs::remove_runs(db, &[run.to_string()]).await?;
    }
    Ok(())
}

/// Store a run: `report.json` and the charts under `reports/<run>/`, then (with a database) its rows
/// in `analytics_*` and its listing in `analytics_runs`.
async fn store_run(
    cli: &Cli,
    storage: &Storage,
    db: Option<&mongodb::Database>,
    filters: &Filters,
    output: &RunOutput,
) -> Result<()> {
    let key = layout::report_key(&output.run, layout::REPORT_JSON);
    storage
        .write(
            &key,
            Bytes::from(serde_json::to_vec_pretty(&output.report)?),
        )
        .await?;
    let report = output.report.clone();
    let drawn =
        tokio::task::spawn_blocking(move || -> Result<Vec<(&'static str, Vec<u8>, String)>> {
            // Each chart drawn once and rasterised from that SVG, the charts side by side.
            let report = &report;
            std::thread::scope(|scope| {
                let drawing: Vec<_> = charts::charts()
                    .into_iter()
                    .map(|chart| {
                        scope.spawn(move || -> Result<(&'static str, Vec<u8>, String)> {
                            let svg = chart.svg(report)?;
                            Ok((chart.name, earshot_charts::png(&svg)?, svg))
                        })
                    })
                    .collect();
                drawing
                    .into_iter()
                    .map(|thread| thread.join().expect("a chart's thread does not panic"))
                    .collect()
            })
        })
        .await??;
    for (name, png, svg) in drawn {
        storage
            .write(
                &layout::report_key(&output.run, &format!("{name}.png")),
                Bytes::from(png),
            )
            .await?;
        storage
            .write(
                &layout::report_key(&output.run, &format!("{name}.svg")),
                Bytes::from(svg),
            )
            .await?;
    }
    if let Some(db) = db {
        save::metric_rows(db, &output.run, &output.metrics).await?;
        let scheduled =
            filters.from.is_none() && filters.to.is_none() && filters.members.is_empty();
        let listed = earshot_metrics::runs::AnalyticsRun {
            run: output.run.clone(),
            kind: if scheduled {
                earshot_metrics::runs::RUN_SCHEDULED
            } else {
                earshot_metrics::runs::RUN_PERIOD
            }
            .to_string(),
            period: cli.period.map(|p| p.to_string()),
            from: filters.from,
            to: filters.to,
            group: filters.members.clone(),
            snapshot: output.report.meta.snapshot.clone(),
            stored_at: None,
        };
        earshot_metrics::runs::register(db, &listed).await?;
    }
    Ok(())
}
