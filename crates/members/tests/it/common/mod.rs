//! What the members tests share: searching every store for a member's traces, and canonical rows.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use earshot_core::Storage;
use mongodb::Database;
use mongodb::bson::{Bson, Document};
use serde_json::Value;

/// Every place the needles show up: MongoDB documents (every collection), storage keys and contents
/// (Parquet files read as tables, the rest as text).
pub(crate) async fn find_traces(
    db: &Database,
    storage: &Storage,
    root: &Path,
    needles: &[&str],
) -> Vec<String> {
    let mut found = Vec::new();
    earshot_tests::each_document(db, |name, document| {
        let text = Bson::Document(document).into_relaxed_extjson().to_string();
        for needle in needles {
            if text.contains(needle) {
                let start: String = text.chars().take(160).collect();
                found.push(format!("mongodb {name}: `{needle}` in {start}"));
            }
        }
    })
    .await;
    for key in storage.list("").await.unwrap() {
        let text = if key.ends_with(".parquet") {
            let path = root.join(&key);
            parquet_text(&path)
        } else {
            String::from_utf8_lossy(&storage.read_all(&key).await.unwrap()).to_string()
        };
        for needle in needles {
            if key.contains(needle) || text.contains(needle) {
                found.push(format!("storage {key}: `{needle}`"));
            }
        }
    }
    found
}

/// Every cell of a Parquet file, as text.
fn parquet_text(path: &Path) -> String {
    use polars::prelude::*;
    let file = std::fs::File::open(path).unwrap();
    let frame = ParquetReader::new(file).finish().unwrap();
    let mut out = String::new();
    for column in frame.columns() {
        let series = column.as_materialized_series();
        for i in 0..series.len() {
            out.push_str(&series.get(i).unwrap().to_string());
            out.push('\n');
        }
    }
    out
}

/// Canonical text of a value: objects' keys sorted, arrays sorted, floats to 9 significant digits.
pub(crate) fn canonical(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let inner: BTreeMap<&String, String> =
                map.iter().map(|(k, v)| (k, canonical(v))).collect();
            format!("{inner:?}")
        }
        Value::Array(items) => {
            let mut inner: Vec<String> = items.iter().map(canonical).collect();
            inner.sort();
            format!("{inner:?}")
        }
        Value::Number(n) if n.is_f64() => format!("{:.9e}", n.as_f64().unwrap()),
        other => other.to_string(),
    }
}

/// Every document of a collection, canonical, the given fields dropped.
#[allow(dead_code)] // rights.rs uses it; groups.rs does not
pub(crate) async fn rows(
    db: &Database,
    collection: &str,
    filter: Document,
    drop: &[&str],
) -> BTreeSet<String> {
    let mut cursor = db
        .collection::<Document>(collection)
        .find(filter)
        .await
        .unwrap();
    let mut out = BTreeSet::new();
    while cursor.advance().await.unwrap() {
        let mut document = cursor.deserialize_current().unwrap();
        for field in drop {
            document.remove(*field);
        }
        out.insert(canonical(&Bson::Document(document).into_relaxed_extjson()));
    }
    out
}
