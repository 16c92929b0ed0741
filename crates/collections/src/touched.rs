//! What the upload ledger says new rows touch: per local day, the entities its plays name on it.
//!
//! Every entry lists the days its plays fall on (`keys.day`, `counts.day`). An entry written before the
//! ledger listed days gets them from its rows (read by `_id`). An entry's entities are taken to touch
//! every one of its days: an hourly page spans a day or two, so the cross product rebuilds few
//! partials that did not change (and rebuilding one changes nothing).

use std::collections::{BTreeMap, BTreeSet, HashSet};

use anyhow::{Context as _, Result};
use earshot_core::ledger::{self, DAY, LedgerEntry};
use earshot_core::mongo;
use mongodb::Database;
use mongodb::bson::{DateTime, Document, doc};

use crate::batches::every_day;
use crate::daily::DAY_FIELD;

/// Rows a day is taken to hold when the ledger does not count it (rows loaded before the ledger
/// listed days): keeps a rebuild's batch of such days to about ten days of a large group.
pub const UNCOUNTED_DAY_ROWS: u64 = 10_000;

/// Ids read at once when looking up the days of an old entry's rows.
const IDS_PER_LOOKUP: usize = 5_000;

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

/// The entries of `collection` that match `filter`, with the keys of `fields`, their days (those of
/// a recently-played entry written before the ledger listed days read from its rows) and row ids.
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
    if collection == mongo::RAW_RECENTLY_PLAYED {
        fill_days(db, &mut entries).await?;
    }
    Ok(entries)
}

/// Days for the entries written before the ledger listed them, from their rows' `played_at_local`.
async fn fill_days(db: &Database, entries: &mut [LedgerEntry]) -> Result<()> {
    let raw = db.collection::<Document>(mongo::RAW_RECENTLY_PLAYED);
    for entry in entries.iter_mut().filter(|e| e.keys(DAY).is_empty()) {
        let mut counts: BTreeMap<String, i64> = BTreeMap::new();
        for ids in entry.keys("_id").chunks(IDS_PER_LOOKUP) {
            let mut cursor = raw
                .find(doc! {"_id": {"$in": ids}})
                .projection(doc! {DAY_FIELD: 1})
                .await
                .with_context(|| format!("reading the days of `{}`'s rows", entry.file))?;
            while cursor.advance().await? {
                if let Some(day) = cursor
                    .current()
                    .get_str(DAY_FIELD)
                    .ok()
                    .and_then(ledger::day_of)
                {
                    *counts.entry(day.to_string()).or_default() += 1;
                }
            }
        }
        entry
            .keys
            .insert(DAY.to_string(), counts.keys().cloned().collect());
        entry
            .counts
            .insert(DAY.to_string(), counts.into_values().collect());
    }
    Ok(())
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

/// The days with plays, with about how many plays each holds: the days the ledger counts when every
/// entry lists its days; otherwise every day from the first play's to the last play's (a day more each
/// side, in case the zone of the local times changed), [`UNCOUNTED_DAY_ROWS`] for a day the ledger
/// does not count (a day without plays costs an index lookup).
pub async fn every_played_day(db: &Database) -> Result<Vec<(String, u64)>> {
    let raw = db.collection::<Document>(mongo::RAW_RECENTLY_PLAYED);
    let end = |direction: i32| {
        let raw = raw.clone();
        async move {
            let found = raw
                .find_one(doc! {DAY_FIELD: {"$type": "string"}})
                .sort(doc! {"played_at": direction})
                .projection(doc! {DAY_FIELD: 1})
                .await
                .with_context(|| format!("reading `{}`", mongo::RAW_RECENTLY_PLAYED))?;
            Ok::<_, anyhow::Error>(found.and_then(|d| {
                let day = d.get_str(DAY_FIELD).ok().and_then(ledger::day_of)?;
                let date = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()?;
                let date = if direction > 0 {
                    date.pred_opt()
                } else {
                    date.succ_opt()
                }?;
                Some(date.format("%Y-%m-%d").to_string())
            }))
        }
    };
    let (Some(first), Some(last)) = (end(1).await?, end(-1).await?) else {
        return Ok(Vec::new());
    };
    let (counted, complete) = ledger_day_counts(db).await?;
    if complete {
        // Every entry lists its days: the days it counts are the days with plays.
        return Ok(counted.into_iter().collect());
    }
    Ok(every_day(&first, &last)
        .into_iter()
        .map(|day| {
            let rows = counted.get(&day).copied().unwrap_or(UNCOUNTED_DAY_ROWS);
            (day, rows)
        })
        .collect())
}

/// The rows per day the ledger counts, over every recently-played entry, and whether every entry
/// lists its days (entries written before the ledger listed them do not).
async fn ledger_day_counts(db: &Database) -> Result<(BTreeMap<String, u64>, bool)> {
    let mut cursor = db
        .collection::<LedgerEntry>(mongo::UPLOAD_LEDGER)
        .find(doc! {ledger::COLLECTION: mongo::RAW_RECENTLY_PLAYED})
        .projection(doc! {ledger::keys_of(DAY): 1, ledger::counts_of(DAY): 1})
        .await
        .with_context(|| format!("reading `{}`", mongo::UPLOAD_LEDGER))?;
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut complete = true;
    while cursor.advance().await? {
        let entry = cursor.deserialize_current()?;
        complete &= !entry.keys(DAY).is_empty();
        for (i, day) in entry.keys(DAY).iter().enumerate() {
            *counts.entry(day.clone()).or_default() += entry.count(DAY, i);
        }
    }
    Ok((counts, complete))
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
