//! What the upload ledger says new rows touch: per local day, the entities its plays name on it.
//!
//! Every entry lists the days its plays fall on (`keys.day`, `counts.day`). An entry's entities are
//! taken to touch every one of its days: an hourly page spans a day or two, so the cross product rebuilds few
//! partials that did not change (and rebuilding one changes nothing).

use std::collections::{BTreeMap, BTreeSet, HashSet};

use anyhow::{Context as _, Result};
use earshot_core::ledger::{self, DAY, LedgerEntry};
use earshot_core::mongo;
use mongodb::Database;
use mongodb::bson::{DateTime, Document, doc};

/// One touched local day.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Day {
    /// How many new rows fall on it (the entries' counts).
    pub rows: u64,
    /// The entities they name, per raw key field (`track_id`, `artist_ids`, …).
    pub entities: BTreeMap<String, BTreeSet<String>>,
}

/// Touched days, in order.
pub type Touched = BTreeMap<String, Day>;

/// The ledger entries a build has still to build: those loaded after its watermark's time, but the
/// ones it built already (loaded within its margin).
///
/// The ledger is read by load time alone (`loaded_at` is indexed), and the built entries are left out
/// here, not in the query: a `$nor` of them is matched against every candidate on any server, which
/// made a build with nothing to do cost seconds when many entries were loaded within the margin.
#[derive(Debug, Clone)]
pub struct Unbuilt {
    after: DateTime,
    built: HashSet<(String, DateTime)>,
}

impl Unbuilt {
    /// Entries loaded after `after`, but the `built` ones (by id and load time).
    pub fn new(after: DateTime, built: &[(String, DateTime)]) -> Unbuilt {
        Unbuilt {
            after,
            built: built.iter().cloned().collect(),
        }
    }

    /// The ledger filter of the candidates: loaded after the watermark's time.
    pub fn filter(&self) -> Document {
        doc! {ledger::LOADED_AT: {"$gt": self.after}}
    }

    /// Whether `entry` (read with its load time) is still to build.
    pub fn keeps(&self, entry: &LedgerEntry) -> bool {
        entry
            .loaded_at
            .is_none_or(|at| !self.built.contains(&(entry.file.clone(), at)))
    }
}

/// The recently-played entries still to build (a watermark's), with the keys of `fields` and their
/// days.
pub async fn entries_since(
    db: &Database,
    unbuilt: &Unbuilt,
    fields: &[&str],
) -> Result<Vec<LedgerEntry>> {
    let mut found = entries(db, mongo::RAW_RECENTLY_PLAYED, unbuilt.filter(), fields).await?;
    found.retain(|entry| unbuilt.keeps(entry));
    Ok(found)
}

/// The entries of `collection` loaded after `through`, by id with their load times: what a build
/// that reads every row (a first build, a rebuild) has built beyond its watermark.
pub async fn loaded_after(
    db: &Database,
    collection: &str,
    through: DateTime,
) -> Result<Vec<(String, DateTime)>> {
    let mut cursor = db
        .collection::<LedgerEntry>(mongo::UPLOAD_LEDGER)
        .find(doc! {ledger::COLLECTION: collection, ledger::LOADED_AT: {"$gt": through}})
        .projection(doc! {ledger::LOADED_AT: 1})
        .await
        .with_context(|| format!("reading `{}`", mongo::UPLOAD_LEDGER))?;
    let mut loaded = Vec::new();
    while cursor.advance().await? {
        let entry = cursor.deserialize_current()?;
        loaded.extend(entry.loaded_at.map(|at| (entry.file, at)));
    }
    Ok(loaded)
}

/// Of `entries`, those loaded after `through`, by id with their load times.
pub fn built_after(entries: &[LedgerEntry], through: DateTime) -> Vec<(String, DateTime)> {
    entries
        .iter()
        .filter_map(|e| {
            e.loaded_at
                .filter(|at| *at > through)
                .map(|at| (e.file.clone(), at))
        })
        .collect()
}

/// The entries of `collection` that match `filter`, with the keys of `fields`, their days and row ids.
pub async fn entries(
    db: &Database,
    collection: &str,
    mut filter: Document,
    fields: &[&str],
) -> Result<Vec<LedgerEntry>> {
    let mut projection = doc! {
        ledger::keys_of(DAY): 1,
        ledger::counts_of(DAY): 1,
        ledger::keys_of("_id"): 1,
        ledger::LOADED_AT: 1,
    };
    for field in fields {
        projection.insert(ledger::keys_of(field), 1);
    }
    filter.insert(ledger::COLLECTION, collection);
    let mut cursor = db
        .collection::<LedgerEntry>(mongo::UPLOAD_LEDGER)
        .find(filter)
        .projection(projection)
        .await
        .with_context(|| format!("reading `{}`", mongo::UPLOAD_LEDGER))?;
    let mut entries = Vec::new();
    while cursor.advance().await? {
        entries.push(cursor.deserialize_current()?);
    }
    Ok(entries)
}

/// Per day the entries name, its new rows and the values of each of `fields` they name.
pub fn touched(entries: &[LedgerEntry], fields: &[&str]) -> Touched {
    let mut days = Touched::new();
    for entry in entries {
        for (i, day) in entry.keys(DAY).iter().enumerate() {
            let touched = days.entry(day.clone()).or_default();
            touched.rows += entry.count(DAY, i);
            for field in fields {
                touched
                    .entities
                    .entry(field.to_string())
                    .or_default()
                    .extend(entry.keys(field).iter().cloned());
            }
        }
    }
    days
}

/// The days with plays, with how many plays each holds, as the ledger counts them: every entry lists
/// the days of its plays.
pub async fn every_played_day(db: &Database) -> Result<Vec<(String, u64)>> {
    let mut cursor = db
        .collection::<LedgerEntry>(mongo::UPLOAD_LEDGER)
        .find(doc! {ledger::COLLECTION: mongo::RAW_RECENTLY_PLAYED})
        .projection(doc! {ledger::keys_of(DAY): 1, ledger::counts_of(DAY): 1})
        .await
        .with_context(|| format!("reading `{}`", mongo::UPLOAD_LEDGER))?;
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    while cursor.advance().await? {
        let entry = cursor.deserialize_current()?;
        for (i, day) in entry.keys(DAY).iter().enumerate() {
            *counts.entry(day.clone()).or_default() += entry.count(DAY, i);
        }
    }
    Ok(counts.into_iter().collect())
}

/// How many plays each of `days` held at the last build, from the `members` partials (which count
/// every play).
pub async fn plays_on(db: &Database, days: &[&str]) -> Result<BTreeMap<String, u64>> {
    let mut cursor = db
        .collection::<Document>(mongo::MEMBERS_BY_DAY)
        .find(doc! {mongo::PARTIAL_DAY: {"$in": days}})
        .projection(doc! {mongo::PARTIAL_DAY: 1, "plays": 1})
        .await
        .with_context(|| format!("reading `{}`", mongo::MEMBERS_BY_DAY))?;
    let mut plays: BTreeMap<String, u64> = BTreeMap::new();
    while cursor.advance().await? {
        let partial = cursor.deserialize_current()?;
        if let Ok(day) = partial.get_str(mongo::PARTIAL_DAY) {
            let n = partial.get("plays").and_then(mongo::bson_u64).unwrap_or(0);
            *plays.entry(day.to_string()).or_default() += n;
        }
    }
    Ok(plays)
}
