//! `create-collections`: build the derived collections from the `rawdata_*` collections with
//! server-side aggregation pipelines ending in `$merge` (no client-side loops). Idempotent: a re-run
//! over the same raw data changes nothing, new plays are merged in.

pub mod pipelines;

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use clap::Parser;
use earshot_core::cli::{EXIT_CODES_HELP, Outcome};
use earshot_core::layout::RawKind;
pub use earshot_core::layout::Target;
use earshot_core::mongo::{self, connect};
use earshot_core::{GroupConfig, env};
use mongodb::Database;
use mongodb::bson::{Bson, Document, doc};
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
            RawKind::TopTracks => pipelines::top_tracks(),
            RawKind::TopArtists => pipelines::top_artists(),
        })
        .collect()
}

/// Build the derived collections with server-side aggregation pipelines ($merge).
///
/// Re-running changes nothing; new plays are merged in. Members listed in the group config who have
/// no plays yet get a `members` document with zero plays.
#[derive(Debug, Parser)]
#[command(name = "create-collections", version, after_help = EXIT_CODES_HELP)]
pub struct Cli {
    /// Which collections to build: those of recently played (Tracks, Albums, Artists, ArtistTrackLink,
    /// Images, members), of top tracks (t50_Tracks, t50_Artists, t50_Images), of top artists
    /// (t50_TopArtists), or all.
    #[arg(value_enum)]
    pub target: Target,
    /// MongoDB connection string.
    #[arg(long, env = env::MONGODB_URI, default_value = env::DEFAULT_MONGODB_URI, hide_env_values = true)]
    pub mongodb_uri: String,
    /// MongoDB database.
    #[arg(long, env = env::EARSHOT_DATABASE, default_value = env::DEFAULT_DATABASE)]
    pub database: String,
    /// Group config file (members without plays yet). Default: `earshot.toml` if present.
    #[arg(long, env = env::EARSHOT_GROUP_CONFIG)]
    pub group_config: Option<PathBuf>,
}

/// Run the command line.
pub async fn run(cli: Cli) -> Result<Outcome> {
    let group = GroupConfig::resolve(cli.group_config.as_deref())?;
    let db = connect(&cli.mongodb_uri, &cli.database).await?;
    build(&db, cli.target, &group).await?;
    Ok(Outcome::Success)
}

/// Run every pipeline of `target`, then add the group's members who have no plays.
pub async fn build(db: &Database, target: Target, group: &GroupConfig) -> Result<()> {
    for build in builds(target) {
        db.collection::<Document>(build.from)
            .aggregate(build.pipeline.clone())
            .await
            .with_context(|| format!("building `{}` from `{}`", build.into, build.from))?;
        let documents = db
            .collection::<Document>(build.into)
            .estimated_document_count()
            .await?;
        info!(
            collection = build.into,
            from = build.from,
            documents,
            "Built a derived collection."
        );
    }
    if matches!(target, Target::RecentlyPlayed | Target::All) {
        add_silent_members(db, group).await?;
    }
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
