//! Loading the newest complete snapshot (or a named one) from storage into DataFrames, with the
//! period and group filters applied.

use anyhow::{Context as _, Result, bail};
use chrono::{DateTime, Utc};
use earshot_core::export::{self, SUCCESS_MARKER};
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
    pub group: Vec<String>,
}

/// The snapshot id to read for a collection: the one asked for (it must be complete), else the newest complete.
pub async fn resolve(storage: &Storage, collection: &str, wanted: Option<&str>) -> Result<String> {
    match wanted {
        Some(id) => {
            let marker = format!("{}{SUCCESS_MARKER}", layout::export_prefix(collection, id));
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

/// Read every part of one collection's snapshot. (polars work runs off the async runtime: polars
/// blocks internally, which a current-thread runtime forbids.)
pub async fn read(storage: &Storage, collection: &str, snapshot: &str) -> Result<DataFrame> {
    let prefix = layout::export_prefix(collection, snapshot);
    let staged = storage.stage_local(&prefix).await?;
    let location = storage.location(&prefix);
    let (collection, snapshot) = (collection.to_string(), snapshot.to_string());
    tokio::task::spawn_blocking(move || read_parts(&staged, &location, &collection, &snapshot))
        .await?
}

fn read_parts(
    staged: &earshot_core::storage::Staged,
    location: &str,
    collection: &str,
    snapshot: &str,
) -> Result<DataFrame> {
    read_parquet_folder(staged.path())
        .with_context(|| format!("reading `{location}`"))?
        .with_context(|| format!("snapshot `{snapshot}` of `{collection}` has no parts"))
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

fn time_filter(column: &str, filters: &Filters) -> Expr {
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
    if filters.group.is_empty() {
        lit(true)
    } else {
        let members = Series::new("group".into(), filters.group.clone());
        col("user_id").is_in(lit(members).implode(false), false)
    }
}

/// The inputs of one run, and the snapshot read.
pub async fn load(
    storage: &Storage,
    snapshot: Option<&str>,
    filters: &Filters,
) -> Result<(Inputs, String)> {
    let id = resolve(storage, mongo::RAW_RECENTLY_PLAYED, snapshot).await?;
    let plays = read(storage, mongo::RAW_RECENTLY_PLAYED, &id).await?;
    let links_id = resolve(storage, mongo::ARTIST_TRACK_LINK, snapshot).await?;
    let links = read(storage, mongo::ARTIST_TRACK_LINK, &links_id).await?;
    let top_id = resolve(storage, mongo::RAW_TOP_TRACKS, snapshot).await?;
    let top = read(storage, mongo::RAW_TOP_TRACKS, &top_id).await?;
    let filters = filters.clone();
    let inputs = tokio::task::spawn_blocking(move || -> Result<Inputs> {
        let plays = plays
            .lazy()
            .filter(time_filter("played_at", &filters).and(member_filter(&filters)))
            .collect()?;
        let links = links
            .lazy()
            .filter(time_filter("played_at", &filters).and(member_filter(&filters)))
            .collect()?;
        let top = top.lazy().filter(member_filter(&filters)).collect()?;
        Ok(Inputs {
            plays: prepare_plays(plays)?,
            links,
            top,
        })
    })
    .await??;
    Ok((inputs, id))
}
