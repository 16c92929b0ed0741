//! The builds that read rows directly (ArtistTrackLink, the top-tracks and top-artists collections):
//! the documents of the key values that new rows name are aggregated again from all of their rows, in
//! bounded batches of keys (or of `_id` ranges for a build that reshapes rows one by one).

use std::collections::{BTreeSet, HashMap, HashSet};

use anyhow::{Context as _, Result};
use earshot_core::ledger::{self, LedgerEntry};
use earshot_core::mongo;
use earshot_core::progress::Progress;
use mongodb::Database;
use mongodb::bson::{Document, doc};

use crate::batches::{Batch, KEYS_PER_BATCH, ROWS_PER_BATCH, pack_batches, ranges_of};
use crate::pipelines::Build;
use crate::touched::Unbuilt;

/// Build `build` over the key values that the ledger entries `unbuilt` selects name (every value when
/// `None`); returns how many aggregations ran and the entries it read, `None` when there was nothing
/// to build.
pub async fn run(
    db: &Database,
    build: &Build,
    unbuilt: Option<&Unbuilt>,
) -> Result<Option<(usize, Vec<LedgerEntry>)>> {
    let (keys, entries) = match unbuilt {
        Some(unbuilt) => {
            let (keys, entries) = touched_keys(db, build, unbuilt).await?;
            (Some(keys), entries)
        }
        None => (None, Vec::new()),
    };
    if keys.as_ref().is_some_and(Vec::is_empty) {
        return Ok(None);
    }
    let batches = run_build(db, build, keys).await?;
    Ok(Some((batches, entries)))
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
            let counts = row_counts(db, build, keys.as_deref()).await?;
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
        if let (Some(owner), Batch::Keys(values)) = (build.owned_by, batch) {
            // What the batch's key values had, gone first: a value whose rows are all gone (an erase)
            // must leave no document, and `$merge` only writes what it finds.
            db.collection::<Document>(build.into)
                .delete_many(doc! {owner: {"$in": values}})
                .await
                .with_context(|| format!("clearing the batch's documents of `{}`", build.into))?;
        }
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

/// How many source rows each key value of the build has (list keys counted once per row), in key
/// order: of `keys` only, or of every value when `None`. Read from the upload ledger's counts, not from
/// the rows: counting rows needs a pass over every play, which is what the batches avoid. Rows removed
/// since their file was loaded leave a count too high, which only makes a batch smaller.
async fn row_counts(
    db: &Database,
    build: &Build,
    keys: Option<&[String]>,
) -> Result<Vec<(String, u64)>> {
    let (keys_field, counts_field) = (ledger::keys_of(build.key), ledger::counts_of(build.key));
    let mut cursor = db
        .collection::<LedgerEntry>(mongo::UPLOAD_LEDGER)
        .find(doc! {ledger::COLLECTION: build.from, &keys_field: {"$exists": true}})
        .projection(doc! {&keys_field: 1, &counts_field: 1})
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

/// The key values that the rows of the ledger entries `unbuilt` selects carry, and the entries (their
/// ids and load times).
async fn touched_keys(
    db: &Database,
    build: &Build,
    unbuilt: &Unbuilt,
) -> Result<(Vec<String>, Vec<LedgerEntry>)> {
    let field = ledger::keys_of(build.key);
    let mut filter = unbuilt.filter();
    filter.insert(ledger::COLLECTION, build.from);
    let mut cursor = db
        .collection::<LedgerEntry>(mongo::UPLOAD_LEDGER)
        .find(filter)
        .projection(doc! {&field: 1, ledger::LOADED_AT: 1})
        .await
        .with_context(|| format!("reading `{}`", mongo::UPLOAD_LEDGER))?;
    let mut keys = BTreeSet::new();
    let mut entries = Vec::new();
    while cursor.advance().await? {
        let mut entry = cursor.deserialize_current()?;
        if !unbuilt.keeps(&entry) {
            continue;
        }
        keys.extend(entry.keys(build.key).iter().cloned());
        entry.keys.clear();
        entries.push(entry);
    }
    Ok((keys.into_iter().collect(), entries))
}
