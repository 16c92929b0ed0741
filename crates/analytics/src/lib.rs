//! `analytics`: the questions friends ask, answered from the newest complete Parquet snapshot.
//!
//! Each metric is one SQL file in `crates/metrics/sql/` (the definition Spark SQL is to share), run
//! by polars' SQL context ([`engine`]) over the snapshot ([`snapshot`]). Results go to MongoDB
//! `analytics_<metric>` collections, one document per result row keyed by (run, metric, subject), so a
//! re-run replaces and never duplicates ([`store`]); `reports/<run>/report.json` gathers them, and a
//! summary is printed ([`report`]).

pub mod charts;
pub mod engine;
pub mod report;
pub mod snapshot;
pub mod spark;
pub mod store;
pub mod tables;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};
use bytes::Bytes;
use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use clap::{Parser, ValueEnum};
use earshot_core::cli::{EXIT_CODES_HELP, Outcome, StoreArgs};
use earshot_core::erasure::ErasureGuard;
use earshot_core::period::local_midnight;
use earshot_core::{GroupConfig, Storage, env, layout};
use earshot_metrics::report::{Meta, Report};
use polars::prelude::*;
use tracing::info;

use crate::engine::Inputs;

use crate::snapshot::Filters;

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

/// Everything one run produced.
#[derive(Debug)]
pub struct RunOutput {
    /// Run id.
    pub run: String,
    /// Metric tables by name.
    pub metrics: BTreeMap<String, DataFrame>,
    /// The report.
    pub report: Report,
}

impl RunOutput {
    /// The report as JSON, as report.json holds it.
    pub fn report_json(&self) -> serde_json::Value {
        serde_json::to_value(&self.report).expect("a report serialises")
    }
}

/// The last complete local week (Monday to Sunday) up to the newest play: its plays only, and its
/// Monday (empty when there is no play). The links are cut by the week's instants (its local midnights
/// in `zone`), which select the same plays as their local days, without a set of play ids.
fn last_week(inputs: &Inputs, zone: chrono_tz::Tz) -> Result<(Inputs, String)> {
    let day = || col("local_day");
    let newest = inputs
        .plays
        .clone()
        .select([day().max().alias("newest")])
        .collect()?;
    let newest = newest
        .column("newest")?
        .str()?
        .get(0)
        .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
    let Some(newest) = newest else {
        return Ok((inputs.clone(), String::new()));
    };
    let this_monday = newest - Duration::days(i64::from(newest.weekday().num_days_from_monday()));
    // A week still in progress is not recapped: take the one before, unless the newest play is on a Sunday.
    let monday = if newest.weekday() == chrono::Weekday::Sun {
        this_monday
    } else {
        this_monday - Duration::days(7)
    };
    let sunday_night = monday + Duration::days(7);
    let (start, end) = (
        monday.format("%Y-%m-%d").to_string(),
        sunday_night.format("%Y-%m-%d").to_string(),
    );
    let plays = inputs
        .plays
        .clone()
        .filter(day().gt_eq(lit(start.clone())).and(day().lt(lit(end))));
    let midnight = |day: NaiveDate| {
        local_midnight(day, zone)
            .with_context(|| format!("the recap week: midnight of {day} does not exist in {zone}"))
    };
    let week = Filters {
        from: Some(midnight(monday)?),
        to: Some(midnight(sunday_night)?),
        ..Filters::default()
    };
    let links = inputs
        .links
        .clone()
        .filter(snapshot::time_filter("played_at", &week));
    let spoken = inputs
        .spoken
        .clone()
        .filter(snapshot::time_filter("played_at", &week));
    Ok((
        Inputs {
            plays,
            links,
            links_all: inputs.links_all.clone(),
            top: inputs.top.clone(),
            spoken,
            hidden: inputs.hidden.clone(),
        },
        start,
    ))
}

/// What an engine computed.
struct Computed {
    metrics: BTreeMap<String, DataFrame>,
    weekly: BTreeMap<String, DataFrame>,
    week_start: String,
    /// (Spotify id, display name in the data).
    members: Vec<(String, String)>,
    snapshot: String,
}

fn member_names(frame: &DataFrame) -> Result<Vec<(String, String)>> {
    let ids = frame.column("user_id")?.str()?.clone();
    let names = frame.column("user_name")?.str()?.clone();
    Ok(ids
        .iter()
        .zip(names.iter())
        .filter_map(|(id, name)| Some((id?.to_string(), name.unwrap_or_default().to_string())))
        .collect())
}

async fn compute_polars(
    storage: &Storage,
    snapshot: Option<&str>,
    filters: &Filters,
    zone: chrono_tz::Tz,
) -> Result<Computed> {
    let (inputs, staged, snapshot) = snapshot::load(storage, snapshot, filters).await?;
    let progress = earshot_core::progress::Progress::new("Computing the metrics", "runs", 1);
    // polars blocks internally: run it off the async runtime, on a thread with room for its planning.
    let work = off_runtime(move || -> Result<Computed> {
        let tables = engine::Tables::computed(&inputs)?;
        let metrics = engine::run_metrics(&tables)?;
        let (week_inputs, week_start) = last_week(&inputs, zone)?;
        // The week's views are computed by the weekly queries themselves: one week of plays is small.
        let week = engine::Tables::lazy(&week_inputs)?;
        let weekly_names = ["member_summary", "member_tracks"];
        let mut queries = Vec::new();
        for name in weekly_names {
            let sql = earshot_metrics::metric(name).expect("a known metric").sql;
            queries.push(week.query(sql)?);
        }
        queries
            .push(tables.query(
                "SELECT user_id, MAX(user_name) AS user_name FROM plays GROUP BY user_id",
            )?);
        let mut frames = engine::collect_together(queries)?;
        let names = frames.pop().expect("the names query");
        let weekly = weekly_names
            .iter()
            .map(|n| n.to_string())
            .zip(frames)
            .collect();
        // The scans are done: the staged folders (temp copies, for GCS) may go.
        drop(staged);
        Ok(Computed {
            metrics,
            weekly,
            week_start,
            members: member_names(&names)?,
            snapshot,
        })
    });
    let computed = progress.tick_while(work).await;
    progress.inc(1);
    progress.finish();
    computed
}

/// The stack of the thread polars plans and runs on: its optimiser recurses over the plan (deeper in a
/// debug build), and a plan of several metrics over period-filtered scans outgrows the 2 MiB of a
/// runtime thread.
const POLARS_STACK_BYTES: usize = 64 * 1024 * 1024;

/// Run blocking `work` on its own thread with [`POLARS_STACK_BYTES`] of stack, awaiting its result.
async fn off_runtime<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    let (send, receive) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("analytics-polars".into())
        .stack_size(POLARS_STACK_BYTES)
        .spawn(move || {
            let _ = send.send(work());
        })
        .context("starting the polars thread")?;
    receive
        .await
        .context("the polars thread ended without an answer (it panicked)")?
}

async fn compute_spark(
    storage: &Storage,
    snapshot: Option<&str>,
    filters: &Filters,
    run: &str,
    options: &spark::SparkOptions,
) -> Result<Computed> {
    let snapshot =
        snapshot::resolve(storage, earshot_core::mongo::RAW_RECENTLY_PLAYED, snapshot).await?;
    let mut tables = spark::run(storage, &snapshot, filters, run, options).await?;
    let mut take = |name: &str| tables.remove(name);
    let members = take("member_names")
        .map(|f| member_names(&f))
        .transpose()?
        .unwrap_or_default();
    let mut weekly = BTreeMap::new();
    for name in ["member_summary", "member_tracks"] {
        if let Some(frame) = take(&format!("weekly_{name}")) {
            weekly.insert(name.to_string(), frame);
        }
    }
    let week_start = take("weekly_week")
        .and_then(|f| {
            f.column("week_start")
                .ok()
                .and_then(|c| c.str().ok().and_then(|s| s.get(0).map(str::to_string)))
        })
        .unwrap_or_default();
    Ok(Computed {
        metrics: tables,
        weekly,
        week_start,
        members,
        snapshot,
    })
}

/// Members of a run, by id, with their display names: those who played in the period, and those the
/// group config lists (with or without plays), within the `--members` filter.
fn member_names_in_run(
    played: &[(String, String)],
    group: &GroupConfig,
    filters: &Filters,
) -> BTreeMap<String, String> {
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    for (id, name) in played {
        names.entry(id.clone()).or_insert_with(|| {
            group
                .member(id)
                .map_or_else(|| name.clone(), |m| m.display_name.clone())
        });
    }
    for member in &group.members {
        if filters.members.is_empty() || filters.members.contains(&member.id) {
            names
                .entry(member.id.clone())
                .or_insert_with(|| member.display_name.clone());
        }
    }
    names
}

/// Which engine to run, with its options.
#[derive(Debug, Clone)]
pub enum EngineChoice {
    /// polars, embedded.
    Polars,
    /// Spark through spark-submit.
    Spark(spark::SparkOptions),
}

/// Compute every metric and the report for a storage's snapshot.
pub async fn analyse(
    storage: &Storage,
    snapshot: Option<&str>,
    filters: &Filters,
    group: &GroupConfig,
    run: Option<&str>,
) -> Result<RunOutput> {
    analyse_with(
        storage,
        snapshot,
        filters,
        group,
        run,
        &EngineChoice::Polars,
    )
    .await
}

/// [`analyse`] on a chosen engine.
pub async fn analyse_with(
    storage: &Storage,
    snapshot: Option<&str>,
    filters: &Filters,
    group: &GroupConfig,
    run: Option<&str>,
    engine: &EngineChoice,
) -> Result<RunOutput> {
    let filter_tag = match (&filters.from, &filters.to, filters.members.is_empty()) {
        (None, None, true) => String::new(),
        _ => format!(
            "-from{}-to{}-group{}",
            filters.from.map(layout::run_id).unwrap_or_default(),
            filters.to.map(layout::run_id).unwrap_or_default(),
            filters.members.join("+")
        ),
    };
    let snapshot_id =
        snapshot::resolve(storage, earshot_core::mongo::RAW_RECENTLY_PLAYED, snapshot).await?;
    // A member who left (erased themselves) is not named as a member without plays.
    let group = &earshot_core::erasure::without_departed(storage, group).await?;
    // Whoever hides from comparisons now: both engines leave them out of every comparison.
    let filters = &Filters {
        hidden: earshot_core::consent::hidden(storage)
            .await?
            .into_iter()
            .collect(),
        ..filters.clone()
    };
    let run = run
        .map(str::to_string)
        .unwrap_or_else(|| format!("{snapshot_id}{filter_tag}"));
    let (computed, engine_name) = match engine {
        EngineChoice::Polars => (
            compute_polars(
                storage,
                Some(&snapshot_id),
                filters,
                group.zone().map_err(anyhow::Error::msg)?,
            )
            .await?,
            "polars",
        ),
        EngineChoice::Spark(options) => (
            compute_spark(storage, Some(&snapshot_id), filters, &run, options).await?,
            "spark",
        ),
    };
    let mut computed = computed;
    without_comparisons_of(&mut computed.metrics, &filters.hidden)?;
    let names = member_names_in_run(&computed.members, group, filters);
    let plays: f64 = computed
        .metrics
        .get("member_summary")
        .and_then(|f| {
            f.column("plays")
                .ok()?
                .cast(&DataType::Float64)
                .ok()?
                .f64()
                .ok()?
                .sum()
        })
        .unwrap_or(0.0);
    let meta = Meta {
        run: run.clone(),
        engine: engine_name.to_string(),
        snapshot: computed.snapshot.clone(),
        group: group.name.clone(),
        time_zone: group.time_zone.clone(),
        from: filters.from,
        to: filters.to,
        members_filter: filters.members.clone(),
        plays: plays as u64,
        weekly_recap_week_starting: computed.week_start.clone(),
    };
    let report = report::build(&computed.metrics, &names, &computed.weekly, meta)?;
    Ok(RunOutput {
        run,
        metrics: computed.metrics,
        report,
    })
}

/// Drop every row that compares anyone with a member of `hidden`: the rows whose comparison columns
/// (earshot-metrics' `Table::comparison_columns`, the roles) name them. The same step for both
/// engines' results, before anything is stored or reported.
fn without_comparisons_of(
    metrics: &mut BTreeMap<String, DataFrame>,
    hidden: &[String],
) -> Result<()> {
    if hidden.is_empty() {
        return Ok(());
    }
    for (name, frame) in metrics.iter_mut() {
        let Some(table) = earshot_metrics::table(name) else {
            continue;
        };
        let mut keep: Option<BooleanChunked> = None;
        for column in table.comparison_columns() {
            let values = anyhow::Context::with_context(frame.column(column), || {
                format!("`{name}` has no column `{column}`")
            })?
            .str()?
            .clone();
            let mask: BooleanChunked = values
                .iter()
                .map(|v| Some(!v.is_some_and(|v| hidden.iter().any(|h| h == v))))
                .collect();
            keep = Some(match keep {
                Some(k) => &k & &mask,
                None => mask,
            });
        }
        if let Some(keep) = keep {
            *frame = frame.filter(&keep)?;
        }
    }
    Ok(())
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
        let pruned = store::prune(db, cli.keep_runs as usize).await?;
        if !pruned.is_empty() {
            info!(runs = ?pruned, kept = cli.keep_runs, "Removed old scheduled runs from analytics_*.");
        }
    }
    let key = layout::report_key(&output.run, layout::REPORT_JSON);
    info!(run = %output.run, report = %storage.location(&key), "Analytics done.");
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(report::summary(&output.report).as_bytes())?;
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
        store::remove_runs(db, &[run.to_string()]).await?;
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
            charts::charts()
                .iter()
                .map(|chart| Ok((chart.name, chart.png(&report)?, chart.svg(&report)?)))
                .collect()
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
        store::save(db, &output.run, &output.metrics).await?;
        let scheduled =
            filters.from.is_none() && filters.to.is_none() && filters.members.is_empty();
        let listed = earshot_core::mongo::AnalyticsRun {
            run: output.run.clone(),
            kind: if scheduled {
                earshot_core::mongo::RUN_SCHEDULED
            } else {
                earshot_core::mongo::RUN_PERIOD
            }
            .to_string(),
            period: cli.period.map(|p| p.to_string()),
            from: filters.from,
            to: filters.to,
            group: filters.members.clone(),
            snapshot: output.report.meta.snapshot.clone(),
            stored_at: None,
        };
        store::register(db, &listed).await?;
    }
    Ok(())
}
