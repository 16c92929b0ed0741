//! Running the daily builds ([`crate::daily`]): the day partials of the touched (entity, day) pairs
//! rebuilt from those days' plays, the monthly partials of their (entity, month) pairs folded from
//! their day partials, then each touched entity folded from its monthly partials. An erase removes a
//! member's day partials and folds the months and entities they were part of the same way
//! ([`subtract_member`]).

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context as _, Result};
use earshot_core::mongo::{self, PARTIAL_DAY, PARTIAL_ENTITY, PARTIAL_MEMBER};
use earshot_core::progress::Progress;
use mongodb::Database;
use mongodb::bson::{Bson, Document, doc};
use tracing::info;

use crate::batches::{KEYS_PER_BATCH, ROWS_PER_BATCH, day_ranges, pack_batches};
use crate::daily::{Daily, Wanted, days_match, months_of};
use crate::touched::{self, Touched};

/// Partials one fold aggregation (of day partials into months, or of months into documents) reads
/// at most.
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
    /// Monthly partials' aggregations.
    pub month_batches: usize,
    /// Derived documents folded.
    pub folded: usize,
    /// Fold aggregations.
    pub fold_batches: usize,
}

/// Every partial and derived document of `dailies` from every play: the partials day by day, in
/// batches of about [`ROWS_PER_BATCH`] plays (the ledger counts each day's), then every entity folded.
pub async fn rebuild(db: &Database, dailies: &[Daily]) -> Result<Work> {
    for daily in dailies {
        for partials in [daily.partials, daily.months] {
            db.collection::<Document>(partials)
                .drop()
                .await
                .with_context(|| format!("emptying `{partials}`"))?;
            mongo::ensure_indexes(db, partials).await?;
        }
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
        let entities = key_counts(db, daily.partials, PARTIAL_ENTITY).await?;
        for batch in pack_batches(entities, PARTIALS_PER_BATCH, KEYS_PER_BATCH) {
            let mut pipeline = vec![doc! {"$match": {PARTIAL_ENTITY: {"$in": batch}}}];
            pipeline.extend(daily.month_pipeline(None));
            aggregate(db, daily.partials, pipeline, daily.months).await?;
            work.month_batches += 1;
        }
        let keys = key_counts(db, daily.months, daily.fold_key).await?;
        work.folded += keys.len();
        for batch in pack_batches(keys, PARTIALS_PER_BATCH, KEYS_PER_BATCH) {
            aggregate(
                db,
                daily.months,
                daily.fold_pipeline(Some(&batch)),
                daily.into,
            )
            .await?;
            work.fold_batches += 1;
        }
    }
    Ok(work)
}

/// Each value of `field` in `partials` with how many partials name it, in order.
async fn key_counts(db: &Database, partials: &str, field: &str) -> Result<Vec<(String, u64)>> {
    let mut cursor = db
        .collection::<Document>(partials)
        .find(doc! {})
        .projection(doc! {field: 1})
        .await
        .with_context(|| format!("reading `{partials}`"))?;
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    while cursor.advance().await? {
        for key in keys_of(field, &cursor.deserialize_current()?) {
            *counts.entry(key).or_default() += 1;
        }
    }
    Ok(counts.into_iter().collect())
}

/// The fold keys a partial names: its entity, or the URLs its images list.
fn fold_keys_of(daily: &Daily, partial: &Document) -> Vec<String> {
    keys_of(daily.fold_key, partial)
}

/// The values of `field` in `partial`: a string field, or `list.field` over a list of documents.
fn keys_of(field: &str, partial: &Document) -> Vec<String> {
    match field.split_once('.') {
        None => partial
            .get_str(field)
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

/// Bring `daily` up to date with the `touched` days: rebuild the day partials of the entities they name
/// on them, from those days' plays alone, then the monthly partials of those entities in those days'
/// months, then fold every entity whose partials changed.
pub async fn update(
    db: &Database,
    daily: &Daily,
    touched: &Touched,
    months_held: usize,
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
    let mut rebuilt = Wanted::new();
    for batch in day_batches(days) {
        for (day, entities) in &batch.wanted {
            rebuilt
                .entry(day.clone())
                .or_default()
                .extend(entities.iter().cloned());
        }
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
    let months = months_of(&rebuilt);
    work.month_batches = fold_months(db, daily, &months).await?;
    let keys: Vec<String> = fold.into_iter().collect();
    work.folded = keys.len();
    // The months these plays start count too.
    let months_held = months_held + months.len();
    work.fold_batches = fold_keys(db, daily, &keys, months_held).await?;
    remove_unnamed(db, daily, &dropped).await?;
    Ok(work)
}

/// Take `member`'s share out of `daily`: remove their day partials (found through the member index,
/// without reading a play), fold again the monthly partials of the (entity, month) pairs they were
/// part of from the day partials left, then the documents of those entities from their months (and
/// remove those no partial names any more). Returns the work and how many day partials went. A second
/// run finds none of theirs and does nothing.
pub async fn subtract_member(
    db: &Database,
    daily: &Daily,
    member: &str,
    months_held: usize,
) -> Result<(Work, u64)> {
    let partials = db.collection::<Document>(daily.partials);
    let mut cursor = partials
        .find(doc! {PARTIAL_MEMBER: member})
        .projection(doc! {"_id": 1, PARTIAL_ENTITY: 1, PARTIAL_DAY: 1, daily.fold_key: 1})
        .await
        .with_context(|| format!("reading their partials of `{}`", daily.partials))?;
    let mut ids = Vec::new();
    let mut theirs = Wanted::new();
    let mut keys: BTreeSet<String> = BTreeSet::new();
    while cursor.advance().await? {
        let partial = cursor.deserialize_current()?;
        let (Ok(entity), Ok(day), Some(id)) = (
            partial.get_str(PARTIAL_ENTITY),
            partial.get_str(PARTIAL_DAY),
            partial.get("_id"),
        ) else {
            continue;
        };
        theirs
            .entry(day.to_string())
            .or_default()
            .insert(entity.to_string());
        keys.extend(fold_keys_of(daily, &partial));
        ids.push(id.clone());
    }
    let mut removed = 0;
    for ids in ids.chunks(IDS_PER_DELETE) {
        removed += partials
            .delete_many(doc! {"_id": {"$in": ids}})
            .await
            .with_context(|| format!("removing their partials of `{}`", daily.partials))?
            .deleted_count;
    }
    let mut work = Work {
        month_batches: fold_months(db, daily, &months_of(&theirs)).await?,
        ..Work::default()
    };
    let keys: Vec<String> = keys.into_iter().collect();
    work.folded = keys.len();
    work.fold_batches = fold_keys(db, daily, &keys, months_held).await?;
    remove_unnamed(db, daily, &keys.into_iter().collect()).await?;
    Ok((work, removed))
}

/// Fold again the monthly partials of `months`' entities in each month from their day partials (a
/// month no day partial of the entity is left in loses its partial); returns how many aggregations
/// ran. Batches hold one month and at most [`KEYS_PER_BATCH`] entities: at most 31 day partials per
/// member for each.
async fn fold_months(db: &Database, daily: &Daily, months: &Wanted) -> Result<usize> {
    let mut batches = 0;
    for (month, entities) in months {
        let entities: Vec<String> = entities.iter().cloned().collect();
        for chunk in entities.chunks(KEYS_PER_BATCH) {
            db.collection::<Document>(daily.months)
                .delete_many(doc! {PARTIAL_ENTITY: {"$in": chunk}, PARTIAL_DAY: month})
                .await
                .with_context(|| format!("clearing partials of `{}`", daily.months))?;
            let one = Wanted::from([(month.clone(), chunk.iter().cloned().collect())]);
            aggregate(
                db,
                daily.partials,
                daily.month_pipeline(Some(&one)),
                daily.months,
            )
            .await?;
            batches += 1;
        }
    }
    Ok(batches)
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

/// Remove the derived documents of those of `keys` that no monthly partial names any more.
async fn remove_unnamed(db: &Database, daily: &Daily, keys: &BTreeSet<String>) -> Result<()> {
    let keys: Vec<&String> = keys.iter().collect();
    let mut gone = Vec::new();
    for chunk in keys.chunks(KEYS_PER_BATCH) {
        let mut cursor = db
            .collection::<Document>(daily.months)
            .find(doc! {daily.fold_key: {"$in": chunk}})
            .projection(doc! {daily.fold_key: 1})
            .await
            .with_context(|| format!("reading `{}`", daily.months))?;
        let mut named: BTreeSet<String> = BTreeSet::new();
        while cursor.advance().await? {
            named.extend(fold_keys_of(daily, &cursor.deserialize_current()?));
        }
        gone.extend(chunk.iter().filter(|k| !named.contains(**k)).copied());
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

/// How many months have plays (the `members` monthly partials' months): a key has at most one monthly
/// partial a month.
pub async fn months_held(db: &Database) -> Result<usize> {
    let months = mongo::distinct(db, mongo::MEMBERS_BY_MONTH, PARTIAL_DAY, doc! {}).await?;
    Ok(months.len())
}

/// Fold the derived documents of `keys` from their monthly partials; returns how many aggregations
/// ran. A batch holds at most [`PARTIALS_PER_BATCH`] partials (`months_held` each, at most).
async fn fold_keys(
    db: &Database,
    daily: &Daily,
    keys: &[String],
    months_held: usize,
) -> Result<usize> {
    let per_batch = (PARTIALS_PER_BATCH as usize / months_held.max(1)).clamp(1, KEYS_PER_BATCH);
    let mut batches = 0;
    for batch in keys.chunks(per_batch) {
        let pipeline = daily.fold_pipeline(Some(batch));
        aggregate(db, daily.months, pipeline, daily.into).await?;
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
