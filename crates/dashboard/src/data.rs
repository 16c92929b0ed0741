//! What the pages read: the analytics runs (`analytics_runs`), their rows (`analytics_<metric>`), the
//! derived collections, and a run's report. Read-only: nothing here writes.

use std::collections::BTreeMap;

use anyhow::{Context as _, Result};
use earshot_core::mongo::{self, ANALYTICS_PREFIX, ANALYTICS_RUNS, AnalyticsRun};
use earshot_core::period::Period;
use earshot_core::{GroupConfig, Storage, layout};
use mongodb::Database;
use mongodb::bson::{Bson, Document, doc};
use serde_json::{Map, Value};

/// A row as JSON (dates as `{"$date": …}` are left to the caller).
pub type Row = Map<String, Value>;

fn to_row(document: Document) -> Row {
    match Bson::Document(document).into_relaxed_extjson() {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

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

/// Rows of one metric of a run, matching `filter`, in `sort` order, at most `limit` (0: all).
pub async fn rows(
    db: &Database,
    run: &str,
    metric: &str,
    filter: Document,
    sort: Document,
    limit: i64,
) -> Result<Vec<Row>> {
    let mut query = doc! {"run": run};
    query.extend(filter);
    let collection = db.collection::<Document>(&format!("{ANALYTICS_PREFIX}{metric}"));
    let mut find = collection
        .find(query)
        .sort(sort)
        .projection(doc! {"_id": 0, "run": 0});
    if limit > 0 {
        find = find.limit(limit);
    }
    let mut cursor = find
        .await
        .with_context(|| format!("reading `{ANALYTICS_PREFIX}{metric}` of run `{run}`"))?;
    let mut out = Vec::new();
    while cursor.advance().await? {
        out.push(to_row(cursor.deserialize_current()?));
    }
    Ok(out)
}

/// One document of a derived collection by `_id`.
pub async fn derived(db: &Database, collection: &str, id: &str) -> Result<Option<Row>> {
    Ok(db
        .collection::<Document>(collection)
        .find_one(doc! {"_id": id})
        .await
        .with_context(|| format!("reading `{collection}`"))?
        .map(to_row))
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

/// A run's report.json, when the storage holds it.
pub async fn report(storage: &Storage, run: &str) -> Result<Option<Value>> {
    let key = layout::report_key(run, layout::REPORT_JSON);
    if !storage.exists(&key).await? {
        return Ok(None);
    }
    let bytes = storage.read_all(&key).await?;
    Ok(serde_json::from_slice(&bytes).ok())
}

/// A `{"$date": …}` value (relaxed extended JSON) as `YYYY-MM-DD HH:MM` in the group's zone.
pub fn local_time(value: &Value, zone: chrono_tz::Tz) -> Option<String> {
    let text = value.get("$date")?;
    let at = match text {
        Value::String(s) => chrono::DateTime::parse_from_rfc3339(s).ok()?.to_utc(),
        Value::Object(o) => {
            let millis = o.get("$numberLong")?.as_str()?.parse().ok()?;
            chrono::DateTime::from_timestamp_millis(millis)?
        }
        _ => return None,
    };
    Some(at.with_timezone(&zone).format("%Y-%m-%d %H:%M").to_string())
}

/// A row's field as text.
pub fn text<'a>(row: &'a Row, key: &str) -> &'a str {
    row.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// A row's field as a number.
pub fn num(row: &Row, key: &str) -> f64 {
    row.get(key).and_then(Value::as_f64).unwrap_or_default()
}
