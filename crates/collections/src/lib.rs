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
pub use earshot_core::layout::Target;
use earshot_core::mongo;
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
            // Imported plays share `rawdata_recentlyplayed`: built with recently played.
            RawKind::StreamingHistory => Vec::new(),
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
        let since = match options.mode {
            Mode::Incremental => watermark(db, build.into).await?.map(|(at, _)| at),
            Mode::Rebuild => {
                db.collection::<Document>(build.into)
                    .delete_many(doc! {})
                    .await
                    .with_context(|| format!("emptying `{}`", build.into))?;
                None
            }
        };
        let Some(batches) = keyed::run(db, &build, since).await? else {
            info!(collection = build.into, "Nothing new to build.");
            continue;
        };
        set_watermark(db, build.into, through, None).await?;
        info!(
            collection = build.into,
            from = build.from,
            batches,
            documents = documents(db, build.into).await?,
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
    let mut since: BTreeMap<i64, Vec<Daily>> = BTreeMap::new();
    for daily in dailies {
        mongo::ensure_indexes(db, daily.partials).await?;
        match (mode, watermark(db, daily.into).await?) {
            (Mode::Incremental, Some((at, Some(model)))) if model == DAILY_MODEL => {
                since.entry(at.timestamp_millis()).or_default().push(*daily);
            }
            _ => stale.push(*daily),
        }
    }
    if !stale.is_empty() {
        let work = fold::rebuild(db, &stale).await?;
        for daily in &stale {
            set_watermark(db, daily.into, through, Some(DAILY_MODEL)).await?;
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
    for (at, dailies) in since {
        let keys: Vec<&str> = dailies.iter().map(|d| d.key).collect();
        let entries = touched::entries_since(db, DateTime::from_millis(at), &keys).await?;
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
            set_watermark(db, daily.into, through, Some(DAILY_MODEL)).await?;
            log_built(db, daily, &work).await?;
        }
    }
    Ok(())
}

async fn log_built(db: &Database, daily: &Daily, work: &fold::Work) -> Result<()> {
    info!(
        collection = daily.into,
        partials = daily.partials,
        days_plays = work.plays,
        partial_batches = work.partial_batches,
        folded = work.folded,
        fold_batches = work.fold_batches,
        documents = documents(db, daily.into).await?,
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

/// Where `collection`'s last completed build got in the ledger, and what it was built as; `None` when
/// it never ran.
async fn watermark(db: &Database, collection: &str) -> Result<Option<(DateTime, Option<String>)>> {
    let found = db
        .collection::<Document>(mongo::BUILD_WATERMARKS)
        .find_one(doc! {"_id": collection})
        .await
        .with_context(|| format!("reading `{}`", mongo::BUILD_WATERMARKS))?;
    Ok(found.and_then(|d| {
        let at = d.get_datetime("built_through").ok().copied()?;
        Some((at, d.get_str("model").ok().map(str::to_string)))
    }))
}

/// Advance `collection`'s watermark, after its build succeeded.
async fn set_watermark(
    db: &Database,
    collection: &str,
    through: DateTime,
    model: Option<&str>,
) -> Result<()> {
    let model = model.map_or(Bson::Null, Bson::from);
    db.collection::<Document>(mongo::BUILD_WATERMARKS)
        .update_one(
            doc! {"_id": collection},
            doc! {"$set": {"built_through": through, "model": model}},
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
