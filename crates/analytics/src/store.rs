//! Results into MongoDB: `analytics_<metric>`, one document per result row, `_id` =
//! `<run>|<metric>|<subject>` (the row's key columns), so re-running a run replaces its rows and never
//! duplicates them, and runs with other ids (other periods, other groups) stay side by side.
//!
//! Every stored run is listed in `analytics_runs`. Scheduled runs (the whole history, every member) are
//! pruned to the newest few, so the database does not gain a full copy of every metric a day; runs asked
//! for a period or a group are kept until removed by hand.

use std::collections::BTreeMap;

use anyhow::{Context as _, Result};
use earshot_core::mongo::{ANALYTICS_PREFIX, ANALYTICS_RUNS, AnalyticsRun, RUN_SCHEDULED};
use mongodb::Database;
use mongodb::bson::{Bson, Document, doc};
use polars::prelude::DataFrame;

use crate::tables::rows;
use earshot_metrics::subject_columns;

/// Replace the run's rows of every metric.
pub async fn save(db: &Database, run: &str, metrics: &BTreeMap<String, DataFrame>) -> Result<()> {
    for (metric, frame) in metrics {
        let collection = db.collection::<Document>(&format!("{ANALYTICS_PREFIX}{metric}"));
        let keys = subject_columns(metric);
        let documents: Vec<Document> = rows(frame)
            .into_iter()
            .enumerate()
            .map(|(index, row)| {
                let subject: Vec<String> = keys
                    .iter()
                    .map(|k| {
                        row.get(*k).map_or_else(String::new, |v| {
                            v.as_str().map_or_else(|| v.to_string(), str::to_string)
                        })
                    })
                    .collect();
                let mut document = Document::new();
                // A metric without declared subject columns is keyed by row position (still unique).
                let subject = if subject.is_empty() {
                    index.to_string()
                } else {
                    subject.join(earshot_core::mongo::ID_SEPARATOR)
                };
                document.insert(
                    "_id",
                    earshot_core::mongo::analytics_row_id(run, metric, &subject),
                );
                document.insert("run", run);
                for (key, value) in row {
                    document.insert(key, Bson::try_from(value).unwrap_or(Bson::Null));
                }
                document
            })
            .collect();
        collection
            .delete_many(doc! {"run": run})
            .await
            .with_context(|| format!("clearing run `{run}` of `{metric}`"))?;
        for chunk in documents.chunks(1000) {
            collection
                .insert_many(chunk.to_vec())
                .await
                .with_context(|| format!("storing `{metric}` of run `{run}`"))?;
        }
    }
    Ok(())
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
    earshot_metrics::tables().map(|t| t.name)
}
