//! An analytics run, in one place: its listing in `analytics_runs` (typed), its writing (listed when
//! `analytics` stores it, pruned, removed with its rows) and its reading (the newest run, the run of a
//! named period, the periods that have one). The dashboard, the recap and `analytics` use it alike.

use anyhow::{Context as _, Result};
use chrono::{DateTime, Utc};
use earshot_core::mongo::{ANALYTICS_PREFIX, ANALYTICS_RUNS};
use earshot_core::period::Period;
use mongodb::Database;
use mongodb::bson::{Document, doc};

/// A document of [`earshot_core::mongo::ANALYTICS_RUNS`]: written by `analytics` when a run is stored, read by the dashboard
/// to find the newest run and the runs of named periods.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AnalyticsRun {
    /// The run id (`run` of its `analytics_*` rows).
    #[serde(rename = "_id")]
    pub run: String,
    /// [`RUN_SCHEDULED`] (the whole history of every member; only the newest few are kept) or
    /// [`RUN_PERIOD`] (asked for a period or some members; kept).
    pub kind: String,
    /// The named period the run was asked for (`2024`, `2024-10`, `2024-W44`), if any.
    #[serde(default)]
    pub period: Option<String>,
    /// Plays at or after this instant only.
    #[serde(default, with = "bson_time_option")]
    pub from: Option<DateTime<Utc>>,
    /// Plays before this instant only.
    #[serde(default, with = "bson_time_option")]
    pub to: Option<DateTime<Utc>>,
    /// Only these members (empty: everyone).
    #[serde(default)]
    pub group: Vec<String>,
    /// The snapshot the run read.
    #[serde(default)]
    pub snapshot: String,
    /// When the run was stored.
    #[serde(default, with = "bson_time_option")]
    pub stored_at: Option<DateTime<Utc>>,
}

impl AnalyticsRun {
    /// A run of this kind with no period, bounds or group.
    pub fn new(run: &str, kind: &str) -> Self {
        AnalyticsRun {
            run: run.to_string(),
            kind: kind.to_string(),
            period: None,
            from: None,
            to: None,
            group: Vec::new(),
            snapshot: String::new(),
            stored_at: None,
        }
    }
}

/// [`AnalyticsRun::kind`] of a scheduled run.
pub const RUN_SCHEDULED: &str = "scheduled";
/// [`AnalyticsRun::kind`] of a run asked for a period or some members.
pub const RUN_PERIOD: &str = "period";

/// An optional time as a BSON date.
mod bson_time_option {
    use chrono::{DateTime, Utc};
    use mongodb::bson;
    use serde::{Deserialize as _, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        value: &Option<DateTime<Utc>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(t) => {
                serializer.serialize_some(&bson::DateTime::from_millis(t.timestamp_millis()))
            }
            None => serializer.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<DateTime<Utc>>, D::Error> {
        Ok(Option::<bson::DateTime>::deserialize(deserializer)?
            .and_then(|t| DateTime::from_timestamp_millis(t.timestamp_millis())))
    }
}

/// Every listed run, newest first.
pub async fn listed(db: &Database) -> Result<Vec<AnalyticsRun>> {
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
        None => runs.iter().find(|r| r.kind == RUN_SCHEDULED),
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

/// List the run in `analytics_runs`, stored now (replacing an earlier listing of the same run).
pub async fn register(db: &Database, listing: &AnalyticsRun) -> Result<()> {
    let listing = AnalyticsRun {
        stored_at: Some(chrono::Utc::now()),
        ..listing.clone()
    };
    db.collection::<AnalyticsRun>(ANALYTICS_RUNS)
        .replace_one(doc! {"_id": &listing.run}, &listing)
        .upsert(true)
        .await
        .with_context(|| format!("listing run `{}` in `{ANALYTICS_RUNS}`", listing.run))?;
    Ok(())
}

/// Remove every scheduled run but the newest `keep` (by run id, which sorts by time) from every
/// `analytics_*` collection and from `analytics_runs`. Returns the runs removed.
pub async fn prune(db: &Database, keep: usize) -> Result<Vec<String>> {
    let runs = db.collection::<Document>(ANALYTICS_RUNS);
    let mut cursor = runs
        .find(doc! {"kind": RUN_SCHEDULED})
        .sort(doc! {"_id": -1})
        .projection(doc! {"_id": 1})
        .await
        .with_context(|| format!("reading `{ANALYTICS_RUNS}`"))?;
    let mut old = Vec::new();
    let mut seen = 0;
    while cursor.advance().await? {
        seen += 1;
        if seen > keep
            && let Ok(run) = cursor.current().get_str("_id")
        {
            old.push(run.to_string());
        }
    }
    remove_runs(db, &old).await?;
    Ok(old)
}

/// Remove these runs from every `analytics_*` collection, then from `analytics_runs` (listed last: a
/// removal cut short is finished by the next one).
pub async fn remove_runs(db: &Database, runs: &[String]) -> Result<()> {
    if runs.is_empty() {
        return Ok(());
    }
    for name in stored_tables() {
        db.collection::<Document>(&format!("{ANALYTICS_PREFIX}{name}"))
            .delete_many(doc! {"run": {"$in": runs}})
            .await
            .with_context(|| format!("removing runs from `{name}`"))?;
    }
    db.collection::<Document>(ANALYTICS_RUNS)
        .delete_many(doc! {"_id": {"$in": runs}})
        .await
        .with_context(|| format!("removing runs from `{ANALYTICS_RUNS}`"))?;
    Ok(())
}

/// Every table a run stores: the SQL metrics, and ALS.
fn stored_tables() -> impl Iterator<Item = &'static str> {
    crate::tables().map(|t| t.name)
}
