//! The upload ledger (`upload_ledger`, named in earshot-core): which converted files are loaded, and the
//! keys their records name.
//!
//! An entry is written only after every upsert of its file was acknowledged, so a run cut short between
//! the two loads that file again next time, which changes nothing (the upserts are idempotent). Entries
//! carry the server's time (`$currentDate`), which create-collections compares with its watermarks,
//! and how many of the file's records name each key value (`counts.<field>`, aligned with
//! `keys.<field>`), from which create-collections sizes its batches without reading the rows.

use std::collections::HashSet;

use anyhow::{Context as _, Result};
use earshot_core::mongo::UPLOAD_LEDGER;
use mongodb::Database;
use mongodb::bson::{Document, doc};

/// A file to record once its upserts are acknowledged (earshot-core's type, shared with its readers).
pub use earshot_core::ledger::LedgerEntry as Entry;

/// The keys of the files already loaded into `collection`.
pub async fn loaded(db: &Database, collection: &str) -> Result<HashSet<String>> {
    let mut cursor = db
        .collection::<Document>(UPLOAD_LEDGER)
        .find(doc! {earshot_core::ledger::COLLECTION: collection})
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
    let updates: Vec<Document> = entries.iter().map(Entry::upsert).collect();
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
