//! The polars engine: registers the input tables and runs every metric's SQL (the `sql/` folder, one
//! file per metric, the text Spark SQL runs too) through polars' SQL context.
//!
//! Inputs, as `sql/` expects them:
//! - `plays`: one row per play (the `rawdata_recentlyplayed` snapshot) plus `play_id` (= `_id`),
//!   `track_key` (the Spotify id, or `local:<name>` for a local file), `local_hour` and
//!   `local_weekday` (1 = Monday) in the group's time zone, read from `played_at_local`;
//! - `links`: one row per (play, artist) (the `ArtistTrackLink` snapshot);
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

/// The input tables.
#[derive(Debug, Clone)]
pub struct Inputs {
    /// Plays with the derived columns.
    pub plays: DataFrame,
    /// (play, artist) links.
    pub links: DataFrame,
    /// Top-tracks rows.
    pub top: DataFrame,
}

/// Add `play_id`, `track_key`, `local_hour`, `local_weekday` to the plays snapshot.
pub fn prepare_plays(plays: DataFrame) -> Result<DataFrame> {
    let local = plays.column("played_at_local")?.str()?.clone();
    let mut hours: Vec<Option<i32>> = Vec::with_capacity(local.len());
    let mut weekdays: Vec<Option<i32>> = Vec::with_capacity(local.len());
    for value in local.iter() {
        // `YYYY-MM-DD HH:MM:SS TZ`, written by json-converter with chrono-tz.
        let parsed = value.and_then(|v| {
            let date = chrono::NaiveDate::parse_from_str(v.get(..10)?, "%Y-%m-%d").ok()?;
            let hour: i32 = v.get(11..13)?.parse().ok()?;
            Some((
                hour,
                chrono::Datelike::weekday(&date).number_from_monday() as i32,
            ))
        });
        hours.push(parsed.map(|p| p.0));
        weekdays.push(parsed.map(|p| p.1));
    }
    let frame = plays
        .lazy()
        .with_columns([
            col("_id").alias("play_id"),
            when(col("track_id").is_not_null())
                .then(col("track_id"))
                .otherwise(lit("local:") + col("track_name"))
                .alias("track_key"),
        ])
        .collect()?;
    let mut frame = frame;
    frame.with_column(Series::new("local_hour".into(), hours).into_column())?;
    frame.with_column(Series::new("local_weekday".into(), weekdays).into_column())?;
    Ok(frame)
}

/// Run one SQL text over the inputs.
pub fn query(inputs: &Inputs, sql: &str) -> Result<DataFrame> {
    let mut ctx = SQLContext::new();
    ctx.register("plays", inputs.plays.clone().lazy());
    ctx.register("links", inputs.links.clone().lazy());
    ctx.register("top", inputs.top.clone().lazy());
    for (name, view) in VIEWS {
        let frame = ctx
            .execute(view)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("view `{name}` (crates/analytics/sql/views/{name}.sql)"))?;
        ctx.register(name, frame);
    }
    Ok(ctx.execute(sql)?.collect()?)
}

/// Every metric, by name.
pub fn run_metrics(inputs: &Inputs) -> Result<BTreeMap<String, DataFrame>> {
    let mut out = BTreeMap::new();
    for metric in METRICS {
        let name = metric.name;
        let frame = query(inputs, metric.sql)
            .with_context(|| format!("metric `{name}` (crates/analytics/sql/{name}.sql)"))?;
        out.insert(name.to_string(), frame);
    }
    Ok(out)
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
