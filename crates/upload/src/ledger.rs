//! The upload ledger (`upload_ledger`, named in earshot-core): which converted files are loaded, and the
//! keys their records name.
//!
//! An entry is written only after every upsert of its file was acknowledged, so a run cut short between
//! the two loads that file again next time, which changes nothing (the upserts are idempotent). Entries
//! carry the server's time (`$currentDate`), which create-collections compares with its watermarks,
//! and how many of the file's records name each key value (`counts.<field>`, aligned with
//! `keys.<field>`), from which create-collections sizes its batches without reading the rows.

use std::collections::{BTreeMap, HashSet};

use anyhow::{Context as _, Result};
use earshot_core::mongo::{LEDGER_KEY_FIELDS, UPLOAD_LEDGER};
use mongodb::Database;
use mongodb::bson::{Bson, Document, doc};

/// A file to record once its upserts are acknowledged.
#[derive(Debug, Clone)]
pub struct Entry {
    key: String,
    collection: String,
    records: usize,
    keys: Document,
    counts: Document,
}

impl Entry {
    /// The entry of the file `key`, loaded into `collection`, from the documents it holds.
    pub fn new(key: &str, collection: &str, documents: &[Document]) -> Entry {
        let mut keys = Document::new();
        let mut counts = Document::new();
        for field in LEDGER_KEY_FIELDS {
            let mut values: BTreeMap<&str, i64> = BTreeMap::new();
            for document in documents {
                match document.get(*field) {
                    Some(Bson::String(value)) => *values.entry(value).or_default() += 1,
                    Some(Bson::Array(items)) => {
                        // A value listed twice in one record (an artist twice on a track) is one row.
                        let mut seen: Vec<&str> = items.iter().filter_map(Bson::as_str).collect();
                        seen.sort_unstable();
                        seen.dedup();
                        for value in seen {
                            *values.entry(value).or_default() += 1;
                        }
                    }
                    _ => {}
                }
            }
            if !values.is_empty() {
                keys.insert(*field, values.keys().copied().collect::<Vec<_>>());
                // Every `_id` names one record: its counts say nothing.
                if *field != "_id" {
                    counts.insert(*field, values.values().copied().collect::<Vec<_>>());
                }
            }
        }
        Entry {
            key: key.to_string(),
            collection: collection.to_string(),
            records: documents.len(),
            keys,
            counts,
        }
    }
}

/// The keys of the files already loaded into `collection`.
pub async fn loaded(db: &Database, collection: &str) -> Result<HashSet<String>> {
    let mut cursor = db
        .collection::<Document>(UPLOAD_LEDGER)
        .find(doc! {"collection": collection})
        .projection(doc! {"_id": 1})
        .await
        .with_context(|| format!("reading `{UPLOAD_LEDGER}`"))?;
    let mut keys = HashSet::new();
    while cursor.advance().await? {
        if let Ok(key) = cursor.current().get_str("_id") {
            keys.insert(key.to_string());
        }
    }
    Ok(keys)
}

/// Record files whose upserts were all acknowledged (an entry loaded again is updated, its time too).
pub async fn record(db: &Database, entries: &mut Vec<Entry>) -> Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let updates: Vec<Document> = entries
        .iter()
        .map(|e| {
            doc! {
                "q": {"_id": &e.key},
                "u": {
                    "$set": {
                        "collection": &e.collection,
                        "records": e.records as i64,
                        "keys": e.keys.clone(),
                        "counts": e.counts.clone(),
                    },
                    "$currentDate": {"loaded_at": true},
                },
                "upsert": true,
            }
        })
        .collect();
    crate::mongo::run_updates(db, UPLOAD_LEDGER, updates)
        .await
        .with_context(|| {
            format!(
                "recording {} loaded files in `{UPLOAD_LEDGER}`",
                entries.len()
            )
        })?;
    entries.clear();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_counts_the_records_naming_each_key() {
        let documents = vec![
            doc! {"_id": "a|1", "track_id": "t1", "artist_ids": ["x", "y"]},
            doc! {"_id": "a|2", "track_id": "t2", "artist_ids": ["x", "x"]},
            doc! {"_id": "a|3", "track_id": "t1", "artist_ids": [Bson::Null]},
            doc! {"_id": "a|4", "track_id": Bson::Null},
        ];
        let entry = Entry::new("converted/x.jsonl", "rawdata_recentlyplayed", &documents);
        assert_eq!(entry.records, 4);
        let keys = |field: &str| entry.keys.get_array(field).unwrap().clone();
        let counts = |field: &str| entry.counts.get_array(field).unwrap().clone();
        assert_eq!(keys("track_id"), vec![Bson::from("t1"), Bson::from("t2")]);
        assert_eq!(counts("track_id"), vec![Bson::Int64(2), Bson::Int64(1)]);
        // An artist listed twice on one record is one row of that artist.
        assert_eq!(keys("artist_ids"), vec![Bson::from("x"), Bson::from("y")]);
        assert_eq!(counts("artist_ids"), vec![Bson::Int64(2), Bson::Int64(1)]);
        assert_eq!(keys("_id").len(), 4);
        assert!(entry.counts.get("_id").is_none());
        assert!(entry.keys.get("album_id").is_none());
    }
}
