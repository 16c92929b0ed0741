//! The polars engine: registers the input tables and runs every metric's SQL (earshot-metrics'
//! `sql/` folder, one file per metric, the text Spark SQL runs too) through polars' SQL context.
//!
//! Inputs, as `sql/` expects them:
//! - `plays`: one row per play (the `rawdata_recentlyplayed` snapshot, with the columns the converter
//!   stores: `track_key` (the Spotify id, `local:<name>` for a local file, else the recording key),
//!   `local_day`, `local_hour` and `local_weekday` (1 = Monday) in the group's time zone) plus
//!   `play_id` (= `_id`);
//! - `links`: one row per (play, artist) (the `ArtistTrackLink` snapshot);
//! - `links_all`: the same links of the whole snapshot, filtered by member but not by period (what was
//!   played before the period: the recap's "discovered" artists);
//! - `top`: the `rawdata_toptracks` snapshot;
//! - `spoken`: the `rawdata_spoken` snapshot (podcast episodes and audiobook chapters). Only the
//!   spoken metrics read it;
//! - `hidden_members`: the members who hide from comparisons (`user_id`; earshot-core's `consent`),
//!   which `views/similarity.sql` leaves out.

use std::collections::BTreeMap;

use anyhow::{Context as _, Result};
use polars::prelude::*;
use polars::sql::SQLContext;

use earshot_metrics::{METRICS, VIEWS};

/// The input tables, as lazy scans of the snapshot's Parquet parts with the period and members filters
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
    /// Spoken plays (podcast episodes, audiobook chapters), apart from the music.
    pub spoken: LazyFrame,
    /// The members who hide from comparisons (`user_id`).
    pub hidden: LazyFrame,
}

/// Add `play_id` to the plays. Everything else the SQL reads is stored on each play by json-converter:
/// `track_key` (earshot-core's `TrackFields::track_key`) and `local_day`, `local_hour` and
/// `local_weekday` (1 = Monday) in the group's zone (`records::LocalTime`).
pub fn prepare_plays(plays: LazyFrame) -> LazyFrame {
    plays.with_column(col("_id").alias("play_id"))
}

/// The tables the SQL reads: the inputs and every view (earshot-metrics' `sql/views/`).
#[derive(Clone)]
pub struct Tables(Vec<(&'static str, LazyFrame)>);

impl Tables {
    /// The inputs, with every view as a lazy query over them: each query that reads a view computes it
    /// (what a query over a small part of the plays wants, the last week's).
    pub fn lazy(inputs: &Inputs) -> Result<Tables> {
        let mut tables = Tables::inputs(inputs);
        for (name, view) in VIEWS {
            let frame = tables.view(name, view)?;
            tables.0.push((name, frame));
        }
        Ok(tables)
    }

    /// The inputs, with every view computed once, in [`VIEWS`] order, and held in memory for all the
    /// metrics: the views are the groupings of the plays and links that several metrics share, a few
    /// rows per member and track, so that no metric reads the plays again for them.
    pub fn computed(inputs: &Inputs) -> Result<Tables> {
        let mut tables = Tables::inputs(inputs);
        for (name, view) in VIEWS {
            let started = std::time::Instant::now();
            let frame = tables.view(name, view)?;
            let computed = collect_together(vec![frame])
                .with_context(|| format!("computing view `{name}`"))?
                .pop()
                .context("a view's result")?;
            tracing::debug!(view = name, rows = computed.height(), elapsed = ?started.elapsed(), "A view computed.");
            tables.0.push((name, computed.lazy()));
        }
        Ok(tables)
    }

    fn inputs(inputs: &Inputs) -> Tables {
        Tables(vec![
            ("plays", inputs.plays.clone()),
            ("links", inputs.links.clone()),
            ("links_all", inputs.links_all.clone()),
            ("top", inputs.top.clone()),
            ("spoken", inputs.spoken.clone()),
            (earshot_metrics::HIDDEN_MEMBERS, inputs.hidden.clone()),
        ])
    }

    fn view(&self, name: &str, sql: &str) -> Result<LazyFrame> {
        self.query(sql)
            .with_context(|| format!("view `{name}` (crates/metrics/sql/views/{name}.sql)"))
    }

    /// One SQL text over the tables, as a lazy query.
    pub fn query(&self, sql: &str) -> Result<LazyFrame> {
        let mut ctx = SQLContext::new();
        for (name, frame) in &self.0 {
            ctx.register(name, frame.clone());
        }
        Ok(ctx.execute(sql)?)
    }
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

/// Every metric, by name, over the tables (with the views computed: [`Tables::computed`]), planned and
/// collected [`METRICS_PER_PLAN`] at a time.
pub fn run_metrics(tables: &Tables) -> Result<BTreeMap<String, DataFrame>> {
    let mut queries = Vec::with_capacity(METRICS.len());
    for metric in METRICS {
        let name = metric.name;
        queries.push(
            tables
                .query(metric.sql)
                .with_context(|| format!("metric `{name}` (crates/metrics/sql/{name}.sql)"))?,
        );
    }
    // Planned a few at a time: together they share their scans, but every metric in a plan holds its
    // hash tables at once.
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
