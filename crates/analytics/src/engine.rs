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

/// Every metric: its name (the `analytics_<name>` collection) and its SQL.
pub const METRICS: &[(&str, &str)] = &[
    ("member_summary", include_str!("../sql/member_summary.sql")),
    ("member_tracks", include_str!("../sql/member_tracks.sql")),
    ("member_artists", include_str!("../sql/member_artists.sql")),
    ("member_albums", include_str!("../sql/member_albums.sql")),
    (
        "listening_clock",
        include_str!("../sql/listening_clock.sql"),
    ),
    (
        "track_listeners",
        include_str!("../sql/track_listeners.sql"),
    ),
    (
        "top_listener_by_track",
        include_str!("../sql/top_listener_by_track.sql"),
    ),
    (
        "top_listener_by_artist",
        include_str!("../sql/top_listener_by_artist.sql"),
    ),
    ("obscure", include_str!("../sql/obscure.sql")),
    ("shared_tracks", include_str!("../sql/shared_tracks.sql")),
    (
        "shared_favourite",
        include_str!("../sql/shared_favourite.sql"),
    ),
    ("taste_match", include_str!("../sql/taste_match.sql")),
    (
        "top_list_overlap",
        include_str!("../sql/top_list_overlap.sql"),
    ),
    (
        "recommendation_scores",
        include_str!("../sql/recommendation_scores.sql"),
    ),
    ("plays_per_day", include_str!("../sql/plays_per_day.sql")),
];

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
    Ok(ctx.execute(sql)?.collect()?)
}

/// Every metric, by name.
pub fn run_metrics(inputs: &Inputs) -> Result<BTreeMap<String, DataFrame>> {
    let mut out = BTreeMap::new();
    for (name, sql) in METRICS {
        let frame = query(inputs, sql)
            .with_context(|| format!("metric `{name}` (crates/analytics/sql/{name}.sql)"))?;
        out.insert(name.to_string(), frame);
    }
    Ok(out)
}
