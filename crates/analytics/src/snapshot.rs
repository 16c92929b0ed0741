//! The newest complete snapshot (or a named one) as lazy scans, with the period and members filters
//! applied (pushed down to the Parquet reader).

use anyhow::{Context as _, Result, bail};
use chrono::{DateTime, Utc};
use earshot_core::export;
use std::path::PathBuf;

use earshot_core::storage::Staged;
use earshot_core::{Storage, layout, mongo};
use polars::prelude::*;

use crate::engine::{Inputs, prepare_plays};

/// Which rows to analyse.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    /// Plays at or after this instant.
    pub from: Option<DateTime<Utc>>,
    /// Plays before this instant.
    pub to: Option<DateTime<Utc>>,
    /// Only these members (empty: everyone).
    pub members: Vec<String>,
    /// The members who hide from comparisons ([`earshot_core::consent`]): their plays count, but no
    /// answer compares them with anyone. Read from the state store by [`crate::analyse_with`], never a
    /// flag.
    pub hidden: Vec<String>,
}

impl Filters {
    /// Every member's plays of a named period (local midnights in `zone`).
    pub fn for_period(
        period: earshot_core::period::Period,
        zone: chrono_tz::Tz,
    ) -> Result<Filters> {
        let (from, to) = period
            .bounds(zone)
            .with_context(|| format!("`--period {period}` has no midnight in {zone}"))?;
        Ok(Filters {
            from: Some(from),
            to: Some(to),
            ..Filters::default()
        })
    }
}

/// The snapshot id to read for a collection: the one asked for (it must be complete), else the newest complete.
pub async fn resolve(storage: &Storage, collection: &str, wanted: Option<&str>) -> Result<String> {
    match wanted {
        Some(id) => {
            let marker = export::marker_key(collection, id);
            if !storage.exists(&marker).await? {
                bail!(
                    "snapshot `{id}` of `{collection}` is not complete (no `{}`)",
                    storage.location(&marker)
                );
            }
            Ok(id.to_string())
        }
        None => export::latest_complete_snapshot(storage, collection)
            .await?
            .with_context(|| {
                format!(
                    "no complete snapshot of `{collection}` under `{}`: run `gcs-export` first",
                    storage.location("exports/")
                )
            }),
    }
}

/// Every `*.parquet` file of a folder, in name order, stacked; `None` when there is none.
pub fn read_parquet_folder(folder: &std::path::Path) -> Result<Option<DataFrame>> {
    let mut parts: Vec<_> = std::fs::read_dir(folder)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    parts.sort();
    let mut frame: Option<DataFrame> = None;
    for part in parts {
        let file = std::fs::File::open(&part)?;
        let df = anyhow::Context::with_context(ParquetReader::new(file).finish(), || {
            format!("reading `{}`", part.display())
        })?;
        match &mut frame {
            None => frame = Some(df),
            Some(all) => {
                all.vstack_mut(&df)?;
            }
        }
    }
    Ok(frame)
}

/// `column` (a UTC datetime) within the filters' bounds.
pub(crate) fn time_filter(column: &str, filters: &Filters) -> Expr {
    let mut keep = lit(true);
    let utc = |t: DateTime<Utc>| {
        lit(t.timestamp_millis()).cast(DataType::Datetime(
            TimeUnit::Milliseconds,
            Some(TimeZone::UTC),
        ))
    };
    if let Some(from) = filters.from {
        keep = keep.and(col(column).gt_eq(utc(from)));
    }
    if let Some(to) = filters.to {
        keep = keep.and(col(column).lt(utc(to)));
    }
    keep
}

fn member_filter(filters: &Filters) -> Expr {
    if filters.members.is_empty() {
        lit(true)
    } else {
        let members = Series::new("group".into(), filters.members.clone());
        col("user_id").is_in(lit(members).implode(false), false)
    }
}

/// A snapshot's Parquet parts as one lazy scan. The staged folder (a temp copy for GCS) must outlive
/// the scan's collection.
fn scan(staged: &Staged) -> Result<LazyFrame> {
    let mut parts: Vec<PathBuf> = std::fs::read_dir(staged.path())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    parts.sort();
    if parts.is_empty() {
        bail!("`{}` holds no Parquet part", staged.path().display());
    }
    let paths: Vec<PlRefPath> = parts
        .iter()
        .map(|p| PlRefPath::new(p.display().to_string()))
        .collect();
    // The folder is `snapshot=<run id>`, but the snapshot is not a column: no hive partitions (polars
    // would otherwise add one, and try to read the run id as a date).
    let args = ScanArgsParquet {
        hive_options: HiveOptions {
            enabled: Some(false),
            ..HiveOptions::default()
        },
        ..ScanArgsParquet::default()
    };
    Ok(LazyFrame::scan_parquet_files(
        paths.into_iter().collect(),
        args,
    )?)
}

/// The inputs of one run: lazy scans of the snapshot, filtered; the staged folders they read (kept
/// alive while the inputs are used); and the snapshot read.
pub async fn load(
    storage: &Storage,
    snapshot: Option<&str>,
    filters: &Filters,
) -> Result<(Inputs, Vec<Staged>, String)> {
    let id = resolve(storage, mongo::RAW_RECENTLY_PLAYED, snapshot).await?;
    let mut staged = Vec::new();
    for collection in [
        mongo::RAW_RECENTLY_PLAYED,
        mongo::ARTIST_TRACK_LINK,
        mongo::RAW_TOP_TRACKS,
    ] {
        let this = resolve(storage, collection, snapshot).await?;
        staged.push(
            storage
                .stage_local(&layout::export_prefix(collection, &this))
                .await
                .with_context(|| format!("reading snapshot `{this}` of `{collection}`"))?,
        );
    }
    let keep = time_filter("played_at", filters).and(member_filter(filters));
    let spoken_folder = storage
        .stage_local(&layout::export_prefix(mongo::RAW_SPOKEN, &id))
        .await
        .with_context(|| format!("reading snapshot `{id}` of `{}`", mongo::RAW_SPOKEN))?;
    let spoken = scan(&spoken_folder)?.filter(keep.clone());
    staged.push(spoken_folder);
    let inputs = Inputs {
        plays: prepare_plays(scan(&staged[0])?.filter(keep.clone())),
        links: scan(&staged[1])?.filter(keep),
        links_all: scan(&staged[1])?.filter(member_filter(filters)),
        top: scan(&staged[2])?.filter(member_filter(filters)),
        spoken,
        hidden: hidden_members(&filters.hidden)?,
    };
    Ok((inputs, staged, id))
}

/// The `hidden_members` input table (earshot-metrics' [`earshot_metrics::HIDDEN_MEMBERS`]).
pub fn hidden_members(hidden: &[String]) -> Result<LazyFrame> {
    let frame = DataFrame::new(
        hidden.len(),
        vec![Column::new("user_id".into(), hidden.to_vec())],
    )?;
    Ok(frame.lazy())
}
