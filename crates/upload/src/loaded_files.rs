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
use earshot_core::ledger::LedgerEntry;

/// The keys under `prefix` of the files already loaded into `collection`. Read by a range of `_id`
/// (the ledger's own index), so that a kind with few files (imported histories) does not read the
/// entries of one with many (the hourly pages), and MongoDB answers from the index alone.
pub async fn loaded(db: &Database, collection: &str, prefix: &str) -> Result<HashSet<String>> {
    let mut filter = doc! {earshot_core::ledger::COLLECTION: collection};
    if let Some(upper) = prefix_upper_bound(prefix) {
        filter.insert("_id", doc! {"$gte": prefix, "$lt": upper});
    }
    let mut cursor = db
        .collection::<Document>(UPLOAD_LEDGER)
        .find(filter)
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

/// The least string above every string that starts with `prefix` (its last character's successor);
/// `None` for an empty prefix, or one ending in the last character.
fn prefix_upper_bound(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    let last = chars.pop()?;
    let next = char::from_u32(last as u32 + 1)?;
    chars.push(next);
    Some(chars.into_iter().collect())
}

/// Record files whose upserts were all acknowledged (an entry loaded again is updated, its time too).
pub async fn record(db: &Database, entries: &mut Vec<LedgerEntry>) -> Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let updates: Vec<Document> = entries.iter().map(LedgerEntry::upsert).collect();
    crate::upsert::run_updates(db, UPLOAD_LEDGER, updates)
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
    use super::prefix_upper_bound;

    #[test]
    fn a_prefix_range_holds_exactly_the_keys_under_it() {
        let upper = prefix_upper_bound("converted/recently_played/").unwrap();
        assert_eq!(upper, "converted/recently_played0");
        for inside in [
            "converted/recently_played/user=ana/20241111T090000.000Z.jsonl",
            "converted/recently_played/",
        ] {
            assert!(inside >= "converted/recently_played/" && inside < upper.as_str());
        }
        for outside in [
            "converted/recently_playedX",
            "converted/streaming_history/user=ana/a.jsonl",
            "converted/recently_played",
        ] {
            assert!(!(outside >= "converted/recently_played/" && outside < upper.as_str()));
        }
        assert_eq!(prefix_upper_bound(""), None);
    }
}
