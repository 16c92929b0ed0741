//! Results into MongoDB: `analytics_<metric>`, one document per result row, `_id` =
//! `<run>|<metric>|<subject>` (the row's key columns), so re-running a run replaces its rows and never
//! duplicates them, and runs with other ids (other periods, other groups) stay side by side.
//!
//! Every stored run is listed in `analytics_runs`. Scheduled runs (the whole history, every member) are
//! pruned to the newest few, so the database does not gain a full copy of every metric a day; runs asked
//! for a period or a group are kept until removed by hand.

use std::collections::BTreeMap;

use anyhow::{Context as _, Result};
use earshot_core::mongo::ANALYTICS_PREFIX;
use mongodb::Database;
use mongodb::bson::{Bson, Document, doc};
use polars::prelude::DataFrame;

use crate::tables::rows;
use earshot_metrics::subject_columns;

/// Replace the run's rows of every metric.
pub async fn metric_rows(
    db: &Database,
    run: &str,
    metrics: &BTreeMap<String, DataFrame>,
) -> Result<()> {
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
