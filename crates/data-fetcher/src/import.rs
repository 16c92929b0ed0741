//! `data-fetcher import`: a member's Extended Streaming History (`my_spotify_data.zip`), once,
//! complete, and stripped of device fields before anything is written.
//!
//! Each export file is read on its own (memory holds one file, never the whole history), its entries
//! are parsed into [`HistoryEntry`], which keeps only the fields Earshot uses (`ip_addr`,
//! `conn_country`, `platform`, the user agent and the rest are dropped as the file is read), and the
//! stripped file is stored under `raw/streaming_history/user=<id>/<name>-<content hash>.json`. From
//! there the pipeline treats it like API pages: `json-converter streaming-history` turns its music
//! plays into recently-played records, `data-upload` loads them (merging plays the API already has);
//! `json-converter spoken-history` turns its podcast episodes and audiobook chapters into spoken plays
//! (`rawdata_spoken`), apart from the music.
//!
//! **Only what is real, only what is used.** A folder's symlinks are refused (an `unzip` restores them,
//! and one could point anywhere on the machine). An entry dated before Spotify existed or after the
//! import is set aside as `out_of_range`. The stored file holds only the entries Earshot uses (music
//! plays and spoken plays): incognito, short, out-of-range and unusable entries are counted
//! (`held_back` in the progress) and never stored. An export whose `username` is another Spotify
//! account than the member's is refused, naming whose it looks like (`--force` imports it anyway).
//!
//! The import is idempotent and resumable: the same file imported again lands on the same key, a
//! later export's files add keys, and the progress (`state/imports/<id>.json`) is recomputed from
//! every stored file of the member, so a run killed at any moment and run again ends with exactly the
//! right counts. Plays an export repeats across its files count once.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use earshot_core::erasure::ErasureGuard;
use earshot_core::history::{Disposition, HistoryEntry};
use earshot_core::progress::Progress;
use earshot_core::{GroupConfig, Storage, layout};
use earshot_state::import_progress::HeldBack;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tracing::info;

use earshot_state::import_progress::{ImportState, read_state, write_state};

mod reader;
use reader::{Export, Source};
pub use reader::{MAX_FILE_BYTES, MAX_TOTAL_BYTES, MAX_ZIP_ENTRIES};

/// What one import run did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    /// Files read in this run.
    pub files_read: usize,
    /// Files stored that were not stored before.
    pub files_new: usize,
    /// The member's totals after this run.
    #[serde(flatten)]
    pub state: ImportState,
}

/// One file checked: what the import stores for it.
enum Checked {
    /// An audio file: stored stripped under this key (with this content hash), with what it held
    /// and was not stored.
    Audio {
        key: String,
        hash: String,
        held_back: HeldBack,
    },
    /// A video file: counted, not stored.
    Video { entries: u64 },
}

/// What the checks of one import share: the time it runs at, whose export it must be, and the
/// entries read so far (an export repeats entries across its files).
struct Checking<'m> {
    member: &'m str,
    now: DateTime<Utc>,
    /// Import an export whose `username` is another account's.
    force: bool,
    seen: HashSet<String>,
}

/// Parse and strip one file: its key, hash and held-back counts, or its entry count for a video
/// file; and the bytes to store (only the entries Earshot uses: music plays and spoken plays).
fn check(
    checking: &mut Checking<'_>,
    source: &Source,
    bytes: &[u8],
) -> Result<(Checked, Option<Vec<u8>>)> {
    let entries: Vec<HistoryEntry<'_>> = parse_entries(bytes, &source.origin)?;
    let member = checking.member;
    if !checking.force
        && let Some(other) = entries
            .iter()
            .filter_map(|e| e.username.as_deref())
            .find(|name| *name != member)
    {
        bail!(
            "`{}`: this export belongs to the Spotify account `{other}`, not to `{member}`: it looks \
             like `{other}`'s export. Import it for that member (`--member {other}`), or pass \
             `--force` if `{member}` really is that account. Nothing was stored.",
            source.origin
        );
    }
    if source.is_video() {
        return Ok((
            Checked::Video {
                entries: entries.len() as u64,
            },
            None,
        ));
    }
    let mut used = Vec::with_capacity(entries.len());
    let mut held_back = HeldBack::default();
    for (i, entry) in entries.into_iter().enumerate() {
        let disposition = entry.disposition_at(false, checking.now);
        if disposition == Disposition::Kept && entry.ended_at().is_err() {
            bail!(
                "`{}`: entry {i}: `ts` `{}` is not a time (RFC 3339, e.g. 2024-10-21T07:15:03Z). \
                 Nothing was stored.",
                source.origin,
                entry.ts
            );
        }
        let keep =
            disposition == Disposition::Kept || entry.spoken_at(false, checking.now).is_some();
        let first = checking.seen.insert(entry.identity());
        if keep {
            used.push(entry);
        } else if first {
            *held_back
                .set_aside
                .entry(disposition.as_str().into())
                .or_default() += 1;
        } else {
            held_back.repeated += 1;
        }
    }
    // Only the fields and the entries Earshot uses are written: the device fields, incognito and
    // short entries never reach storage.
    let stripped = serde_json::to_vec(&used)?;
    let hash = earshot_state::sessions::hex(&Sha256::digest(&stripped)[..8]);
    let key = layout::history_key(member, &source.name, &hash);
    Ok((
        Checked::Audio {
            key,
            hash,
            held_back,
        },
        Some(stripped),
    ))
}

/// The first pass: every file read, parsed and checked, nothing stored.
fn check_all(export: &mut Export, checking: &mut Checking<'_>) -> Result<Vec<Checked>> {
    let count = export.sources.len();
    let progress = Progress::new(
        format!("Checking the streaming history of {}", checking.member),
        "files",
        count as u64,
    );
    let mut checked = Vec::with_capacity(count);
    for i in 0..count {
        let bytes = export.read(i)?;
        checked.push(check(checking, &export.sources[i], &bytes)?.0);
        progress.inc(1);
    }
    progress.finish();
    Ok(checked)
}

/// The second pass: the files `new` read again, stripped and stored (each must read as it did in the
/// first pass).
async fn store_new(
    storage: &Storage,
    export: &mut Export,
    checking: &mut Checking<'_>,
    checked: &[Checked],
    new: &[usize],
    guard: &ErasureGuard,
) -> Result<()> {
    let progress = Progress::new(
        format!("Importing the streaming history of {}", checking.member),
        "files",
        new.len() as u64,
    );
    export.read = 0;
    let mut stored: Vec<String> = Vec::new();
    for &i in new {
        let bytes = export.read(i)?;
        let (again, stripped) = check(checking, &export.sources[i], &bytes)?;
        let (Checked::Audio { key, hash, .. }, Some(stripped)) = (again, stripped) else {
            unreachable!("an audio file checks as one");
        };
        let Checked::Audio { hash: first, .. } = &checked[i] else {
            unreachable!("only audio files are stored");
        };
        if *first != hash {
            bail!(
                "`{}` changed while it was imported: run the import again",
                export.sources[i].origin
            );
        }
        withdraw_if_erased(storage, guard, &stored).await?;
        storage.write(&key, Bytes::from(stripped)).await?;
        stored.push(key);
        withdraw_if_erased(storage, guard, &stored).await?;
        progress.inc(1);
    }
    progress.finish();
    Ok(())
}

/// When an erase started since the import began, delete what it stored and stop: the member may be
/// the one erased, and an import is all or nothing (run it again once the erase has finished).
async fn withdraw_if_erased(
    storage: &Storage,
    guard: &ErasureGuard,
    stored: &[String],
) -> Result<()> {
    if let Err(err) = guard.check(!stored.is_empty()).await {
        for key in stored {
            storage.delete(key).await?;
        }
        return Err(err.into());
    }
    Ok(())
}

/// Import the export files under `paths` for `member`: all or nothing. Every file is read, parsed and
/// checked first (within the caps), and only then is anything stored, so a malformed or oversized file
/// anywhere leaves storage as it was. Memory holds one file at a time (each is read twice).
pub async fn import(
    storage: &Storage,
    group: &GroupConfig,
    member: &str,
    paths: &[PathBuf],
    now: DateTime<Utc>,
) -> Result<ImportReport> {
    import_with_options(storage, group, member, paths, now, ImportOptions::default()).await
}

/// How an import runs.
#[derive(Debug, Clone, Copy, Default)]
pub struct ImportOptions {
    /// Only check: every file read and parsed, nothing stored.
    pub dry_run: bool,
    /// Import an export whose `username` names another Spotify account than the member's.
    pub force: bool,
}

/// [`import`], or with `dry_run` only its checks: every file read and parsed, nothing stored.
pub async fn import_with(
    storage: &Storage,
    group: &GroupConfig,
    member: &str,
    paths: &[PathBuf],
    now: DateTime<Utc>,
    dry_run: bool,
) -> Result<ImportReport> {
    let options = ImportOptions {
        dry_run,
        ..ImportOptions::default()
    };
    import_with_options(storage, group, member, paths, now, options).await
}

/// What every import checks first: the group config lists `member`, and no erase of them is under way.
/// Returns the erase guard the import holds to while it writes.
pub(crate) async fn begin(
    storage: &Storage,
    group: &GroupConfig,
    member: &str,
) -> Result<ErasureGuard> {
    if group.member(member).is_none() {
        bail!(
            "`--member {member}`: the group config lists no such member (add it under [[members]] first)"
        );
    }
    let guard = ErasureGuard::begin(storage, "data-fetcher import").await?;
    if guard.being_erased(member).await? {
        bail!(
            "`--member {member}` left the group (erased themselves from the dashboard): nothing of \
             theirs is imported until they sign in again"
        );
    }
    Ok(guard)
}

/// [`import`] with these options (with `dry_run` only its checks).
pub async fn import_with_options(
    storage: &Storage,
    group: &GroupConfig,
    member: &str,
    paths: &[PathBuf],
    now: DateTime<Utc>,
    options: ImportOptions,
) -> Result<ImportReport> {
    let guard = begin(storage, group, member).await?;
    let mut export = Export::open(paths)?;
    let count = export.sources.len();
    let mut checking = Checking {
        member,
        now,
        force: options.force,
        seen: HashSet::new(),
    };
    let checked = check_all(&mut export, &mut checking)?;
    let prefix = layout::history_prefix(member);
    let stored: HashSet<String> = storage.list(&prefix).await?.into_iter().collect();
    let new: Vec<usize> = (0..count)
        .filter(|i| matches!(&checked[*i], Checked::Audio { key, .. } if !stored.contains(key)))
        .collect();
    let mut previous = read_state(storage, member).await?.unwrap_or_default();
    if options.dry_run {
        info!(
            member,
            files = count,
            new = new.len(),
            "Checked a streaming history: nothing stored (--dry-run)."
        );
        let mut state = previous;
        state.member = member.to_string();
        return Ok(ImportReport {
            files_read: count,
            files_new: new.len(),
            state,
        });
    }
    for (source, checked) in export.sources.iter().zip(&checked) {
        match checked {
            Checked::Video { entries } => {
                previous.video_files.insert(source.name.clone(), *entries);
            }
            Checked::Audio { key, held_back, .. } => {
                previous.held_back.insert(key.clone(), held_back.clone());
            }
        }
    }
    checking.seen.clear();
    store_new(storage, &mut export, &mut checking, &checked, &new, &guard).await?;
    let files_new = new.len();
    let mut state = totals(storage, member, previous.video_files, previous.held_back).await?;
    state.tracks_stored = previous.tracks_stored;
    state.tracks_enriched = previous.tracks_enriched;
    state.tracks_unavailable = previous.tracks_unavailable;
    state.updated_at = Some(now);
    guard.check(true).await?;
    write_state(storage, &state).await?;
    info!(
        member,
        files = count,
        new = files_new,
        plays = state.plays,
        spoken = state.spoken,
        repeated = state.repeated,
        "Imported a streaming history."
    );
    Ok(ImportReport {
        files_read: count,
        files_new,
        state,
    })
}

/// The entries of one export file, or an error naming the file, the line and the field.
fn parse_entries<'b>(bytes: &'b [u8], origin: &str) -> Result<Vec<HistoryEntry<'b>>> {
    let text = std::str::from_utf8(bytes).with_context(|| format!("`{origin}` is not UTF-8"))?;
    let mut de = serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let at = e.path().to_string();
        let inner = e.into_inner();
        anyhow::anyhow!(
            "`{origin}`: line {}, column {}, at `{at}`: {}",
            inner.line(),
            inner.column(),
            earshot_core::records::serde_message(&inner)
        )
    })
}

/// The member's totals over every stored file (and the video files counted before).
async fn totals(
    storage: &Storage,
    member: &str,
    video_files: BTreeMap<String, u64>,
    held_back: BTreeMap<String, HeldBack>,
) -> Result<ImportState> {
    let mut state = ImportState {
        member: member.to_string(),
        ..ImportState::default()
    };
    let mut seen: HashSet<String> = HashSet::new();
    let mut tracks: HashSet<String> = HashSet::new();
    let mut keys = storage.list(&layout::history_prefix(member)).await?;
    keys.sort();
    for key in &keys {
        let bytes = storage.read_all(key).await?;
        let entries = parse_entries(&bytes, &storage.location(key))?;
        state.files += 1;
        for entry in entries {
            if !seen.insert(entry.identity()) {
                state.repeated += 1;
                continue;
            }
            match entry.disposition(false) {
                Disposition::Kept => {
                    let Ok(at) = entry.ended_at() else {
                        bail!(
                            "`{}`: `ts` `{}` is not a time",
                            storage.location(key),
                            entry.ts
                        );
                    };
                    state.plays += 1;
                    state.first_play = Some(state.first_play.map_or(at, |t| t.min(at)));
                    state.last_play = Some(state.last_play.map_or(at, |t| t.max(at)));
                    if let Some(id) = entry.track_id()
                        && !tracks.contains(id)
                    {
                        tracks.insert(id.to_string());
                    }
                }
                other => {
                    *state.set_aside.entry(other.as_str().into()).or_default() += 1;
                    if entry.spoken(false).is_some() {
                        state.spoken += 1;
                    }
                }
            }
        }
    }
    let videos: u64 = video_files.values().sum();
    if videos > 0 {
        *state
            .set_aside
            .entry(Disposition::Video.as_str().into())
            .or_default() += videos;
    }
    state.video_files = video_files;
    // What the stored files held and were not stored, by stored file (files no longer stored drop).
    let held_back: BTreeMap<String, HeldBack> = held_back
        .into_iter()
        .filter(|(key, _)| keys.binary_search(key).is_ok())
        .collect();
    for held in held_back.values() {
        state.repeated += held.repeated;
        for (reason, n) in &held.set_aside {
            *state.set_aside.entry(reason.clone()).or_default() += n;
        }
    }
    state.held_back = held_back;
    state.tracks = tracks.len() as u64;
    Ok(state)
}

/// After enrichment: each importing member's tracks the catalogue has, into their import progress.
pub async fn record_enrichment(
    storage: &Storage,
    db: &mongodb::Database,
    group: &GroupConfig,
) -> Result<()> {
    use earshot_core::ledger::CatalogueStatus;
    use earshot_core::mongo::{RAW_RECENTLY_PLAYED, TRACK_CATALOGUE};
    use mongodb::bson::{Document, doc};
    for member in &group.members {
        let Some(mut state) = read_state(storage, &member.id).await? else {
            continue;
        };
        let tracks: Vec<mongodb::bson::Bson> = earshot_core::mongo::distinct(
            db,
            RAW_RECENTLY_PLAYED,
            "track_id",
            doc! {"user_id": &member.id, "source": earshot_core::records::PlaySource::History.as_str()},
        )
        .await?;
        let catalogue = db.collection::<Document>(TRACK_CATALOGUE);
        state.tracks_stored = tracks.len() as u64;
        state.tracks_enriched = catalogue
            .count_documents(doc! {"_id": {"$in": &tracks}, "status": CatalogueStatus::Ok.as_str()})
            .await?;
        state.tracks_unavailable = catalogue
            .count_documents(
                doc! {"_id": {"$in": &tracks}, "status": CatalogueStatus::Unavailable.as_str()},
            )
            .await?;
        write_state(storage, &state).await?;
    }
    Ok(())
}
