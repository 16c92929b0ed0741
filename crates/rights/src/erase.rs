//! `members erase`: remove one member from every store.
//!
//! Order, so that an interrupted erase is finished by running it again:
//! 1. a marker (`layout::erasure_key`) is written first and removed last: while it exists, a run does
//!    every step even where no row of the member is left to find, and `data-upload`,
//!    `create-collections`, `gcs-export` and `analytics` refuse to start; then the erasure epoch moves
//!    on, so that a run of theirs already going notices and withdraws what it stores
//!    ([`earshot_core::erasure`]);
//! 2. storage: the member's raw pages, imported history and converted files (temp files a crashed
//!    write left there included), then their fetch state, encrypted tokens and import progress;
//! 3. MongoDB: their rows of the raw collections, their token record, their own dashboard sessions,
//!    the upload-ledger entries that name them;
//! 4. everything computed from every member's plays together, which cannot be cut row by row without
//!    leaving traces (a group chart row of a song only they played): every stored analytics run
//!    (`analytics_*` and `analytics_runs`), every Parquet snapshot (`exports/`) and every report
//!    (`reports/`) are removed; the next scheduled export and analytics run write them again without
//!    the member;
//! 5. the derived collections are rebuilt where the member's rows were: before their rows and ledger
//!    entries go, the days and keys those entries named are written to the ledger as erasure entries
//!    (without the member's id), so the build rebuilds those days' partials and folds those documents
//!    from the remaining rows (counts, listener sets and `members` without them); then the erasure
//!    entries go, and track-catalogue entries no remaining row names are removed;
//! 6. the marker goes.
//!
//! A run that finds nothing of the member changes nothing.

use std::collections::BTreeSet;
use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::Path;

use anyhow::{Context as _, Result, bail};
use chrono::Utc;
use earshot_collections::{BuildOptions, Mode};
use earshot_core::layout::{self, Target};
use earshot_core::{erasure, mongo};
use mongodb::bson::{Bson, Document, doc};
use tracing::info;

use earshot_state::Stores;

use crate::analytics_rows::{analytics_collections, names_member};

/// What one erase removed, per store, in order.
#[derive(Debug, Default, Clone)]
pub struct EraseReport {
    /// (store, what was removed there).
    pub removed: Vec<(String, String)>,
    /// Whether anything of the member was found.
    pub found: bool,
}

impl EraseReport {
    fn note(&mut self, store: impl Into<String>, what: impl Into<String>) {
        let (store, what) = (store.into(), what.into());
        info!(store = %store, removed = %what, "Erased.");
        self.removed.push((store, what));
    }

    /// What to print.
    pub fn summary(&self, member: &str) -> String {
        if !self.found {
            return format!("Earshot holds nothing about `{member}`: nothing to remove.\n");
        }
        let mut out = format!("Erased `{member}`:\n");
        for (store, what) in &self.removed {
            out.push_str(&format!("  {store}: {what}\n"));
        }
        out.push_str(&format!(
            "\nThe next scheduled export and analytics run write the snapshots and results again, without \
             `{member}` (or run `gcs-export` then `analytics` now).\n\
             Spotify has no endpoint that revokes an app's access: `{member}` removes Earshot in their \
             Spotify account, at https://www.spotify.com/account/apps/ (Manage apps → Earshot → Remove \
             access).\n"
        ));
        out
    }
}

/// Refuse without a group config file unless told explicitly (`--without-config`): without it, no
/// check can say the member is no longer listed, and the next scheduled fetch may bring them back.
pub fn refuse_without_config(config: &Path, found: bool, without_config: bool) -> Result<()> {
    if !found && !without_config {
        bail!(
            "no group config file at `{}`: cannot check that the member is no longer listed in it, so \
             nothing was erased. Point `--group-config` (or `EARSHOT_GROUP_CONFIG`) at the group's \
             config, or pass `--without-config` if this deployment really has none",
            config.display()
        );
    }
    Ok(())
}

/// Refuse while the group config lists the member, unless they have left the group (erased
/// themselves from the dashboard, which no step fetches again): otherwise the next scheduled fetch
/// would bring them back.
pub async fn refuse_if_listed(stores: &Stores, member: &str, config: &Path) -> Result<()> {
    if stores.group.member(member).is_some() && !erasure::has_left(&stores.storage, member).await? {
        bail!(
            "member `{member}` is still listed in the group config `{}`: remove its `[[members]]` entry \
             (`id = \"{member}\"`) first, so that the next scheduled fetch does not bring them back",
            config.display()
        );
    }
    Ok(())
}

/// Ask on the terminal; `false` unless the member id is typed back.
pub fn confirm(member: &str) -> Result<bool> {
    if !std::io::stdin().is_terminal() {
        bail!("refusing to erase `{member}` without confirmation: pass `--yes`");
    }
    eprint!(
        "This removes everything Earshot holds about `{member}`, and every analytics run, snapshot and \
         report (the next scheduled run writes them again without `{member}`).\nType `{member}` to confirm: "
    );
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(answer.trim() == member)
}

/// Whether any store still holds something of the member (the marker of an interrupted erase
/// included).
pub async fn holds_anything(stores: &Stores, member: &str) -> Result<bool> {
    if stores.storage.exists(&layout::erasure_key(member)).await? {
        return Ok(true);
    }
    if erasure::member_objects_remain(&stores.storage, member).await? {
        return Ok(true);
    }
    for key in layout::member_keys(member) {
        if stores.storage.exists(&key).await? {
            return Ok(true);
        }
    }
    if derived_storage_names(stores, member).await? {
        return Ok(true);
    }
    let db = &stores.db;
    let by_user = doc! {"user_id": member};
    for collection in mongo::MEMBER_ROW_COLLECTIONS {
        if count(db, collection, by_user.clone()).await? > 0 {
            return Ok(true);
        }
    }
    let checks = [
        (mongo::FETCHER_TOKENS, doc! {"_id": member}),
        (
            mongo::DASHBOARD_SESSIONS,
            earshot_state::sessions::of_member(member),
        ),
        (mongo::MEMBERS, doc! {"_id": member}),
        (mongo::MEMBERS_BY_DAY, doc! {mongo::PARTIAL_ENTITY: member}),
        (
            mongo::UPLOAD_LEDGER,
            earshot_core::ledger::member_entries(member),
        ),
    ];
    for (collection, filter) in checks {
        if count(db, collection, filter).await? > 0 {
            return Ok(true);
        }
    }
    for name in analytics_collections(db).await? {
        if count(db, &name, names_member(member, true)).await? > 0 {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Whether a Parquet snapshot (`exports/`) or a report (`reports/`) may hold the member: a snapshot
/// whose `_SUCCESS` lists them (or lists no one, or is missing: incomplete), a report whose
/// `report.json` names them (or a report folder without one: a run cut short).
async fn derived_storage_names(stores: &Stores, member: &str) -> Result<bool> {
    let storage = &stores.storage;
    let exports: BTreeSet<String> = storage
        .list(&format!("{}/", layout::EXPORTS))
        .await?
        .into_iter()
        .collect();
    let mut snapshots = BTreeSet::new();
    for key in &exports {
        if let Some((folder, _)) = key.rsplit_once('/') {
            snapshots.insert(folder.to_string());
        }
    }
    for folder in snapshots {
        let marker = format!("{folder}/{}", earshot_core::export::SUCCESS_MARKER);
        if !exports.contains(&marker) {
            return Ok(true);
        }
        let summary: Option<earshot_core::export::SnapshotSummary> =
            serde_json::from_slice(&storage.read_all(&marker).await?).ok();
        if summary.is_none_or(|s| s.may_name(member)) {
            return Ok(true);
        }
    }
    let reports: BTreeSet<String> = storage
        .list(&format!("{}/", layout::REPORTS))
        .await?
        .into_iter()
        .collect();
    let runs: BTreeSet<&str> = reports
        .iter()
        .filter_map(|key| key.split('/').nth(1))
        .collect();
    let quoted = serde_json::to_string(member)?;
    for run in runs {
        let key = layout::report_key(run, layout::REPORT_JSON);
        if !reports.contains(&key) {
            return Ok(true);
        }
        let text = storage.read_all(&key).await?;
        if String::from_utf8_lossy(&text).contains(&quoted) {
            return Ok(true);
        }
    }
    Ok(false)
}

async fn count(db: &mongodb::Database, collection: &str, filter: Document) -> Result<u64> {
    db.collection::<Document>(collection)
        .count_documents(filter)
        .await
        .with_context(|| format!("reading `{collection}`"))
}

async fn delete(db: &mongodb::Database, collection: &str, filter: Document) -> Result<u64> {
    Ok(db
        .collection::<Document>(collection)
        .delete_many(filter)
        .await
        .with_context(|| format!("deleting from `{collection}`"))?
        .deleted_count)
}

/// "Erase me", by the member themselves (the dashboard's "Your data"): they leave the group first (a
/// [`erasure::Departure`], which no step fetches, imports, converts or uploads past, and which outlives
/// the erase), then [`erase`]. Unlike `members erase`, it does not wait for the operator to take them
/// out of the group config: `status` and `members list` say "left on <date>" until the operator does.
/// They come back only by signing in again.
pub async fn leave(
    stores: &Stores,
    member: &str,
    at: chrono::DateTime<Utc>,
) -> Result<EraseReport> {
    erasure::mark_left(&stores.storage, member, at).await?;
    erase(stores, member).await
}

/// Remove `member` from every store (see the module's documentation for the order).
pub async fn erase(stores: &Stores, member: &str) -> Result<EraseReport> {
    let mut report = EraseReport::default();
    if !holds_anything(stores, member).await? {
        // Listings never show temp files: a crash may have left some where nothing else is.
        let mut temps = 0;
        for prefix in layout::member_prefixes(member) {
            temps += stores.storage.remove_temp_files(&prefix).await?;
        }
        if temps > 0 {
            report.found = true;
            report.note(
                "storage",
                format!("{temps} temp files a crashed write left"),
            );
        }
        return Ok(report);
    }
    report.found = true;
    let marker = layout::erasure_key(member);
    let started = serde_json::json!({"member": member, "started_at": Utc::now().to_rfc3339()});
    stores
        .storage
        .write(&marker, serde_json::to_vec(&started)?.into())
        .await?;
    erasure::advance_epoch(&stores.storage).await?;

    erase_storage(stores, member, &mut report).await?;
    erase_rows(&stores.db, member, &mut report).await?;
    drop_computed(stores, &mut report).await?;
    rebuild_derived(stores, &mut report).await?;
    stores.storage.delete(&marker).await?;
    Ok(report)
}

/// The member's own storage objects (and temp files a crashed write left among them) and state.
async fn erase_storage(stores: &Stores, member: &str, report: &mut EraseReport) -> Result<()> {
    // Storage: the member's own objects, and temp files a crashed write left among them.
    let mut objects = 0;
    for prefix in layout::member_prefixes(member) {
        objects += stores.storage.delete_prefix(&prefix).await?;
        objects += stores.storage.remove_temp_files(&prefix).await?;
    }
    report.note(
        "storage",
        format!("{objects} raw pages, imported history files and converted files"),
    );
    let mut state = 0;
    for key in layout::member_keys(member) {
        if stores.storage.delete(&key).await? {
            state += 1;
        }
    }
    report.note(
        "storage",
        format!("{state} state objects (fetch state, encrypted tokens, import progress)"),
    );
    Ok(())
}

/// The member's MongoDB rows, token record and ledger entries.
async fn erase_rows(db: &mongodb::Database, member: &str, report: &mut EraseReport) -> Result<()> {
    // What their rows touch, recorded before the rows and ledger entries go; their own derived
    // documents removed.
    let n = earshot_collections::forget_member(db, member).await?;
    report.note(
        "mongodb derived collections",
        format!("{n} of their own documents (members, per-day partials, artist links, top tracks)"),
    );
    // MongoDB: the member's rows, token record and ledger entries.
    for collection in mongo::MEMBER_ROW_COLLECTIONS {
        let n = delete(db, collection, doc! {"user_id": member}).await?;
        report.note(format!("mongodb {collection}"), format!("{n} rows"));
    }
    // Their token record, and their own dashboard sessions (the group password's name no one).
    for (collection, filter, what) in [
        (mongo::FETCHER_TOKENS, doc! {"_id": member}, "token records"),
        (
            mongo::DASHBOARD_SESSIONS,
            earshot_state::sessions::of_member(member),
            "sessions",
        ),
    ] {
        let n = delete(db, collection, filter).await?;
        report.note(format!("mongodb {collection}"), format!("{n} {what}"));
    }
    let n = delete(
        db,
        mongo::UPLOAD_LEDGER,
        earshot_core::ledger::member_entries(member),
    )
    .await?;
    report.note(
        format!("mongodb {}", mongo::UPLOAD_LEDGER),
        format!("{n} entries naming them"),
    );
    Ok(())
}

/// Everything computed from every member's plays together: analytics runs, snapshots, reports.
async fn drop_computed(stores: &Stores, report: &mut EraseReport) -> Result<()> {
    // Everything computed from every member's plays together.
    let mut rows = 0;
    for name in analytics_collections(&stores.db).await? {
        rows += delete(&stores.db, &name, doc! {}).await?;
    }
    let runs = delete(&stores.db, mongo::ANALYTICS_RUNS, doc! {}).await?;
    report.note(
        "mongodb analytics_*",
        format!("{runs} runs ({rows} rows), to be computed again without them"),
    );
    let snapshots = stores
        .storage
        .delete_prefix(&format!("{}/", layout::EXPORTS))
        .await?;
    report.note(
        "storage exports/",
        format!("{snapshots} Parquet snapshot files, to be exported again without them"),
    );
    let reports = stores
        .storage
        .delete_prefix(&format!("{}/", layout::REPORTS))
        .await?;
    report.note(
        "storage reports/",
        format!("{reports} report files (report.json, charts, Spark outputs)"),
    );
    Ok(())
}

/// The derived collections brought up to date without the member (what their rows touched, rebuilt
/// from the remaining rows: [`earshot_collections::forget`]), and the track catalogue pruned.
async fn rebuild_derived(stores: &Stores, report: &mut EraseReport) -> Result<()> {
    let options = BuildOptions {
        mode: Mode::Incremental,
        margin: std::time::Duration::ZERO,
    };
    // Without them in the group even while the config still lists them (they left): the build adds
    // the config's members without plays, and must not add them back.
    let group = erasure::without_departed(&stores.storage, &stores.group).await?;
    earshot_collections::build_with(&stores.db, Target::All, &group, options)
        .await
        .context("rebuilding the derived collections without them")?;
    earshot_collections::forget_erasures(&stores.db).await?;
    report.note(
        "mongodb derived collections",
        "rebuilt where their plays were (the days they played on: counts, listener sets, members)",
    );
    let n = prune_catalogue(&stores.db).await?;
    report.note(
        format!("mongodb {}", mongo::TRACK_CATALOGUE),
        format!("{n} entries of tracks no remaining play names"),
    );
    Ok(())
}

/// Remove the track-catalogue entries of tracks no remaining row names.
async fn prune_catalogue(db: &mongodb::Database) -> Result<u64> {
    let mut named: Vec<Bson> = Vec::new();
    for collection in [mongo::RAW_RECENTLY_PLAYED, mongo::RAW_TOP_TRACKS] {
        named.extend(mongo::distinct(db, collection, "track_id", doc! {}).await?);
    }
    delete(db, mongo::TRACK_CATALOGUE, doc! {"_id": {"$nin": named}}).await
}
