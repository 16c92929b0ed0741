//! Running the daily builds ([`crate::daily`]): the partials of the touched (entity, day) pairs rebuilt
//! from those days' plays, then each touched entity folded from its partials.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context as _, Result};
use earshot_core::mongo::{self, PARTIAL_DAY, PARTIAL_ENTITY};
use earshot_core::progress::Progress;
use mongodb::Database;
use mongodb::bson::{Bson, Document, doc};
use tracing::info;

use crate::batches::{KEYS_PER_BATCH, ROWS_PER_BATCH, day_ranges, pack_batches};
use crate::daily::{Daily, Wanted, days_match};
use crate::touched::{self, Touched};

/// Partials one fold aggregation reads at most.
pub const PARTIALS_PER_BATCH: u64 = 100_000;

/// Partial ids one delete names at most.
const IDS_PER_DELETE: usize = 10_000;

/// Local days one partial aggregation reads at most.
pub const DAYS_PER_BATCH: usize = 366;

/// What a daily build did, for its log line.
#[derive(Debug, Clone, Copy, Default)]
pub struct Work {
    /// Plays on the days whose partials were rebuilt (an upper bound on the plays read).
    pub plays: u64,
    /// Partial aggregations.
    pub partial_batches: usize,
    /// Derived documents folded.
    pub folded: usize,
    /// Fold aggregations.
    pub fold_batches: usize,
}

/// Every partial and derived document of `dailies` from every play: the partials day by day, in
/// batches of about [`ROWS_PER_BATCH`] plays (the ledger counts each day's), then every entity folded.
pub async fn rebuild(db: &Database, dailies: &[Daily]) -> Result<Work> {
    for daily in dailies {
        db.collection::<Document>(daily.partials)
            .drop()
            .await
            .with_context(|| format!("emptying `{}`", daily.partials))?;
        mongo::ensure_indexes(db, daily.partials).await?;
        db.collection::<Document>(daily.into)
            .delete_many(doc! {})
            .await
            .with_context(|| format!("emptying `{}`", daily.into))?;
    }
    let days = touched::every_played_day(db).await?;
    let mut work = Work {
        plays: days.iter().map(|(_, rows)| rows).sum(),
        ..Work::default()
    };
    let batches = pack_batches(days, ROWS_PER_BATCH, DAYS_PER_BATCH);
    let progress = Progress::new(
        "Building the per-day partials",
        "days batches",
        batches.len() as u64,
    );
    for days in &batches {
        let ranges = day_ranges(days.iter().map(String::as_str));
        for daily in dailies {
            let mut pipeline = vec![doc! {"$match": days_match(&ranges)}];
            pipeline.extend(daily.partial_pipeline(None));
            aggregate(db, mongo::RAW_RECENTLY_PLAYED, pipeline, daily.partials).await?;
            work.partial_batches += 1;
        }
        progress.inc(1);
    }
    progress.finish();
    for daily in dailies {
        let keys = partial_counts(db, daily).await?;
        work.folded += keys.len();
        for batch in pack_batches(keys, PARTIALS_PER_BATCH, KEYS_PER_BATCH) {
            aggregate(
                db,
                daily.partials,
                daily.fold_pipeline(Some(&batch)),
                daily.into,
            )
            .await?;
            work.fold_batches += 1;
        }
    }
    Ok(work)
}

/// Each fold key of `daily`'s partials with how many partials name it, in order.
async fn partial_counts(db: &Database, daily: &Daily) -> Result<Vec<(String, u64)>> {
    let mut cursor = db
        .collection::<Document>(daily.partials)
        .find(doc! {})
        .projection(doc! {daily.fold_key: 1})
        .await
        .with_context(|| format!("reading `{}`", daily.partials))?;
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    while cursor.advance().await? {
        for key in fold_keys_of(daily, &cursor.deserialize_current()?) {
            *counts.entry(key).or_default() += 1;
        }
    }
    Ok(counts.into_iter().collect())
}

/// The fold keys a partial names: its entity, or the URLs its images list.
fn fold_keys_of(daily: &Daily, partial: &Document) -> Vec<String> {
    match daily.fold_key.split_once('.') {
        None => partial
            .get_str(daily.fold_key)
            .map(|k| vec![k.to_string()])
            .unwrap_or_default(),
        Some((list, field)) => partial
            .get_array(list)
            .map(|items| {
                items
                    .iter()
                    .filter_map(Bson::as_document)
                    .filter_map(|item| item.get_str(field).ok().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// One partial aggregation's share: days, and the entities of each whose partials it rebuilds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct DayBatch {
    wanted: Wanted,
    /// Every entity `wanted` names.
    entities: BTreeSet<String>,
    plays: u64,
}

impl DayBatch {
    fn days(&self) -> impl Iterator<Item = &str> {
        self.wanted.keys().map(String::as_str)
    }

    /// Whether the partial `(entity, day)` is one this batch rebuilds.
    fn wants(&self, partial: &Document) -> bool {
        let (Ok(entity), Ok(day)) = (
            partial.get_str(PARTIAL_ENTITY),
            partial.get_str(PARTIAL_DAY),
        ) else {
            return false;
        };
        self.wanted.get(day).is_some_and(|e| e.contains(entity))
    }
}

/// Touched days cut into batches of at most [`DAYS_PER_BATCH`] days, about [`ROWS_PER_BATCH`] plays
/// and [`KEYS_PER_BATCH`] entities (a day naming more entities is split among several batches).
fn day_batches(days: Vec<(String, u64, Vec<String>)>) -> Vec<DayBatch> {
    let mut batches: Vec<DayBatch> = Vec::new();
    let mut batch = DayBatch::default();
    for (day, plays, entities) in days {
        for chunk in entities.chunks(KEYS_PER_BATCH) {
            let new: usize = chunk
                .iter()
                .filter(|e| !batch.entities.contains(*e))
                .count();
            let has_day = batch.wanted.contains_key(&day);
            // A new day would pass the day or play limit; any chunk, the entity limit.
            let full = !has_day
                && (batch.wanted.len() == DAYS_PER_BATCH || batch.plays + plays > ROWS_PER_BATCH)
                || batch.entities.len() + new > KEYS_PER_BATCH;
            if !batch.wanted.is_empty() && full {
                batches.push(std::mem::take(&mut batch));
            }
            if !batch.wanted.contains_key(&day) {
                batch.plays += plays;
            }
            batch
                .wanted
                .entry(day.clone())
                .or_default()
                .extend(chunk.iter().cloned());
            batch.entities.extend(chunk.iter().cloned());
        }
    }
    if !batch.wanted.is_empty() {
        batches.push(batch);
    }
    batches
}

/// Bring `daily` up to date with the `touched` days: rebuild the partials of the entities they name on
/// them, from those days' plays alone, then fold every entity whose partials changed.
pub async fn update(
    db: &Database,
    daily: &Daily,
    touched: &Touched,
    days_held: usize,
) -> Result<Work> {
    let wanted: Vec<(&String, Vec<String>)> = touched
        .iter()
        .filter_map(|(day, t)| {
            let entities = t.entities.get(daily.key).filter(|e| !e.is_empty())?;
            Some((day, entities.iter().cloned().collect()))
        })
        .collect();
    if wanted.is_empty() {
        return Ok(Work::default());
    }
    let days: Vec<&str> = wanted.iter().map(|(d, _)| d.as_str()).collect();
    let before = touched::plays_on(db, &days).await?;
    let days = wanted
        .into_iter()
        .map(|(day, entities)| {
            let plays = before.get(day).copied().unwrap_or(0) + touched[day].rows;
            (day.clone(), plays, entities)
        })
        .collect();
    let mut work = Work::default();
    let mut fold: BTreeSet<String> = BTreeSet::new();
    // Keys a rebuilt day no longer names: they may have no partial left (an erase), and lose their
    // document then.
    let mut dropped: BTreeSet<String> = BTreeSet::new();
    for batch in day_batches(days) {
        work.plays += batch.plays;
        work.partial_batches += 1;
        let had = wanted_partials(db, daily, &batch).await?;
        let ids: Vec<&Bson> = had.iter().filter_map(|p| p.get("_id")).collect();
        // In slices, so that no command nears the 16 MB a BSON document may hold.
        for ids in ids.chunks(IDS_PER_DELETE) {
            db.collection::<Document>(daily.partials)
                .delete_many(doc! {"_id": {"$in": ids}})
                .await
                .with_context(|| format!("clearing partials of `{}`", daily.partials))?;
        }
        let had: BTreeSet<String> = had.iter().flat_map(|p| fold_keys_of(daily, p)).collect();
        let ranges = day_ranges(batch.days());
        let mut pipeline = vec![doc! {"$match": days_match(&ranges)}];
        if let Some(theirs) = daily.plays_of(&batch.wanted) {
            pipeline.push(doc! {"$match": theirs});
        }
        pipeline.extend(daily.partial_pipeline(Some(&batch.wanted)));
        aggregate(db, mongo::RAW_RECENTLY_PLAYED, pipeline, daily.partials).await?;
        let has: BTreeSet<String> = wanted_partials(db, daily, &batch)
            .await?
            .iter()
            .flat_map(|p| fold_keys_of(daily, p))
            .collect();
        dropped.extend(had.iter().filter(|k| !has.contains(*k)).cloned());
        // The URLs the partials listed before and after (a URL no longer listed is folded or
        // removed too); the entities themselves otherwise.
        if daily.fold_key == PARTIAL_ENTITY {
            fold.extend(batch.entities);
        } else {
            fold.extend(had);
        }
        fold.extend(has);
    }
    let keys: Vec<String> = fold.into_iter().collect();
    work.folded = keys.len();
    work.fold_batches = fold_keys(db, daily, &keys, days_held).await?;
    remove_unnamed(db, daily, &dropped).await?;
    Ok(work)
}

/// The partials `batch` rebuilds that exist (`_id`, entity, day and fold keys): read through the
/// (entity, day) index over every pair of its entities and days, and kept when the batch wants the
/// pair, so that an entity wanted on one day keeps its partials of the batch's other days.
async fn wanted_partials(db: &Database, daily: &Daily, batch: &DayBatch) -> Result<Vec<Document>> {
    let entities: Vec<&String> = batch.entities.iter().collect();
    let days: Vec<&str> = batch.days().collect();
    let mut cursor = db
        .collection::<Document>(daily.partials)
        .find(doc! {PARTIAL_ENTITY: {"$in": entities}, PARTIAL_DAY: {"$in": days}})
        .projection(doc! {"_id": 1, PARTIAL_ENTITY: 1, PARTIAL_DAY: 1, daily.fold_key: 1})
        .await
        .with_context(|| format!("reading `{}`", daily.partials))?;
    let mut wanted = Vec::new();
    while cursor.advance().await? {
        let partial = cursor.deserialize_current()?;
        if batch.wants(&partial) {
            wanted.push(partial);
        }
    }
    Ok(wanted)
}

/// Remove the derived documents of those of `keys` that no partial names any more.
async fn remove_unnamed(db: &Database, daily: &Daily, keys: &BTreeSet<String>) -> Result<()> {
    let partials = db.collection::<Document>(daily.partials);
    let mut gone = Vec::new();
    for key in keys {
        let named = partials
            .find_one(doc! {daily.fold_key: key})
            .projection(doc! {"_id": 1})
            .await
            .with_context(|| format!("reading `{}`", daily.partials))?;
        if named.is_none() {
            gone.push(key);
        }
    }
    if !gone.is_empty() {
        db.collection::<Document>(daily.into)
            .delete_many(doc! {"_id": {"$in": &gone}})
            .await
            .with_context(|| format!("removing documents of `{}`", daily.into))?;
        info!(
            collection = daily.into,
            removed = gone.len(),
            "No play left of some documents: removed."
        );
    }
    Ok(())
}

/// How many days have plays (the `members` partials' days): a key has at most one partial a day.
pub async fn days_held(db: &Database) -> Result<usize> {
    Ok(
        mongo::distinct(db, mongo::MEMBERS_BY_DAY, PARTIAL_DAY, doc! {})
            .await?
            .len(),
    )
}

/// Fold the derived documents of `keys` from their partials; returns how many aggregations ran. A
/// batch holds at most [`PARTIALS_PER_BATCH`] partials (`days_held` each, at most).
async fn fold_keys(
    db: &Database,
    daily: &Daily,
    keys: &[String],
    days_held: usize,
) -> Result<usize> {
    let per_batch = (PARTIALS_PER_BATCH as usize / days_held.max(1)).clamp(1, KEYS_PER_BATCH);
    let mut batches = 0;
    for batch in keys.chunks(per_batch) {
        let pipeline = daily.fold_pipeline(Some(batch));
        aggregate(db, daily.partials, pipeline, daily.into).await?;
        batches += 1;
    }
    Ok(batches)
}

/// Run `pipeline` (ending in a `$merge` into `into`) on `from`.
async fn aggregate(db: &Database, from: &str, pipeline: Vec<Document>, into: &str) -> Result<()> {
    let started = std::time::Instant::now();
    db.collection::<Document>(from)
        .aggregate(pipeline)
        .allow_disk_use(true)
        .await
        .with_context(|| format!("building `{into}` from `{from}`"))?;
    tracing::debug!(
        from,
        into,
        ms = started.elapsed().as_millis() as u64,
        "Aggregated."
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(d: &str, plays: u64, entities: &[&str]) -> (String, u64, Vec<String>) {
        (
            d.to_string(),
            plays,
            entities.iter().map(|e| e.to_string()).collect(),
        )
    }

    #[test]
    fn day_batches_hold_the_limits_and_every_pair() {
        let days = vec![
            day("2024-01-01", 60_000, &["a", "b"]),
            day("2024-01-02", 60_000, &["b", "c"]),
            day("2024-01-03", 10, &["d"]),
        ];
        let batches = day_batches(days);
        assert_eq!(batches.len(), 2, "{batches:?}");
        let days = |b: &DayBatch| b.days().map(str::to_string).collect::<Vec<_>>();
        assert_eq!(days(&batches[0]), ["2024-01-01"]);
        assert_eq!(days(&batches[1]), ["2024-01-02", "2024-01-03"]);
        // Each day keeps its own entities: `d` is wanted on the 3rd only.
        assert_eq!(
            batches[1].wanted["2024-01-03"],
            BTreeSet::from(["d".to_string()])
        );
        assert_eq!(
            batches[1].wanted["2024-01-02"],
            BTreeSet::from(["b".to_string(), "c".to_string()])
        );
        // A day naming more entities than a batch holds is split, each part keeping the day.
        let many: Vec<String> = (0..KEYS_PER_BATCH + 5)
            .map(|i| format!("e{i:05}"))
            .collect();
        let batches = day_batches(vec![("2024-01-01".into(), 5, many.clone())]);
        assert_eq!(batches.len(), 2);
        assert!(batches.iter().all(|b| days(b) == ["2024-01-01"]));
        let all: BTreeSet<String> = batches.into_iter().flat_map(|b| b.entities).collect();
        assert_eq!(all, many.into_iter().collect());
        // Never more days than a batch holds.
        let long: Vec<_> = (1..=40)
            .map(|d| day(&format!("2024-01-{d:02}"), 1, &["x"]))
            .collect();
        assert!(
            day_batches(long)
                .iter()
                .all(|b| b.wanted.len() <= DAYS_PER_BATCH)
        );
    }
}
