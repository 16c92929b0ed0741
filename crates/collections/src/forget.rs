//! What the builds need from `members erase`, before a member's rows and ledger entries go:
//! - their plays' share of the daily builds is subtracted: their day partials (one per entity and day
//!   they played it) are removed, and the monthly partials and documents those were part of are
//!   folded again from the partials left ([`crate::fold::subtract_member`]), without reading a play;
//! - what their top lists touch is written to the ledger under erasure keys (without the member's id
//!   or row ids): the keys their ledger entries named. The next build then rebuilds exactly the
//!   documents their rows were part of, from the rows that remain;
//! - their own derived documents (their ArtistTrackLink and t50_Tracks rows) are removed outright.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context as _, Result};
use chrono::Utc;
use earshot_core::ledger::{self, DAY, LedgerEntry};
use tracing::info;

use crate::daily::DAILY;
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

/// Subtract `member`'s plays from the daily builds, record what their other rows touch as erasure
/// entries of the ledger, and remove their own derived documents; returns how many of their
/// partials and documents went. Run before their rows and ledger entries are deleted (an erase run
/// again finds no partial or entry of theirs, and the entries it wrote before still wait).
pub async fn forget_member(db: &Database, member: &str) -> Result<u64> {
    let at = Utc::now();
    let mut erasures = Vec::new();
    for collection in mongo::MEMBER_ROW_COLLECTIONS {
        if *collection == mongo::RAW_RECENTLY_PLAYED {
            // Their plays' share of the daily builds is subtracted below.
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
    let months_held = crate::fold::months_held(db).await?;
    let mut removed = 0;
    for daily in &DAILY {
        let (work, partials) = crate::fold::subtract_member(db, daily, member, months_held).await?;
        info!(
            collection = daily.into,
            partials,
            month_batches = work.month_batches,
            folded = work.folded,
            fold_batches = work.fold_batches,
            "Took a member's share out of a derived collection."
        );
        removed += partials;
    }
    for (collection, filter) in [
        // Left by a build of an earlier model, whose partials named no member: the next build
        // rebuilds those from scratch.
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
