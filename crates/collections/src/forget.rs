//! What the builds need from `members erase`: before a member's rows and ledger entries go, what
//! their rows touch is written to the ledger under erasure keys (without the member's id or row ids):
//! for their plays, each local day they played on with that day's entities, read from the plays; for
//! their top lists, the keys their ledger entries named. The next build then rebuilds exactly the
//! partials and documents their rows were part of, from the rows that remain. The member's own derived
//! documents (their `members` document and partials, their ArtistTrackLink and t50_Tracks rows) are
//! removed outright.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context as _, Result};
use chrono::Utc;
use earshot_core::ledger::{self, DAY, LedgerEntry};
use earshot_core::mongo;
use earshot_core::mongo::LEDGER_KEY_FIELDS;
use mongodb::Database;
use mongodb::bson::{Bson, Document, doc};

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
///
/// Their plays are recorded day by day, read from the plays themselves: one entry per local day with
/// that day's entities, since a build rebuilds every entity an entry names on every day it names (one
/// entry of a member who played every day of ten years would name their every track on every day).
pub async fn forget_member(db: &Database, member: &str) -> Result<u64> {
    let at = Utc::now();
    let mut erasures = Vec::new();
    for collection in mongo::MEMBER_ROW_COLLECTIONS {
        if *collection == mongo::RAW_RECENTLY_PLAYED {
            for (day, keys) in keys_by_day(db, member).await? {
                erasures.push(LedgerEntry {
                    file: mongo::erasure_ledger_key(collection, at, Some(&day)),
                    collection: collection.to_string(),
                    keys: keys
                        .into_iter()
                        .chain([(DAY.to_string(), vec![day])])
                        .collect(),
                    // The rows are going: the day holds none more.
                    counts: [(DAY.to_string(), vec![0])].into_iter().collect(),
                    ..LedgerEntry::default()
                });
            }
            continue;
        }
        let mut keys: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let fields: Vec<&str> = kept_fields().collect();
        let theirs = doc! {ledger::keys_of("user_id"): member};
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
        erasures.push(LedgerEntry {
            file: mongo::erasure_ledger_key(collection, at, None),
            collection: collection.to_string(),
            keys: keys
                .into_iter()
                .map(|(f, v)| (f, v.into_iter().collect()))
                .collect(),
            ..LedgerEntry::default()
        });
    }
    for entries in erasures.chunks(ENTRIES_PER_COMMAND) {
        let updates: Vec<Document> = entries.iter().map(LedgerEntry::upsert).collect();
        db.run_command(doc! {"update": mongo::UPLOAD_LEDGER, "updates": updates})
            .await
            .with_context(|| format!("recording the erase in `{}`", mongo::UPLOAD_LEDGER))?;
    }
    forget_built(db, member).await?;
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

/// Take `member`'s ledger entries out of every build watermark's `built` list (their ids name the
/// member's files). The erase's own build, with no margin, leaves those lists empty anyway; this holds
/// when that build fails.
async fn forget_built(db: &Database, member: &str) -> Result<()> {
    let theirs: Vec<Bson> = mongo::distinct(
        db,
        mongo::UPLOAD_LEDGER,
        "_id",
        ledger::member_entries(member),
    )
    .await?;
    for ids in theirs.chunks(ENTRIES_PER_COMMAND) {
        db.collection::<Document>(mongo::BUILD_WATERMARKS)
            .update_many(
                doc! {},
                doc! {"$pull": {mongo::WATERMARK_BUILT: {"_id": {"$in": ids}}}},
            )
            .await
            .with_context(|| format!("updating `{}`", mongo::BUILD_WATERMARKS))?;
    }
    Ok(())
}

/// Erasure entries written by one `update` command.
const ENTRIES_PER_COMMAND: usize = 1_000;

/// Per local day of `member`'s plays, the values of each kept key field (but the day) they name.
async fn keys_by_day(
    db: &Database,
    member: &str,
) -> Result<BTreeMap<String, BTreeMap<String, Vec<String>>>> {
    let fields: Vec<&str> = kept_fields().filter(|f| *f != DAY).collect();
    let mut group = doc! {"_id": crate::daily::day()};
    for field in &fields {
        group.insert(*field, doc! {"$addToSet": format!("${field}")});
    }
    let mut cursor = db
        .collection::<Document>(mongo::RAW_RECENTLY_PLAYED)
        .aggregate([doc! {"$match": {"user_id": member}}, doc! {"$group": group}])
        .allow_disk_use(true)
        .await
        .with_context(|| {
            format!(
                "reading the days of their plays in `{}`",
                mongo::RAW_RECENTLY_PLAYED
            )
        })?;
    let mut days = BTreeMap::new();
    while cursor.advance().await? {
        let found = cursor.deserialize_current()?;
        let Some(day) = found.get_str("_id").ok().and_then(ledger::day_of) else {
            continue;
        };
        let mut keys = BTreeMap::new();
        for field in &fields {
            let mut values: BTreeSet<String> = BTreeSet::new();
            for value in found.get_array(field).map(|v| v.as_slice()).unwrap_or(&[]) {
                match value {
                    Bson::String(s) => {
                        values.insert(s.clone());
                    }
                    Bson::Array(list) => {
                        values.extend(list.iter().filter_map(|v| v.as_str().map(str::to_string)))
                    }
                    _ => {}
                }
            }
            if !values.is_empty() {
                keys.insert(field.to_string(), values.into_iter().collect());
            }
        }
        days.insert(day.to_string(), keys);
    }
    Ok(days)
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
