//! The polars engine: registers the input tables and runs every metric's SQL (the `sql/` folder, one
//! file per metric, the text Spark SQL runs too) through polars' SQL context.
//!
//! Inputs, as `sql/` expects them:
//! - `plays`: one row per play (the `rawdata_recentlyplayed` snapshot) plus `play_id` (= `_id`),
//!   `track_key` (the Spotify id, or `local:<name>` for a local file), `local_hour` and
//!   `local_weekday` (1 = Monday) in the group's time zone, read from `played_at_local`;
//! - `links`: one row per (play, artist) (the `ArtistTrackLink` snapshot);
//! - `links_all`: the same links of the whole snapshot, filtered by member but not by period (what was
//!   played before the period: the recap's "discovered" artists);
//! - `top`: the `rawdata_toptracks` snapshot.

use std::collections::BTreeMap;

use anyhow::{Context as _, Result};
use polars::prelude::*;
use polars::sql::SQLContext;

/// A metric: its name (the `analytics_<name>` collection, `sql/<name>.sql`), its SQL, and the columns
/// that identify one of its rows (the `_id` of its documents in MongoDB).
#[derive(Debug, Clone, Copy)]
pub struct Metric {
    /// Name.
    pub name: &'static str,
    /// The query, shared with Spark and the DuckDB benchmark.
    pub sql: &'static str,
    /// Key columns of a row.
    pub subject: &'static [&'static str],
}

macro_rules! metric {
    ($name:literal, [$($subject:literal),*]) => {
        Metric {
            name: $name,
            sql: include_str!(concat!("../sql/", $name, ".sql")),
            subject: &[$($subject),*],
        }
    };
}

/// Every metric the SQL engines compute (every file in `sql/`; a test holds the two equal).
pub const METRICS: &[Metric] = &[
    metric!("member_summary", ["user_id"]),
    metric!("member_tracks", ["user_id", "track_key"]),
    metric!("member_artists", ["user_id", "artist_id"]),
    metric!("member_albums", ["user_id", "album_id"]),
    metric!("listening_clock", ["user_id", "weekday", "hour"]),
    metric!("track_listeners", ["track_key"]),
    metric!("top_listener_by_track", ["track_key", "user_id"]),
    metric!("top_listener_by_artist", ["artist_id", "user_id"]),
    metric!("obscure", ["user_id"]),
    metric!("shared_tracks", ["member_a", "member_b"]),
    metric!("shared_favourite", ["member_a", "member_b", "track_key"]),
    metric!("taste_match", ["member_a", "member_b"]),
    metric!("top_list_overlap", ["member_a", "member_b", "time_range"]),
    metric!("recommendation_scores", ["user_id", "track_key"]),
    metric!("plays_per_day", ["user_id", "day"]),
    metric!("recap_members", ["user_id"]),
    metric!("recap_discovered", ["user_id", "artist_id"]),
    metric!("recap_group", ["scope"]),
];

/// ALS recommendations, computed on Spark only (pyspark.ml, not SQL).
pub const RECOMMENDATIONS_ALS: &str = "recommendations_als";

/// Views the metrics read besides the input tables (`sql/views/<name>.sql`), registered before them.
pub const VIEWS: &[(&str, &str)] = &[("similarity", include_str!("../sql/views/similarity.sql"))];

/// A metric by name.
pub fn metric(name: &str) -> Option<&'static Metric> {
    METRICS.iter().find(|m| m.name == name)
}

/// The columns that identify a row of a stored table (a metric, or ALS); empty for another name.
pub fn subject_columns(name: &str) -> &'static [&'static str] {
    match name {
        RECOMMENDATIONS_ALS => &["user_id", "track_key"],
        _ => metric(name).map_or(&[], |m| m.subject),
    }
}

/// The input tables, as lazy scans of the snapshot's Parquet parts with the period and group filters
/// on them: each query reads only the columns and rows it uses (projection and predicate pushdown reach
/// the files).
#[derive(Clone)]
pub struct Inputs {
    /// Plays with the derived columns.
    pub plays: LazyFrame,
    /// (play, artist) links.
    pub links: LazyFrame,
    /// (play, artist) links of every period (the member filter only).
    pub links_all: LazyFrame,
    /// Top-tracks rows.
    pub top: LazyFrame,
}

/// Add `play_id`, `track_key`, `local_hour` and `local_weekday` (1 = Monday) to the plays, as
/// expressions over `played_at_local` (`YYYY-MM-DD HH:MM:SS TZ`, written by json-converter with
/// chrono-tz in the group's zone).
pub fn prepare_plays(plays: LazyFrame) -> LazyFrame {
    let part = |start: i64, len: u64| {
        col("played_at_local")
            .str()
            .slice(lit(start), lit(len))
            .strict_cast(DataType::Int32)
    };
    plays.with_columns([
        col("_id").alias("play_id"),
        when(col("track_id").is_not_null())
            .then(col("track_id"))
            .otherwise(lit("local:") + col("track_name"))
            .alias("track_key"),
        part(11, 2).alias("local_hour"),
        iso_weekday(part(0, 4), part(5, 2), part(8, 2)).alias("local_weekday"),
    ])
}

/// The ISO weekday (1 = Monday … 7 = Sunday) of a Gregorian date, from its day number (the civil
/// calendar counted from March, so that leap days come last: consecutive dates differ by one), in plain
/// integer expressions: no date parsing, and no branch per month.
fn iso_weekday(year: Expr, month: Expr, day: Expr) -> Expr {
    let year = year - month.clone().lt(lit(3)).cast(DataType::Int32);
    let month = (month + lit(9)) % lit(12);
    let number = lit(365) * year.clone() + year.clone().floor_div(lit(4))
        - year.clone().floor_div(lit(100))
        + year.floor_div(lit(400))
        + (lit(153) * month + lit(2)).floor_div(lit(5))
        + day;
    // Day number 719469 is 1970-01-01, a Thursday (4).
    (number + lit(1)) % lit(7) + lit(1)
}

/// One SQL text over the inputs, as a lazy query.
pub fn query(inputs: &Inputs, sql: &str) -> Result<LazyFrame> {
    let mut ctx = SQLContext::new();
    ctx.register("plays", inputs.plays.clone());
    ctx.register("links", inputs.links.clone());
    ctx.register("links_all", inputs.links_all.clone());
    ctx.register("top", inputs.top.clone());
    for (name, view) in VIEWS {
        let frame = ctx
            .execute(view)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("view `{name}` (crates/analytics/sql/views/{name}.sql)"))?;
        ctx.register(name, frame);
    }
    Ok(ctx.execute(sql)?)
}

/// Collect several lazy queries in one plan on polars' streaming engine, so that their common scans
/// are read once and the plays flow through in morsels instead of being held whole in memory.
pub fn collect_together(queries: Vec<LazyFrame>) -> Result<Vec<DataFrame>> {
    let Some(first) = queries.first() else {
        return Ok(Vec::new());
    };
    let options = first.get_current_optimizations();
    let plans = queries.into_iter().map(|q| q.logical_plan).collect();
    Ok(LazyFrame::collect_all_with_engine(
        plans,
        Engine::Streaming,
        options,
    )?)
}

/// How many metrics one polars plan collects together.
pub const METRICS_PER_PLAN: usize = 4;

/// Every metric, by name, planned and collected [`METRICS_PER_PLAN`] at a time.
pub fn run_metrics(inputs: &Inputs) -> Result<BTreeMap<String, DataFrame>> {
    let mut queries = Vec::with_capacity(METRICS.len());
    for metric in METRICS {
        let name = metric.name;
        queries.push(
            query(inputs, metric.sql)
                .with_context(|| format!("metric `{name}` (crates/analytics/sql/{name}.sql)"))?,
        );
    }
    // Planned a few at a time: together they share their scans, but every metric in a plan holds its
    // hash tables at once (all of them together: 3.5 GiB at 10M plays; four at a time: under 2 GiB, and
    // no slower).
    let mut frames = Vec::with_capacity(METRICS.len());
    let mut queries = queries.into_iter().peekable();
    while queries.peek().is_some() {
        let plan: Vec<LazyFrame> = queries.by_ref().take(METRICS_PER_PLAN).collect();
        let started = std::time::Instant::now();
        let first = METRICS[frames.len()].name;
        frames.extend(collect_together(plan).context("running the metrics")?);
        tracing::debug!(from = first, elapsed = ?started.elapsed(), "A plan of metrics collected.");
    }
    Ok(METRICS
        .iter()
        .map(|m| m.name.to_string())
        .zip(frames)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `.sql` file names in a folder of this crate, sorted.
    fn sql_files(folder: &str) -> Vec<String> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(folder);
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| {
                let name = e.unwrap().file_name().to_string_lossy().to_string();
                name.strip_suffix(".sql").map(str::to_string)
            })
            .collect();
        names.sort();
        names
    }

    /// Spark and the DuckDB benchmark run every file of `sql/` (and register every `sql/views/`), so
    /// the list here must be exactly those files, each with the columns that key its rows.
    #[test]
    fn the_metric_list_is_the_sql_folder() {
        let mut listed: Vec<String> = METRICS.iter().map(|m| m.name.to_string()).collect();
        listed.sort();
        assert_eq!(listed, sql_files("sql"));
        let mut views: Vec<String> = VIEWS.iter().map(|(n, _)| n.to_string()).collect();
        views.sort();
        assert_eq!(views, sql_files("sql/views"));
        for metric in METRICS {
            assert!(!metric.subject.is_empty(), "{}", metric.name);
            for column in metric.subject {
                assert!(metric.sql.contains(column), "{}: {column}", metric.name);
            }
        }
        assert_eq!(
            subject_columns(RECOMMENDATIONS_ALS),
            ["user_id", "track_key"]
        );
        assert!(subject_columns("no_such_metric").is_empty());
    }
}
