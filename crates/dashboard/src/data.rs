//! What the pages read beyond the analytics runs: the derived collections and a run's report.
//! Read-only: nothing here writes. The analytics runs (`analytics_runs`) and their rows
//! (`analytics_<metric>`, typed) are read by more than the dashboard (the posted weekly recap), so
//! the pages call `earshot_metrics::store` for those.

use std::collections::BTreeMap;

use anyhow::{Context as _, Result};
use earshot_core::mongo;
use earshot_core::{GroupConfig, Storage, layout};
use earshot_metrics::report::Report;
use mongodb::Database;
use mongodb::bson::{Document, doc};
use serde::de::DeserializeOwned;

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

/// A run's report.json, when the storage holds one.
pub async fn report(storage: &Storage, run: &str) -> Result<Option<Report>> {
    let key = layout::report_key(run, layout::REPORT_JSON);
    if !storage.exists(&key).await? {
        return Ok(None);
    }
    let bytes = storage.read_all(&key).await?;
    let report = serde_json::from_slice(&bytes)
        .with_context(|| format!("reading {}", storage.location(&key)))?;
    Ok(Some(report))
}

/// An instant as `YYYY-MM-DD HH:MM` in the group's zone.
pub fn local_time(at: mongodb::bson::DateTime, zone: chrono_tz::Tz) -> String {
    chrono::DateTime::from_timestamp_millis(at.timestamp_millis())
        .unwrap_or_default()
        .with_timezone(&zone)
        .format("%Y-%m-%d %H:%M")
        .to_string()
}
