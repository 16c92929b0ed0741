//! What the builds need from `members erase`: before a member's rows and ledger entries go, the days
//! and keys their entries named are written to the ledger under an erasure key (without the member's
//! id or row ids), so that the next build rebuilds exactly the partials and documents their rows were
//! part of, from the rows that remain. The member's own derived documents (their `members` document
//! and partials, their ArtistTrackLink and t50_Tracks rows) are removed outright.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context as _, Result};
use chrono::Utc;
use earshot_core::ledger::{self, DAY, LedgerEntry};
use earshot_core::mongo;
use earshot_core::mongo::LEDGER_KEY_FIELDS;
use mongodb::Database;
use mongodb::bson::{Document, doc};

/// The key fields an erasure entry keeps: every one but the member's own (`user_id`) and the row ids.
fn kept_fields() -> impl Iterator<Item = &'static str> {
    LEDGER_KEY_FIELDS
        .iter()
        .copied()
        .filter(|f| !matches!(*f, "user_id" | "_id"))
        .chain([DAY])
}

/// Record what `member`'s rows touch as erasure entries of the ledger, and remove their own derived
/// documents; returns how many of those documents went. Run before their rows and ledger entries are
/// deleted (an erase run again finds no entry of theirs, and the entries it wrote before still wait).
pub async fn forget_member(db: &Database, member: &str) -> Result<u64> {
    let at = Utc::now();
    for collection in mongo::MEMBER_ROW_COLLECTIONS {
        let mut keys: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let fields: Vec<&str> = kept_fields().collect();
        let theirs = doc! {ledger::keys_of("user_id"): member};
        // Entries written before the ledger listed days get them from their rows (still there).
        let entries = crate::touched::entries(db, collection, theirs, &fields).await?;
        for entry in entries {
            for field in kept_fields() {
                keys.entry(field.to_string())
                    .or_default()
                    .extend(entry.keys(field).iter().cloned());
            }
        }
        keys.retain(|_, values| !values.is_empty());
        if keys.is_empty() {
            continue;
        }
        let entry = LedgerEntry {
            file: mongo::erasure_ledger_key(collection, at),
            collection: collection.to_string(),
            keys: keys
                .into_iter()
                .map(|(f, v)| (f, v.into_iter().collect()))
                .collect(),
            ..LedgerEntry::default()
        };
        db.run_command(doc! {"update": mongo::UPLOAD_LEDGER, "updates": [entry.upsert()]})
            .await
            .with_context(|| format!("recording the erase in `{}`", mongo::UPLOAD_LEDGER))?;
    }
    let mut removed = 0;
    for (collection, filter) in [
        (mongo::MEMBERS_BY_DAY, doc! {mongo::PARTIAL_ENTITY: member}),
        (mongo::MEMBERS, doc! {"_id": member}),
        (mongo::ARTIST_TRACK_LINK, doc! {"user_id": member}),
        (mongo::T50_TRACKS, doc! {"user_id": member}),
    ] {
        removed += db
            .collection::<Document>(collection)
            .delete_many(filter)
            .await
            .with_context(|| format!("removing the member's documents of `{collection}`"))?
            .deleted_count;
    }
    Ok(removed)
}

/// Remove the erasure entries, once a build has rebuilt what they name.
pub async fn forget_erasures(db: &Database) -> Result<u64> {
    let prefix = format!("^{}", regex_escape(mongo::ERASURE_LEDGER_PREFIX));
    Ok(db
        .collection::<Document>(mongo::UPLOAD_LEDGER)
        .delete_many(doc! {"_id": {"$regex": prefix}})
        .await
        .with_context(|| format!("removing erasure entries of `{}`", mongo::UPLOAD_LEDGER))?
        .deleted_count)
}

/// `text` with the characters a regular expression gives a meaning to escaped.
fn regex_escape(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            let special = "\\^$.|?*+()[]{}".contains(c);
            special.then_some('\\').into_iter().chain([c])
        })
        .collect()
}
