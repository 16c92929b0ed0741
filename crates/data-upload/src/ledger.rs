//! The upload ledger (`upload_ledger`, named in earshot-core): which converted files are loaded, and the
//! keys their records name.
//!
//! An entry is written only after every upsert of its file was acknowledged, so a run cut short between
//! the two loads that file again next time, which changes nothing (the upserts are idempotent). Entries
//! carry the server's time (`$currentDate`), which create-collections compares with its watermarks.

use std::collections::{BTreeSet, HashSet};

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
}

impl Entry {
    /// The entry of the file `key`, loaded into `collection`, from the documents it holds.
    pub fn new(key: &str, collection: &str, documents: &[Document]) -> Entry {
        let mut keys = Document::new();
        for field in LEDGER_KEY_FIELDS {
            let mut values = BTreeSet::new();
            for document in documents {
                match document.get(*field) {
                    Some(Bson::String(value)) => {
                        values.insert(value.clone());
                    }
                    Some(Bson::Array(items)) => {
                        values.extend(items.iter().filter_map(|i| i.as_str().map(str::to_string)));
                    }
                    _ => {}
                }
            }
            if !values.is_empty() {
                keys.insert(*field, values.into_iter().collect::<Vec<_>>());
            }
        }
        Entry {
            key: key.to_string(),
            collection: collection.to_string(),
            records: documents.len(),
            keys,
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
                    "$set": {"collection": &e.collection, "records": e.records as i64, "keys": e.keys.clone()},
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
