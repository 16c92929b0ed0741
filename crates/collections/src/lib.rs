//! `earshot-collections`: build the derived collections from the `rawdata_*` collections with
//! server-side aggregation pipelines ending in `$merge` (no client-side loops). The `create-collections`
//! binary runs it on a schedule; `members erase` rebuilds with it. Idempotent: a re-run
//! over the same raw data changes nothing. Incremental: only the documents that rows loaded since a
//! build's watermark touch are rebuilt (the upload ledger names them), in bounded batches of keys.

pub mod pipelines;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Duration;

use anyhow::{Context as _, Result};
use earshot_core::GroupConfig;
use earshot_core::layout::RawKind;
pub use earshot_core::layout::Target;
use earshot_core::ledger::{self, LedgerEntry};
use earshot_core::mongo;
use earshot_core::progress::Progress;
use mongodb::Database;
use mongodb::bson::{Bson, DateTime, Document, doc};
use tracing::info;

pub use pipelines::Build;

/// The builds of `target`, in order: Tracks, Albums, Artists, ArtistTrackLink, Images and members from
/// recently played; t50_Tracks, t50_Artists and t50_Images from top tracks; t50_TopArtists from top
/// artists.
pub fn builds(target: Target) -> Vec<Build> {
    target
        .kinds()
        .iter()
        .flat_map(|kind| match kind {
            RawKind::RecentlyPlayed => pipelines::recently_played(),
            // Imported plays share `rawdata_recentlyplayed`: built with recently played.
            RawKind::StreamingHistory => Vec::new(),
            RawKind::TopTracks => pipelines::top_tracks(),
            RawKind::TopArtists => pipelines::top_artists(),
        })
        .collect()
}

/// How much to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// What rows loaded since each build's watermark touch (everything, for a build never run).
    Incremental,
    /// Everything, from an emptied collection.
    Rebuild,
}

/// Key values per aggregation, at most: bounds the size of the `$in` list a batch matches.
pub const KEYS_PER_BATCH: usize = 2_000;

/// Source rows per aggregation, at most (a single key value with more rows gets a batch of its own):
/// bounds what the server holds for one `$group`. MongoDB proper streams a `$group` and spills past
/// 100 MB with `allowDiskUse`; the dev server materialises a batch's rows, so this is what keeps its
/// memory in check on a backlog of a million plays.
pub const ROWS_PER_BATCH: u64 = 100_000;

/// How [`build_with`] builds.
#[derive(Debug, Clone, Copy)]
pub struct BuildOptions {
    /// Incremental or from scratch.
    pub mode: Mode,
    /// An incremental build's watermark trails the server's clock by this much, so that a ledger entry
    /// still being written when the build read the ledger is built by the next run rather than missed.
    /// One minute by default; tests that build right after loading set zero. A rebuild needs none: it
    /// reads the rows, and a file's rows are stored before its ledger entry is written, so a rebuild's
    /// watermark is its start (the next run does not redo the minute before it).
    pub margin: Duration,
}

impl Default for BuildOptions {
    fn default() -> BuildOptions {
        BuildOptions {
            mode: Mode::Incremental,
            margin: Duration::from_secs(60),
        }
    }
}

/// [`build_with`] incrementally, with the default margin.
pub async fn build(db: &Database, target: Target, group: &GroupConfig) -> Result<()> {
    build_with(db, target, group, BuildOptions::default()).await
}

/// Run every build of `target`, then add the group's members who have no plays.
pub async fn build_with(
    db: &Database,
    target: Target,
    group: &GroupConfig,
    options: BuildOptions,
) -> Result<()> {
    let started = server_time(db).await?;
    let margin = match options.mode {
        Mode::Incremental => options.margin.as_millis() as i64,
        Mode::Rebuild => 0,
    };
    let through = DateTime::from_millis(started.timestamp_millis() - margin);
    for build in builds(target) {
        let watermark = match options.mode {
            Mode::Incremental => watermark(db, build.into).await?,
            Mode::Rebuild => {
                db.collection::<Document>(build.into)
                    .delete_many(doc! {})
                    .await
                    .with_context(|| format!("emptying `{}`", build.into))?;
                None
            }
        };
        let keys = match watermark {
            Some(since) => Some(touched_keys(db, &build, since).await?),
            None => None,
        };
        if keys.as_ref().is_some_and(Vec::is_empty) {
            info!(collection = build.into, "Nothing new to build.");
            continue;
        }
        let batches = run_build(db, &build, keys).await?;
        set_watermark(db, build.into, through).await?;
        let documents = db
            .collection::<Document>(build.into)
            .estimated_document_count()
            .await?;
        info!(
            collection = build.into,
            from = build.from,
            batches,
            documents,
            "Built a derived collection."
        );
    }
    if target.kinds().contains(&RawKind::RecentlyPlayed) {
        add_silent_members(db, group).await?;
    }
    Ok(())
}

/// One aggregation's share of a build.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Batch {
    /// Every row (a build with no ledger to size batches by).
    All,
    /// The rows that carry these key values.
    Keys(Vec<String>),
    /// The rows whose `_id` lies in `[from, to)` (unbounded where `None`).
    Ids(Option<String>, Option<String>),
}

/// Run one build over `keys` (every key value when `None`), in batches; returns how many aggregations
/// ran.
async fn run_build(db: &Database, build: &Build, keys: Option<Vec<String>>) -> Result<usize> {
    let batches: Vec<Batch> = match keys {
        // A pipeline that reshapes rows one by one: ranges of `_id` of bounded size (from the
        // ledger), or the touched keys (one row each) in chunks.
        None if !build.groups => id_ranges(db, build).await?,
        Some(keys) if !build.groups => keys
            .chunks(KEYS_PER_BATCH)
            .map(|c| Batch::Keys(c.to_vec()))
            .collect(),
        keys => {
            let mut counts = row_counts(db, build, keys.as_deref()).await?;
            if counts.is_empty() && keys.is_none() {
                // Rows loaded before the ledger existed: every value, batched by number alone.
                counts = distinct_keys(db, build)
                    .await?
                    .into_iter()
                    .map(|k| (k, 1))
                    .collect();
            }
            pack_batches(counts, ROWS_PER_BATCH, KEYS_PER_BATCH)
                .into_iter()
                .map(Batch::Keys)
                .collect()
        }
    };
    let progress = Progress::new(
        format!("Building `{}`", build.into),
        "batches",
        batches.len() as u64,
    );
    for batch in &batches {
        let mut pipeline = Vec::with_capacity(build.pipeline.len() + 2);
        let values = match batch {
            Batch::All => None,
            Batch::Keys(values) => {
                pipeline.push(doc! {"$match": {build.key: {"$in": values}}});
                Some(values)
            }
            Batch::Ids(from, to) => {
                let mut range = Document::new();
                if let Some(from) = from {
                    range.insert("$gte", from);
                }
                if let Some(to) = to {
                    range.insert("$lt", to);
                }
                pipeline.push(doc! {"$match": {"_id": range}});
                None
            }
        };
        for stage in &build.pipeline {
            if let (Some(values), Some(field)) = (values, build.group_key)
                && stage.contains_key("$group")
            {
                pipeline.push(doc! {"$match": {field: {"$in": values}}});
            }
            pipeline.push(stage.clone());
        }
        db.collection::<Document>(build.from)
            .aggregate(pipeline)
            .allow_disk_use(true)
            .await
            .with_context(|| format!("building `{}` from `{}`", build.into, build.from))?;
        progress.inc(1);
    }
    progress.finish();
    Ok(batches.len())
}

/// Ranges of `_id` holding about [`ROWS_PER_BATCH`] rows each, covering every possible `_id` (the
/// first and last are open), from the ids the upload ledger lists; one batch of every row when the
/// ledger lists none.
async fn id_ranges(db: &Database, build: &Build) -> Result<Vec<Batch>> {
    let mut cursor = db
        .collection::<LedgerEntry>(mongo::UPLOAD_LEDGER)
        .find(doc! {ledger::COLLECTION: build.from})
        .projection(doc! {ledger::keys_of("_id"): 1})
        .await
        .with_context(|| format!("reading `{}`", mongo::UPLOAD_LEDGER))?;
    let mut ids = Vec::new();
    while cursor.advance().await? {
        ids.extend_from_slice(cursor.deserialize_current()?.keys("_id"));
    }
    Ok(ranges_of(ids, ROWS_PER_BATCH as usize))
}

/// [`id_ranges`] of known ids: boundaries every `per_batch` ids, in order.
fn ranges_of(mut ids: Vec<String>, per_batch: usize) -> Vec<Batch> {
    ids.sort_unstable();
    ids.dedup();
    if ids.len() <= per_batch {
        return vec![Batch::All];
    }
    let bounds: Vec<String> = ids
        .into_iter()
        .enumerate()
        .filter(|(i, _)| *i > 0 && i % per_batch == 0)
        .map(|(_, id)| id)
        .collect();
    let mut batches = Vec::with_capacity(bounds.len() + 1);
    let mut from = None;
    for bound in bounds {
        batches.push(Batch::Ids(from, Some(bound.clone())));
        from = Some(bound);
    }
    batches.push(Batch::Ids(from, None));
    batches
}

/// How many source rows each key value of the build has (list keys counted once per row), in key
/// order: of `keys` only, or of every value when `None`. Read from the upload ledger's counts, not from
/// the rows: counting rows needs a pass over every play, which is what the batches avoid. An entry
/// written before the ledger kept counts counts each of its values as many times as it has records (an
/// upper bound). Rows removed since their file was loaded leave a count too high, which only makes a
/// batch smaller.
async fn row_counts(
    db: &Database,
    build: &Build,
    keys: Option<&[String]>,
) -> Result<Vec<(String, u64)>> {
    let (keys_field, counts_field) = (ledger::keys_of(build.key), ledger::counts_of(build.key));
    let mut cursor = db
        .collection::<LedgerEntry>(mongo::UPLOAD_LEDGER)
        .find(doc! {ledger::COLLECTION: build.from, &keys_field: {"$exists": true}})
        .projection(doc! {&keys_field: 1, &counts_field: 1, ledger::RECORDS: 1})
        .await
        .with_context(|| format!("reading `{}`", mongo::UPLOAD_LEDGER))?;
    let wanted: Option<HashSet<&str>> = keys.map(|k| k.iter().map(String::as_str).collect());
    let mut totals: HashMap<String, u64> = HashMap::new();
    while cursor.advance().await? {
        let entry = cursor.deserialize_current()?;
        for (i, value) in entry.keys(build.key).iter().enumerate() {
            if wanted.as_ref().is_some_and(|w| !w.contains(value.as_str())) {
                continue;
            }
            *totals.entry(value.clone()).or_default() += entry.count(build.key, i);
        }
    }
    let mut counts: Vec<(String, u64)> = totals.into_iter().collect();
    // A wanted key the ledger does not list (rows loaded another way) still gets built.
    if let Some(keys) = keys {
        let listed: HashSet<String> = counts.iter().map(|(k, _)| k.clone()).collect();
        counts.extend(
            keys.iter()
                .filter(|k| !listed.contains(*k))
                .map(|k| (k.clone(), 1)),
        );
    }
    counts.sort();
    Ok(counts)
}

/// Key values in batches of at most `max_rows` rows and `max_keys` values, in order; a value with more
/// rows than `max_rows` is a batch of its own.
pub fn pack_batches(
    counts: Vec<(String, u64)>,
    max_rows: u64,
    max_keys: usize,
) -> Vec<Vec<String>> {
    let mut batches = Vec::new();
    let mut batch: Vec<String> = Vec::new();
    let mut rows = 0;
    for (key, count) in counts {
        if !batch.is_empty() && (rows + count > max_rows || batch.len() == max_keys) {
            batches.push(std::mem::take(&mut batch));
            rows = 0;
        }
        batch.push(key);
        rows += count;
    }
    if !batch.is_empty() {
        batches.push(batch);
    }
    batches
}

/// Every value of the build's key among its source rows (array keys flattened), sorted. A pass over
/// every row: only for rows the ledger does not know.
async fn distinct_keys(db: &Database, build: &Build) -> Result<Vec<String>> {
    let values = db
        .collection::<Document>(build.from)
        .distinct(build.key, doc! {})
        .await
        .with_context(|| format!("listing the `{}` values of `{}`", build.key, build.from))?;
    let mut keys: Vec<String> = values
        .into_iter()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    keys.sort();
    Ok(keys)
}

/// The key values that rows loaded after `since` carry, from the upload ledger.
async fn touched_keys(db: &Database, build: &Build, since: DateTime) -> Result<Vec<String>> {
    let field = ledger::keys_of(build.key);
    let mut cursor = db
        .collection::<LedgerEntry>(mongo::UPLOAD_LEDGER)
        .find(doc! {ledger::COLLECTION: build.from, ledger::LOADED_AT: {"$gt": since}})
        .projection(doc! {&field: 1})
        .await
        .with_context(|| format!("reading `{}`", mongo::UPLOAD_LEDGER))?;
    let mut keys = BTreeSet::new();
    while cursor.advance().await? {
        keys.extend(
            cursor
                .deserialize_current()?
                .keys(build.key)
                .iter()
                .cloned(),
        );
    }
    Ok(keys.into_iter().collect())
}

/// The server's clock (`hello`'s `localTime`), which stamps ledger entries; this machine's where the
/// server does not say.
async fn server_time(db: &Database) -> Result<DateTime> {
    let hello = db.run_command(doc! {"hello": 1}).await?;
    Ok(hello
        .get_datetime("localTime")
        .copied()
        .unwrap_or_else(|_| DateTime::now()))
}

/// Where `collection`'s last completed build got in the ledger; `None` when it never ran.
async fn watermark(db: &Database, collection: &str) -> Result<Option<DateTime>> {
    let found = db
        .collection::<Document>(mongo::BUILD_WATERMARKS)
        .find_one(doc! {"_id": collection})
        .await
        .with_context(|| format!("reading `{}`", mongo::BUILD_WATERMARKS))?;
    Ok(found.and_then(|d| d.get_datetime("built_through").ok().copied()))
}

/// Advance `collection`'s watermark, after its build succeeded.
async fn set_watermark(db: &Database, collection: &str, through: DateTime) -> Result<()> {
    db.collection::<Document>(mongo::BUILD_WATERMARKS)
        .update_one(
            doc! {"_id": collection},
            doc! {"$set": {"built_through": through}},
        )
        .upsert(true)
        .await
        .with_context(|| format!("advancing the watermark of `{collection}`"))?;
    Ok(())
}

/// Members of the group with no plays yet: a `members` document with zero plays, inserted only when
/// absent (so the aggregation's documents are never touched).
async fn add_silent_members(db: &Database, group: &GroupConfig) -> Result<()> {
    let members = db.collection::<Document>(mongo::MEMBERS);
    for member in &group.members {
        members
            .update_one(
                doc! {"_id": &member.id},
                doc! {"$setOnInsert": {
                    "user_name": &member.display_name,
                    "first_play": Bson::Null,
                    "last_play": Bson::Null,
                    "plays": 0,
                    "listened_ms": 0,
                    "unique_tracks": 0,
                }},
            )
            .upsert(true)
            .await
            .with_context(|| format!("adding member `{}` to `{}`", member.id, mongo::MEMBERS))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{Batch, pack_batches, ranges_of};

    #[test]
    fn id_ranges_cover_everything_in_bounded_steps() {
        let ids: Vec<String> = (0..10).rev().map(|i| format!("id{i}")).collect();
        assert_eq!(ranges_of(ids.clone(), 20), vec![Batch::All]);
        let s = |t: &str| Some(t.to_string());
        assert_eq!(
            ranges_of(ids, 4),
            vec![
                Batch::Ids(None, s("id4")),
                Batch::Ids(s("id4"), s("id8")),
                Batch::Ids(s("id8"), None),
            ]
        );
    }

    fn counts(rows: &[u64]) -> Vec<(String, u64)> {
        rows.iter()
            .enumerate()
            .map(|(i, &n)| (format!("k{i:02}"), n))
            .collect()
    }

    #[test]
    fn batches_hold_at_most_the_row_and_key_limits() {
        let input = counts(&[40, 50, 20, 90, 10, 10, 10, 10]);
        let batches = pack_batches(input.clone(), 100, 3);
        let rows = |batch: &Vec<String>| -> u64 {
            batch
                .iter()
                .map(|k| input.iter().find(|(key, _)| key == k).unwrap().1)
                .sum()
        };
        assert!(batches.iter().all(|b| rows(b) <= 100 && b.len() <= 3));
        // Every key once, in order.
        let flat: Vec<String> = batches.concat();
        assert_eq!(
            flat,
            input.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>()
        );
        assert_eq!(batches.len(), 4, "{batches:?}");
    }

    #[test]
    fn a_key_over_the_row_limit_is_a_batch_of_its_own() {
        let batches = pack_batches(counts(&[10, 500, 10]), 100, 10);
        assert_eq!(batches, vec![vec!["k00"], vec!["k01"], vec!["k02"]]);
        assert!(pack_batches(Vec::new(), 100, 10).is_empty());
    }
}
