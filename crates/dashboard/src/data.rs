//! The one query module the pages call: the analytics runs (`analytics_runs`), their rows
//! (`analytics_<metric>`, as earshot-metrics' typed rows), the derived collections, and a run's
//! report. Read-only: nothing here writes.

use std::collections::BTreeMap;

use anyhow::{Context as _, Result};
use earshot_core::mongo::{self, ANALYTICS_PREFIX, ANALYTICS_RUNS, AnalyticsRun};
use earshot_core::period::Period;
use earshot_core::{GroupConfig, Storage, layout};
use earshot_metrics::report::Report;
use earshot_metrics::rows::MetricRow;
use mongodb::Database;
use mongodb::bson::{Document, doc};
use serde::de::DeserializeOwned;

/// Every listed run, newest first.
pub async fn runs(db: &Database) -> Result<Vec<AnalyticsRun>> {
    let mut cursor = db
        .collection::<AnalyticsRun>(ANALYTICS_RUNS)
        .find(doc! {})
        .sort(doc! {"_id": -1})
        .await
        .with_context(|| format!("reading `{ANALYTICS_RUNS}`"))?;
    let mut out = Vec::new();
    while cursor.advance().await? {
        out.push(cursor.deserialize_current()?);
    }
    Ok(out)
}

/// The run a page shows: the newest scheduled run (the whole history), or the newest run of a named
/// period for the whole group.
pub fn pick(runs: &[AnalyticsRun], period: Option<Period>) -> Option<&AnalyticsRun> {
    match period {
        None => runs.iter().find(|r| r.kind == mongo::RUN_SCHEDULED),
        Some(p) => {
            let wanted = p.to_string();
            runs.iter()
                .filter(|r| r.period.as_deref() == Some(wanted.as_str()) && r.group.is_empty())
                .max_by_key(|r| r.stored_at)
        }
    }
}

/// The named periods that have a whole-group run, newest first.
pub fn periods(runs: &[AnalyticsRun]) -> Vec<Period> {
    let mut out: Vec<Period> = runs
        .iter()
        .filter(|r| r.group.is_empty())
        .filter_map(|r| r.period.as_deref()?.parse().ok())
        .collect();
    out.sort_by_key(|p: &Period| std::cmp::Reverse((p.first_day(), p.end_day())));
    out.dedup();
    out
}

/// A query of one metric's rows: a filter, an order, a limit.
#[derive(Debug, Clone, Default)]
pub struct Select {
    /// Which rows (besides the run).
    pub filter: Document,
    /// Their order.
    pub sort: Document,
    /// At most this many (0: all).
    pub limit: i64,
}

impl Select {
    /// Every row, in the store's order.
    pub fn all() -> Select {
        Select::default()
    }

    /// The rows matching `filter`.
    pub fn matching(filter: Document) -> Select {
        Select {
            filter,
            ..Select::default()
        }
    }

    /// In `sort` order.
    pub fn sorted(self, sort: Document) -> Select {
        Select { sort, ..self }
    }

    /// At most `limit`.
    pub fn first(self, limit: i64) -> Select {
        Select { limit, ..self }
    }
}

/// Rows of one metric (`T`'s table) of a run, as `select` picks them.
pub async fn rows<T: MetricRow>(db: &Database, run: &str, select: Select) -> Result<Vec<T>> {
    let table = T::TABLE;
    let mut query = doc! {"run": run};
    query.extend(select.filter);
    let collection = db.collection::<T>(&format!("{ANALYTICS_PREFIX}{table}"));
    let mut find = collection
        .find(query)
        .sort(select.sort)
        .projection(doc! {"_id": 0, "run": 0});
    if select.limit > 0 {
        find = find.limit(select.limit);
    }
    let mut cursor = find
        .await
        .with_context(|| format!("reading `{ANALYTICS_PREFIX}{table}` of run `{run}`"))?;
    let mut out = Vec::new();
    while cursor.advance().await? {
        out.push(
            cursor
                .deserialize_current()
                .with_context(|| format!("a row of `{ANALYTICS_PREFIX}{table}` of run `{run}`"))?,
        );
    }
    Ok(out)
}

/// One document of a derived collection by `_id`.
pub async fn derived<T: DeserializeOwned + Send + Sync>(
    db: &Database,
    collection: &str,
    id: &str,
) -> Result<Option<T>> {
    db.collection::<T>(collection)
        .find_one(doc! {"_id": id})
        .await
        .with_context(|| format!("reading `{collection}` `{id}`"))
}

/// Display names: the group config's, else the name each member signed in with.
pub async fn names(db: &Database, group: &GroupConfig) -> Result<BTreeMap<String, String>> {
    let mut names = BTreeMap::new();
    let mut cursor = db
        .collection::<Document>(mongo::MEMBERS)
        .find(doc! {})
        .projection(doc! {"_id": 1, "user_name": 1})
        .await
        .with_context(|| format!("reading `{}`", mongo::MEMBERS))?;
    while cursor.advance().await? {
        let current = cursor.current();
        if let Ok(id) = current.get_str("_id") {
            let name = current.get_str("user_name").unwrap_or(id);
            names.insert(id.to_string(), name.to_string());
        }
    }
    for member in &group.members {
        names.insert(member.id.clone(), member.display_name.clone());
    }
    Ok(names)
}

/// A run's report.json, when the storage holds one that reads as a [`Report`] (one written by an
/// older release is left unread, with a warning).
pub async fn report(storage: &Storage, run: &str) -> Result<Option<Report>> {
    let key = layout::report_key(run, layout::REPORT_JSON);
    if !storage.exists(&key).await? {
        return Ok(None);
    }
    let bytes = storage.read_all(&key).await?;
    match serde_json::from_slice(&bytes) {
        Ok(report) => Ok(Some(report)),
        Err(err) => {
            tracing::warn!(report = %storage.location(&key), error = %err, "A report that does not read as this release's.");
            Ok(None)
        }
    }
}

/// An instant as `YYYY-MM-DD HH:MM` in the group's zone.
pub fn local_time(at: mongodb::bson::DateTime, zone: chrono_tz::Tz) -> String {
    chrono::DateTime::from_timestamp_millis(at.timestamp_millis())
        .unwrap_or_default()
        .with_timezone(&zone)
        .format("%Y-%m-%d %H:%M")
        .to_string()
}
