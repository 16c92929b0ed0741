//! `create-collections`: build the derived collections from the `rawdata_*` collections with
//! server-side aggregation pipelines ending in `$merge` (the work is `earshot-collections`; this is its
//! command line). Idempotent: a re-run over the same raw data changes nothing. Incremental: only the
//! partials and documents that rows loaded since a build's watermark touch are rebuilt.

use anyhow::Result;
use clap::Parser;
use earshot_collections::{BuildOptions, Mode, build_with};
use earshot_core::cli::{EXIT_CODES_HELP, Outcome, StoreArgs};
use earshot_core::erasure::{self, ErasureGuard};
use earshot_core::layout::Target;
use tracing::info;

/// Build the derived collections with server-side aggregation pipelines ($merge).
///
/// Incremental: Tracks, Albums, Artists, Images and members are folded from per-(entity, local day)
/// partials (`*_by_day`); a run rebuilds the partials of the entities that rows loaded since the last
/// build name on the days they fall on (the upload ledger says which), from those days' plays alone,
/// and folds those entities from their partials. The other collections rebuild the key values new rows
/// name. A build's watermark advances only after its documents are written. With nothing new, a run
/// reads the ledger and stops. `--rebuild` empties each derived collection (and its partials) and builds
/// it from every row, day by day. Members listed in the group config who have no plays yet get a
/// `members` document with zero plays.
#[derive(Debug, Parser)]
#[command(name = "create-collections", version, after_help = EXIT_CODES_HELP)]
pub struct Cli {
    /// Which collections to build: those of recently played (Tracks, Albums, Artists, ArtistTrackLink,
    /// Images, members), of top tracks (t50_Tracks, t50_Artists, t50_Images), of top artists
    /// (t50_TopArtists), or all.
    #[arg(value_enum)]
    pub target: Target,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Build everything from scratch: empty each derived collection, aggregate every row.
    #[arg(long)]
    pub rebuild: bool,
}

/// Run the command line.
pub async fn run(cli: Cli) -> Result<Outcome> {
    let scoped = cli.store.scoped()?;
    let db = scoped.database().await?;
    let mode = if cli.rebuild {
        Mode::Rebuild
    } else {
        Mode::Incremental
    };
    let options = BuildOptions {
        mode,
        ..BuildOptions::default()
    };
    let storage = scoped.storage().await?;
    let mut guard = ErasureGuard::begin(&storage, "create-collections").await?;
    // A member who left (erased themselves) is not added back as a member without plays.
    let group = erasure::without_departed(&storage, &scoped.group).await?;
    build_with(&db, cli.target, &group, options).await?;
    if guard.check(true).await.is_err() {
        // An erase ran during the build, which may have read the member's rows before the erase
        // removed them: once it has finished, build again from the remaining rows.
        guard
            .wait_until_finished(erasure::WAIT_POLL, erasure::WAIT_TIMEOUT)
            .await?;
        let rebuild = BuildOptions {
            mode: Mode::Rebuild,
            ..options
        };
        build_with(&db, cli.target, &group, rebuild).await?;
        guard.check(true).await?;
        info!("Rebuilt the derived collections after an erase that ran during the build.");
    }
    Ok(Outcome::Success)
}
