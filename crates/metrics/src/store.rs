//! Reading what `analytics` stored: the runs (`analytics_runs`) and their rows (`analytics_<metric>`,
//! as this crate's typed rows). Read-only; shared by the dashboard and the posted weekly recap.

use anyhow::{Context as _, Result};
use earshot_core::mongo::{self, ANALYTICS_PREFIX, ANALYTICS_RUNS, AnalyticsRun};
use earshot_core::period::Period;
use mongodb::Database;
use mongodb::bson::{Document, doc};

use crate::rows::MetricRow;

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
