//! `data-upload`: converted JSON Lines records → MongoDB `rawdata_*` collections, idempotently (the
//! work is `earshot-upload`; this is its command line, and its coordination with `members erase`).

use anyhow::{Context as _, Result, bail};
use clap::Parser;
use earshot_core::cli::{EXIT_CODES_HELP, Outcome, StoreArgs};
use earshot_core::erasure::{self, ErasureGuard};
use earshot_core::layout::{self, Target};
use earshot_core::step_runs::{self, batch};
use earshot_core::{Storage, env};
use earshot_upload::{LoadOptions, load_lines, load_storage};
use mongodb::Database;
use mongodb::bson::{self, Document};

/// Load converted records into MongoDB with idempotent, batched upserts.
///
/// Reads `converted/<kind>/…*.jsonl` under `--storage` (or JSON Lines on stdin with `--input -`),
/// upserts each record by its `_id` into `rawdata_recentlyplayed`, `rawdata_toptracks` or
/// `rawdata_topartists`, and creates the indexes the queries need. Prints one JSON line per collection
/// on stdout: records read, inserted, modified, unchanged, files failed.
#[derive(Debug, Parser)]
#[command(name = "data-upload", version, after_help = EXIT_CODES_HELP)]
pub struct Cli {
    /// What to load: `converted/<kind>/` → `rawdata_recentlyplayed`, `rawdata_toptracks`,
    /// `rawdata_topartists`, or all three (`all`, not with `--input -`).
    #[arg(value_enum)]
    pub target: Target,
    #[command(flatten)]
    pub store: StoreArgs,
    /// A converted key (`….jsonl`) or prefix in the storage, or `-` for JSON Lines on stdin.
    /// Default: `converted/<kind>/`.
    #[arg(long)]
    pub input: Option<String>,
    /// Records per round trip.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub batch_size: u32,
    /// Load every file again, even those the upload ledger lists as loaded (after
    /// `json-converter --force` rewrote converted files, say). Changes only what differs.
    #[arg(long)]
    pub reload: bool,
    /// Seconds within which an imported streaming-history play and an API play of the same member and
    /// track are one play (by the stream's start or its end; docs/architecture.md, "Played-at").
    #[arg(long, env = env::EARSHOT_MATCH_TOLERANCE, default_value_t = earshot_core::history::DEFAULT_MATCH_TOLERANCE_S)]
    pub match_tolerance: u64,
}

/// Run the command line.
pub async fn run(cli: Cli) -> Result<Outcome> {
    step_runs::note_batch_setting(batch::DOCUMENTS_PER_ROUND_TRIP, u64::from(cli.batch_size));
    let scoped = cli.store.scoped()?;
    let db = scoped.database().await?;
    let mut reports = Vec::new();
    if cli.input.as_deref() == Some("-") {
        if cli.target == Target::All {
            bail!(
                "`--input -` loads one kind: name it (recently-played, top-tracks or top-artists), not `all`"
            );
        }
        // Imported plays and API plays have one record shape: recently played reads either.
        let kind = &cli.target.kinds()[0];
        let stdin = std::io::stdin();
        reports.push(load_lines(&db, *kind, stdin.lock(), cli.batch_size as usize).await?);
    } else {
        let storage = scoped.storage().await?;
        let mut guard = ErasureGuard::begin(&storage, "data-upload").await?;
        for &kind in cli.target.kinds() {
            let prefix = match &cli.input {
                Some(input) => input.clone(),
                None => layout::converted_prefix(kind),
            };
            let options = LoadOptions {
                batch_size: cli.batch_size as usize,
                reload: cli.reload,
                match_tolerance_ms: cli.match_tolerance.saturating_mul(1000),
            };
            reports.push(load_storage(&db, &storage, kind, &prefix, options).await?);
        }
        if let Err(err) = guard.check(true).await {
            // An erase ran during the load: a file of the member read before the erase removed it may
            // have been loaded after the erase removed their rows. Once it has finished, their rows go.
            guard
                .wait_until_finished(erasure::WAIT_POLL, erasure::WAIT_TIMEOUT)
                .await?;
            let touched = reports.iter().flat_map(|r| r.members.iter());
            drop_erased(&db, &storage, touched).await?;
            return Err(err.into());
        }
    }
    let mut stdout = std::io::stdout().lock();
    for report in &reports {
        serde_json::to_writer(&mut stdout, report)?;
        std::io::Write::write_all(&mut stdout, b"\n")?;
    }
    let files: usize = reports.iter().map(|r| r.files).sum();
    let failed: usize = reports.iter().map(|r| r.failed).sum();
    Ok(Outcome::from_counts(files, failed))
}

/// Remove the rows and ledger entries of every member among `members` that storage no longer holds a
/// converted file of (erased while the load ran).
async fn drop_erased<'m>(
    db: &Database,
    storage: &Storage,
    members: impl Iterator<Item = &'m String>,
) -> Result<()> {
    let members: std::collections::BTreeSet<&String> = members.collect();
    for member in members {
        if erasure::member_objects_remain(storage, member).await? {
            continue;
        }
        for collection in earshot_core::mongo::MEMBER_ROW_COLLECTIONS {
            db.collection::<Document>(collection)
                .delete_many(bson::doc! {"user_id": member})
                .await
                .with_context(|| format!("removing an erased member's rows from `{collection}`"))?;
        }
        db.collection::<Document>(earshot_core::mongo::UPLOAD_LEDGER)
            .delete_many(earshot_core::ledger::member_entries(member))
            .await
            .context("removing an erased member's ledger entries")?;
        tracing::warn!(member = %member, "Dropped the rows of a member erased while this load ran.");
    }
    Ok(())
}
