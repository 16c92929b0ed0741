//! `earshot-collections`: build the derived collections from the `rawdata_*` collections with
//! server-side aggregation pipelines ending in `$merge` (no client-side loops). The `create-collections`
//! binary runs it on a schedule; `members erase` runs it after removing a member's rows. Idempotent: a
//! re-run over the same raw data changes nothing.
//!
//! Two levels, so that a scheduled run costs what its new plays cost, not what the history holds:
//! - the collections that sum over plays (`Tracks`, `Albums`, `Artists`, `Images`, `members`) are folded
//!   from partial documents per (entity, local day) ([`daily`]). New rows name their days in the
//!   upload ledger; only the partials of the entities they name on those days are rebuilt, from those
//!   days' plays alone, and each such entity is folded again from its partials;
//! - the others (`ArtistTrackLink`, the top-tracks and top-artists collections) are rebuilt for the key
//!   values new rows name ([`keyed`]).
//!
//! Each build's watermark moves only once its documents are written: a run cut short between the
//! partials and the fold is finished by the next one.

pub mod batches;
pub mod daily;
pub mod fold;
pub mod forget;
pub mod keyed;
pub mod pipelines;
pub mod touched;

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context as _, Result};
use earshot_core::GroupConfig;
use earshot_core::layout::RawKind;
use earshot_core::layout::Target;
use earshot_core::ledger::{self, LedgerEntry};
use earshot_core::mongo;
use earshot_core::step_runs::{self, batch};
use mongodb::Database;
use mongodb::bson::{Bson, DateTime, Document, doc};
use tracing::info;

pub use batches::{KEYS_PER_BATCH, ROWS_PER_BATCH, pack_batches};
pub use daily::{DAILY, Daily};
pub use forget::{forget_erasures, forget_member};
pub use pipelines::Build;

/// What a daily build's watermark says it was built as: a watermark without it (a collection built
/// by an earlier version, before the partials existed) makes the next run rebuild from scratch.
pub const DAILY_MODEL: &str = "day-partials/1";

/// The builds of `target` that read rows directly, in order: ArtistTrackLink from recently played;
/// t50_Tracks, t50_Artists and t50_Images from top tracks; t50_TopArtists from top artists.
pub fn builds(target: Target) -> Vec<Build> {
    target
        .kinds()
        .iter()
        .flat_map(|kind| match kind {
            RawKind::RecentlyPlayed => pipelines::recently_played(),
            // Imported plays and listens share `rawdata_recentlyplayed`: built with recently played.
            RawKind::StreamingHistory | RawKind::Listens => Vec::new(),
            // Spoken plays have no derived collections: analytics reads them from the snapshot.
            RawKind::SpokenHistory => Vec::new(),
            RawKind::TopTracks => pipelines::top_tracks(),
            RawKind::TopArtists => pipelines::top_artists(),
        })
        .collect()
}

/// The builds of `target` folded from per-day partials: all five with recently played.
pub fn dailies(target: Target) -> Vec<Daily> {
    if target.kinds().contains(&RawKind::RecentlyPlayed) {
        DAILY.to_vec()
    } else {
        Vec::new()
    }
}

/// Every derived collection `target` writes, in build order.
pub fn collections(target: Target) -> Vec<&'static str> {
    dailies(target)
        .iter()
        .map(|d| d.into)
        .chain(builds(target).iter().map(|b| b.into))
        .collect()
}

/// The partial collections `target` writes.
pub fn partial_collections(target: Target) -> Vec<&'static str> {
    dailies(target).iter().map(|d| d.partials).collect()
}

/// How much to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// What rows loaded since each build's watermark touch (everything, for a build never run).
    Incremental,
    /// Everything, from an emptied collection.
    Rebuild,
}

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
    for (setting, value) in [
        (batch::ROWS_PER_AGGREGATION, ROWS_PER_BATCH),
        (batch::KEYS_PER_AGGREGATION, KEYS_PER_BATCH as u64),
        (batch::PARTIALS_PER_AGGREGATION, fold::PARTIALS_PER_BATCH),
        (batch::DAYS_PER_AGGREGATION, fold::DAYS_PER_BATCH as u64),
    ] {
        step_runs::note_batch_setting(setting, value);
    }
    let started = server_time(db).await?;
    let margin = match options.mode {
        Mode::Incremental => options.margin.as_millis() as i64,
        Mode::Rebuild => 0,
    };
    let through = DateTime::from_millis(started.timestamp_millis() - margin);
    let dailies = dailies(target);
    if !dailies.is_empty() {
        build_dailies(db, &dailies, options.mode, through).await?;
    }
    for build in builds(target) {
        let last = match options.mode {
            Mode::Incremental => watermark(db, build.into).await?,
            Mode::Rebuild => {
                db.collection::<Document>(build.into)
                    .delete_many(doc! {})
                    .await
                    .with_context(|| format!("emptying `{}`", build.into))?;
                None
            }
        };
        // A build of every row builds the entries loaded so far, those beyond `through` too.
        let every_row = match last {
            None => Some(touched::loaded_after(db, build.from, through).await?),
            Some(_) => None,
        };
        let Some((batches, entries)) =
            keyed::run(db, &build, last.as_ref().map(Watermark::unbuilt).as_ref()).await?
        else {
            info!(collection = build.into, "Nothing new to build.");
            continue;
        };
        let (through, built) = match &last {
            Some(last) => last.next(&entries, through),
            None => (through, every_row.unwrap_or_default()),
        };
        set_watermark(db, build.into, through, None, &built).await?;
        let documents = documents(db, build.into).await?;
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

/// The daily builds: those never built as partials (or all, for a rebuild) from scratch, the others
/// from what the ledger entries loaded since their watermark touch.
async fn build_dailies(
    db: &Database,
    dailies: &[Daily],
    mode: Mode,
    through: DateTime,
) -> Result<()> {
    let mut stale = Vec::new();
    let mut unbuilt: BTreeMap<Watermark, Vec<Daily>> = BTreeMap::new();
    for daily in dailies {
        mongo::ensure_indexes(db, daily.partials).await?;
        match (mode, watermark(db, daily.into).await?) {
            (Mode::Incremental, Some(w)) if w.model.as_deref() == Some(DAILY_MODEL) => {
                unbuilt.entry(w).or_default().push(*daily);
            }
            _ => stale.push(*daily),
        }
    }
    if !stale.is_empty() {
        // The rebuild reads every row: of the entries loaded so far, those beyond `through` too.
        let built = touched::loaded_after(db, mongo::RAW_RECENTLY_PLAYED, through).await?;
        let work = fold::rebuild(db, &stale).await?;
        for daily in &stale {
            set_watermark(db, daily.into, through, Some(DAILY_MODEL), &built).await?;
        }
        let collections: Vec<&str> = stale.iter().map(|d| d.into).collect();
        info!(
            collections = ?collections,
            days_plays = work.plays,
            partial_batches = work.partial_batches,
            folded = work.folded,
            fold_batches = work.fold_batches,
            "Built derived collections from scratch, from their per-day partials."
        );
    }
    for (watermark, dailies) in unbuilt {
        let keys: Vec<&str> = dailies.iter().map(|d| d.key).collect();
        let entries = touched::entries_since(db, &watermark.unbuilt(), &keys).await?;
        let (through, built) = watermark.next(&entries, through);
        let touched = touched::touched(&entries, &keys);
        let days_held = if touched.is_empty() {
            0
        } else {
            fold::days_held(db).await?
        };
        for daily in &dailies {
            if touched.is_empty() {
                info!(collection = daily.into, "Nothing new to build.");
                continue;
            }
            let work = fold::update(db, daily, &touched, days_held).await?;
            set_watermark(db, daily.into, through, Some(DAILY_MODEL), &built).await?;
            log_built(db, daily, &work).await?;
        }
    }
    Ok(())
}

async fn log_built(db: &Database, daily: &Daily, work: &fold::Work) -> Result<()> {
    // Counted before the log line: a value awaited inside `info!` would keep the future from being
    // `Send` (the dashboard's "Erase me" runs the rebuild on a task of its own).
    let documents = documents(db, daily.into).await?;
    info!(
        collection = daily.into,
        partials = daily.partials,
        days_plays = work.plays,
        partial_batches = work.partial_batches,
        folded = work.folded,
        fold_batches = work.fold_batches,
        documents,
        "Built a derived collection from its per-day partials."
    );
    Ok(())
}

async fn documents(db: &Database, collection: &str) -> Result<u64> {
    Ok(db
        .collection::<Document>(collection)
        .estimated_document_count()
        .await?)
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

/// Where a build's last completed run got in the upload ledger.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Watermark {
    /// Entries loaded after this server time are still to build, but `built`.
    through: DateTime,
    /// What the collection was built as ([`DAILY_MODEL`] for a daily build).
    model: Option<String>,
    /// The entries loaded after `through` that the run built (within its margin), with their load
    /// times.
    built: Vec<(String, DateTime)>,
}

impl Watermark {
    /// The upload-ledger entries still to build.
    fn unbuilt(&self) -> touched::Unbuilt {
        touched::Unbuilt::new(self.through, &self.built)
    }

    /// The next watermark's time and built entries, after a run at `through` that built `entries`.
    /// The time is `through`, or this one's if that is later: a watermark never moves back (after a
    /// `--rebuild`, whose watermark is its start, the next run's start less the margin can be earlier,
    /// and moving back would build the rebuild's last minute of entries again). The built entries are
    /// those of this watermark and of `entries` loaded after that time.
    fn next(
        &self,
        entries: &[LedgerEntry],
        through: DateTime,
    ) -> (DateTime, Vec<(String, DateTime)>) {
        let through = through.max(self.through);
        let mut built: Vec<(String, DateTime)> = self
            .built
            .iter()
            .filter(|(_, at)| *at > through)
            .cloned()
            .collect();
        built.extend(touched::built_after(entries, through));
        (through, built)
    }
}

/// `collection`'s watermark; `None` when it was never built.
async fn watermark(db: &Database, collection: &str) -> Result<Option<Watermark>> {
    let found = db
        .collection::<Document>(mongo::BUILD_WATERMARKS)
        .find_one(doc! {"_id": collection})
        .await
        .with_context(|| format!("reading `{}`", mongo::BUILD_WATERMARKS))?;
    Ok(found.and_then(|d| {
        let through = d.get_datetime(mongo::WATERMARK_THROUGH).ok().copied()?;
        let built = d
            .get_array(mongo::WATERMARK_BUILT)
            .map(|built| {
                built
                    .iter()
                    .filter_map(Bson::as_document)
                    .filter_map(|e| {
                        let at = e.get_datetime(ledger::LOADED_AT).ok()?;
                        Some((e.get_str("_id").ok()?.to_string(), *at))
                    })
                    .collect()
            })
            .unwrap_or_default();
        Some(Watermark {
            through,
            model: d.get_str(mongo::WATERMARK_MODEL).ok().map(str::to_string),
            built,
        })
    }))
}

/// At most this many built entries are kept in a watermark (about a minute's loads); past it, the
/// next run builds them again, which changes nothing.
const MAX_BUILT_KEPT: usize = 10_000;

/// Advance `collection`'s watermark, after its build succeeded.
async fn set_watermark(
    db: &Database,
    collection: &str,
    through: DateTime,
    model: Option<&str>,
    built: &[(String, DateTime)],
) -> Result<()> {
    let model = model.map_or(Bson::Null, Bson::from);
    let built: Vec<Document> = if built.len() > MAX_BUILT_KEPT {
        Vec::new()
    } else {
        built
            .iter()
            .map(|(id, at)| doc! {"_id": id, ledger::LOADED_AT: at})
            .collect()
    };
    db.collection::<Document>(mongo::BUILD_WATERMARKS)
        .update_one(
            doc! {"_id": collection},
            doc! {"$set": {
                mongo::WATERMARK_THROUGH: through,
                mongo::WATERMARK_MODEL: model,
                mongo::WATERMARK_BUILT: built,
            }},
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
