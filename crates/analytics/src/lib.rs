//! `analytics`: the questions friends ask, answered from the newest complete Parquet snapshot.
//!
//! Each metric is one SQL file in `crates/metrics/sql/` (the definition Spark SQL is to share), run
//! by polars' SQL context ([`engine`]) over the snapshot ([`snapshot`]). Results go to MongoDB
//! `analytics_<metric>` collections, one document per result row keyed by (run, metric, subject), so a
//! re-run replaces and never duplicates ([`store`]); `reports/<run>/report.json` gathers them, and a
//! summary is printed ([`report`]).

pub mod assemble;
pub mod charts;
pub mod cli;
pub mod engine;
pub mod save;
pub mod snapshot;
pub mod spark;
pub mod tables;

use std::collections::BTreeMap;

use anyhow::{Context as _, Result};
use chrono::{Datelike, Duration, NaiveDate};
use earshot_core::period::local_midnight;
use earshot_core::{GroupConfig, Storage, layout};
use earshot_metrics::report::{Meta, Report};
use polars::prelude::*;

use crate::engine::Inputs;

use crate::snapshot::Filters;

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
    let report = assemble::build(&computed.metrics, &names, &computed.weekly, meta)?;
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
