//! `data-fetcher import`: a member's Extended Streaming History (`my_spotify_data.zip`), once,
//! complete, and stripped of device fields before anything is written.
//!
//! Each export file is read on its own (memory holds one file, never the whole history), its entries
//! are parsed into [`HistoryEntry`], which keeps only the fields Earshot uses (`ip_addr`,
//! `conn_country`, `platform`, the user agent and the rest are dropped as the file is read), and the
//! stripped file is stored under `raw/streaming_history/user=<id>/<name>-<content hash>.json`. From
//! there the pipeline treats it like API pages: `json-converter streaming-history` turns its music
//! plays into recently-played records, `data-upload` loads them (merging plays the API already has).
//!
//! The import is idempotent and resumable: the same file imported again lands on the same key, a
//! later export's files add keys, and the progress (`state/imports/<id>.json`) is recomputed from
//! every stored file of the member, so a run killed at any moment and run again ends with exactly the
//! right counts. Plays an export repeats across its files count once.

use std::collections::{BTreeMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use earshot_core::history::{Disposition, HistoryEntry, VIDEO_FILE_PREFIX, is_history_file};
use earshot_core::progress::Progress;
use earshot_core::{GroupConfig, Storage, layout};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tracing::info;

/// One export file to import: its name in the export and its bytes.
struct Source {
    /// Where it was read from (the zip and the entry, or the path), for messages.
    origin: String,
    /// The file's name (`Streaming_History_Audio_2023-2024_3.json`).
    name: String,
    /// How to read it.
    from: From,
}

enum From {
    File(PathBuf),
    Zip(PathBuf, usize),
}

impl Source {
    fn read(&self) -> Result<Vec<u8>> {
        let mut bytes = Vec::new();
        match &self.from {
            From::File(path) => {
                bytes =
                    std::fs::read(path).with_context(|| format!("reading `{}`", self.origin))?;
            }
            From::Zip(path, index) => {
                let file = std::fs::File::open(path)
                    .with_context(|| format!("opening `{}`", path.display()))?;
                let mut archive = zip::ZipArchive::new(file)
                    .with_context(|| format!("`{}` is not a readable zip", path.display()))?;
                archive
                    .by_index(*index)
                    .with_context(|| format!("reading `{}`", self.origin))?
                    .read_to_end(&mut bytes)
                    .with_context(|| format!("reading `{}`", self.origin))?;
            }
        }
        Ok(bytes)
    }

    fn is_video(&self) -> bool {
        self.name.starts_with(VIDEO_FILE_PREFIX)
    }
}

/// The export files under `paths`: a zip (its `Streaming_History_*` entries), a folder (searched
/// below), or single JSON files; sorted by name, so a run always goes in the same order.
fn sources(paths: &[PathBuf]) -> Result<Vec<Source>> {
    let mut found = Vec::new();
    for path in paths {
        let meta =
            std::fs::metadata(path).with_context(|| format!("reading `{}`", path.display()))?;
        if meta.is_dir() {
            walk(path, &mut found)?;
        } else if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("zip"))
        {
            let file = std::fs::File::open(path)
                .with_context(|| format!("opening `{}`", path.display()))?;
            let mut archive = zip::ZipArchive::new(file)
                .with_context(|| format!("`{}` is not a readable zip", path.display()))?;
            for index in 0..archive.len() {
                let entry = archive
                    .by_index(index)
                    .with_context(|| format!("reading the index of `{}`", path.display()))?;
                let inner = entry
                    .name()
                    .with_context(|| format!("a name in `{}`", path.display()))?
                    .to_string();
                let name = inner.rsplit('/').next().unwrap_or(&inner).to_string();
                if entry.is_file() && is_history_file(&name) {
                    found.push(Source {
                        origin: format!("{}:{inner}", path.display()),
                        name,
                        from: From::Zip(path.clone(), index),
                    });
                }
            }
        } else {
            let name = file_name(path);
            if !name.ends_with(".json") {
                bail!(
                    "`{}` is neither a zip, a folder, nor a `Streaming_History_Audio_*.json` file",
                    path.display()
                );
            }
            found.push(Source {
                origin: path.display().to_string(),
                name,
                from: From::File(path.clone()),
            });
        }
    }
    if found.is_empty() {
        bail!(
            "no `Streaming_History_Audio_*.json` file in {}: give the zip Spotify sent \
             (`my_spotify_data.zip`), the folder inside it, or its files",
            paths
                .iter()
                .map(|p| format!("`{}`", p.display()))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    found.sort_by(|a, b| a.name.cmp(&b.name).then(a.origin.cmp(&b.origin)));
    Ok(found)
}

fn walk(dir: &Path, found: &mut Vec<Source>) -> Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("reading `{}`", dir.display()))?
        .collect::<std::io::Result<_>>()?;
    entries.sort_by_key(|e| e.path());
    for entry in entries {
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            walk(&path, found)?;
        } else if is_history_file(&file_name(&path)) {
            found.push(Source {
                origin: path.display().to_string(),
                name: file_name(&path),
                from: From::File(path),
            });
        }
    }
    Ok(())
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// A member's import progress, kept in `state/imports/<id>.json`: counts only.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportState {
    /// Spotify user id.
    pub member: String,
    /// Export files stored (audio files; video files are counted, not stored).
    pub files: usize,
    /// Music plays imported: distinct across every file (an export repeats records).
    pub plays: u64,
    /// Entries set aside, distinct, by reason (`episode`, `audiobook`, `video`, `no_track_uri`,
    /// `incognito`, `short`).
    pub set_aside: BTreeMap<String, u64>,
    /// Entries read that repeated an entry already read (in another file or the same one).
    pub repeated: u64,
    /// Distinct tracks among the plays (what enrichment has to look up).
    pub tracks: u64,
    /// Distinct tracks of the imported plays stored in MongoDB, as of the last `enrich` (plays the
    /// API also had are stored as API plays, whose tracks need no enrichment); 0 before it ran.
    #[serde(default)]
    pub tracks_stored: u64,
    /// Of those, tracks the catalogue has (as of the last `enrich`).
    #[serde(default)]
    pub tracks_enriched: u64,
    /// Of those, tracks Spotify no longer has (404; their plays keep the export's names).
    #[serde(default)]
    pub tracks_unavailable: u64,
    /// The earliest and latest play imported.
    pub first_play: Option<DateTime<Utc>>,
    /// See `first_play`.
    pub last_play: Option<DateTime<Utc>>,
    /// Entries of video files (not stored), by file name, so a later run still counts them.
    #[serde(default)]
    pub video_files: BTreeMap<String, u64>,
    /// When this state was written.
    pub updated_at: Option<DateTime<Utc>>,
}

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

/// Import the export files under `paths` for `member`.
pub async fn import(
    storage: &Storage,
    group: &GroupConfig,
    member: &str,
    paths: &[PathBuf],
    now: DateTime<Utc>,
) -> Result<ImportReport> {
    if group.member(member).is_none() {
        bail!(
            "`--member {member}`: the group config lists no such member (add it under [[members]] first)"
        );
    }
    let sources = sources(paths)?;
    let prefix = layout::history_prefix(member);
    let stored: HashSet<String> = storage.list(&prefix).await?.into_iter().collect();
    let mut previous = read_state(storage, member).await?.unwrap_or_default();
    let progress = Progress::new(
        format!("Importing the streaming history of {member}"),
        "files",
        sources.len() as u64,
    );
    let mut files_new = 0;
    for source in &sources {
        let bytes = source.read()?;
        let entries: Vec<HistoryEntry<'_>> = parse_entries(&bytes, &source.origin)?;
        if source.is_video() {
            previous
                .video_files
                .insert(source.name.clone(), entries.len() as u64);
        } else {
            // Only the fields Earshot keeps are written: the device fields never reach storage.
            let stripped = serde_json::to_vec(&entries)?;
            let hash = hex(&Sha256::digest(&stripped)[..8]);
            let key = layout::history_key(member, &source.name, &hash);
            if !stored.contains(&key) {
                storage.write(&key, Bytes::from(stripped)).await?;
                files_new += 1;
            }
        }
        progress.inc(1);
    }
    progress.finish();
    let mut state = totals(storage, member, previous.video_files).await?;
    state.tracks_stored = previous.tracks_stored;
    state.tracks_enriched = previous.tracks_enriched;
    state.tracks_unavailable = previous.tracks_unavailable;
    state.updated_at = Some(now);
    write_state(storage, &state).await?;
    info!(
        member,
        files = sources.len(),
        new = files_new,
        plays = state.plays,
        repeated = state.repeated,
        "Imported a streaming history."
    );
    Ok(ImportReport {
        files_read: sources.len(),
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
                other => *state.set_aside.entry(other.as_str().into()).or_default() += 1,
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
    state.tracks = tracks.len() as u64;
    Ok(state)
}

/// A member's import progress, if they imported.
pub async fn read_state(storage: &Storage, member: &str) -> Result<Option<ImportState>> {
    let key = layout::import_state_key(member);
    if !storage.exists(&key).await? {
        return Ok(None);
    }
    let bytes = storage.read_all(&key).await?;
    Ok(Some(serde_json::from_slice(&bytes).with_context(|| {
        format!("`{}` is not an import state", storage.location(&key))
    })?))
}

/// After enrichment: each importing member's tracks the catalogue has, into their import progress.
pub async fn record_enrichment(
    storage: &Storage,
    db: &mongodb::Database,
    group: &GroupConfig,
) -> Result<()> {
    use earshot_core::mongo::{
        CATALOGUE_OK, CATALOGUE_UNAVAILABLE, RAW_RECENTLY_PLAYED, TRACK_CATALOGUE,
    };
    use mongodb::bson::{Document, doc};
    for member in &group.members {
        let Some(mut state) = read_state(storage, &member.id).await? else {
            continue;
        };
        let tracks: Vec<mongodb::bson::Bson> = db
            .collection::<Document>(RAW_RECENTLY_PLAYED)
            .distinct(
                "track_id",
                doc! {"user_id": &member.id, "source": earshot_core::records::PlaySource::History.as_str()},
            )
            .await?;
        let catalogue = db.collection::<Document>(TRACK_CATALOGUE);
        state.tracks_stored = tracks.len() as u64;
        state.tracks_enriched = catalogue
            .count_documents(doc! {"_id": {"$in": &tracks}, "status": CATALOGUE_OK})
            .await?;
        state.tracks_unavailable = catalogue
            .count_documents(doc! {"_id": {"$in": &tracks}, "status": CATALOGUE_UNAVAILABLE})
            .await?;
        write_state(storage, &state).await?;
    }
    Ok(())
}

async fn write_state(storage: &Storage, state: &ImportState) -> Result<()> {
    let key = layout::import_state_key(&state.member);
    storage
        .write(&key, Bytes::from(serde_json::to_vec_pretty(state)?))
        .await?;
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
