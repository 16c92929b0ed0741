//! `earshot-upload`: converted JSON Lines records → MongoDB `rawdata_*` collections (the `data-upload`
//! binary is its command line).
//!
//! Every record carries its deterministic `_id` (docs/architecture.md, "Stores"), so loading is an upsert: a re-run
//! inserts nothing and modifies nothing, and a run cut short (MongoDB down mid-way) is finished by the
//! next one with no duplicates. A file is loaded once: the upload ledger ([`ledger`]) records it after
//! its upserts are acknowledged, and the next run skips it (`--reload` loads everything again). Records go in unordered batches; memory holds one batch and one file.
//! Times become BSON dates. A file with a bad line is reported (file, line, field) and skipped whole,
//! so no file is ever half-loaded; the rest still loads, and the exit code says partial.

pub mod loaded_files;
pub mod reconcile;
pub mod upsert;

use std::io::BufRead;

use anyhow::{Context as _, Result};
use earshot_core::Storage;
use earshot_core::layout::{self, RawKind};
use earshot_core::progress::Progress;
use earshot_core::records::{
    RecentlyPlayedRecord, SpokenPlayRecord, TopArtistRecord, TopTrackRecord,
};
use mongodb::Database;
use mongodb::bson::{self, Bson, Document};
use serde::{Deserialize, Serialize};
use tracing::{error, info};

use earshot_core::ledger::LedgerEntry;
use earshot_core::mongo::ensure_indexes;
pub use upsert::{Counts, Upserter};

/// What loading one collection did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The collection.
    pub collection: String,
    /// The kind of converted file loaded (`recently_played`, `streaming_history`, …).
    pub kind: &'static str,
    /// Plays found to be one with a play stored from the other source (imported history and API).
    pub merged: u64,
    /// Upsert counts.
    #[serde(flatten)]
    pub counts: Counts,
    /// Files (or stdin lines) that were rejected.
    pub failed: usize,
    /// Files loaded.
    pub files: usize,
    /// Files skipped: the upload ledger lists them as loaded.
    pub skipped: usize,
    /// Members whose files this run loaded (not printed).
    #[serde(skip)]
    pub members: std::collections::BTreeSet<String>,
}

impl Report {
    /// The report, logged.
    fn logged(self) -> Report {
        info!(
            collection = self.collection,
            files = self.files,
            skipped = self.skipped,
            failed = self.failed,
            merged = self.merged,
            read = self.counts.read,
            inserted = self.counts.inserted,
            modified = self.counts.modified,
            "Loaded converted records."
        );
        self
    }
}

/// Parse one converted line of `kind` into the document stored: the typed record (so a wrong shape is
/// refused, naming the field), with `played_at` as a BSON date.
pub fn to_document(kind: RawKind, line: &str) -> Result<Document, String> {
    fn typed<'a, T: Deserialize<'a> + Serialize>(line: &'a str) -> Result<Document, String> {
        let mut de = serde_json::Deserializer::from_str(line);
        let record: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let at = e.path().to_string();
            let inner = e.into_inner();
            let message = earshot_core::records::serde_message(&inner);
            if at.is_empty() || at == "." {
                format!("column {}: {message}", inner.column())
            } else {
                format!("at `{at}`: {message}")
            }
        })?;
        bson::to_document(&record).map_err(|e| e.to_string())
    }
    fn with_date(mut document: Document) -> Result<Document, String> {
        let played_at = match document.get_str("played_at") {
            Ok(text) => bson::DateTime::parse_rfc3339_str(text)
                .map_err(|e| format!("at `played_at`: {e}"))?,
            Err(_) => return Err("at `played_at`: missing".to_string()),
        };
        document.insert("played_at", Bson::DateTime(played_at));
        Ok(document)
    }
    match kind {
        RawKind::RecentlyPlayed | RawKind::StreamingHistory | RawKind::Listens => {
            with_date(typed::<RecentlyPlayedRecord>(line)?)
        }
        RawKind::SpokenHistory => with_date(typed::<SpokenPlayRecord>(line)?),
        RawKind::TopTracks => typed::<TopTrackRecord>(line),
        RawKind::TopArtists => typed::<TopArtistRecord>(line),
    }
}

/// How [`load_storage`] loads.
#[derive(Debug, Clone, Copy)]
pub struct LoadOptions {
    /// Records per round trip.
    pub batch_size: usize,
    /// Load files the ledger lists as loaded too.
    pub reload: bool,
    /// Imported and API plays this close are one play ([`reconcile`]).
    pub match_tolerance_ms: u64,
}

/// [`LoadOptions::match_tolerance_ms`] by default.
pub const DEFAULT_MATCH_TOLERANCE_MS: u64 = earshot_core::history::DEFAULT_MATCH_TOLERANCE_S * 1000;

impl Default for LoadOptions {
    fn default() -> LoadOptions {
        LoadOptions {
            batch_size: 1000,
            reload: false,
            match_tolerance_ms: DEFAULT_MATCH_TOLERANCE_MS,
        }
    }
}

/// The converted files of `kind` under `prefix` (a folder, or one file) that the ledger does not list
/// yet (every one with `reload`), and how many were listed in all.
async fn files_to_load(
    db: &Database,
    storage: &Storage,
    kind: RawKind,
    prefix: &str,
    reload: bool,
) -> Result<(Vec<String>, usize)> {
    let mut keys: Vec<String> = if prefix.ends_with(layout::CONVERTED_SUFFIX) {
        vec![prefix.to_string()]
    } else {
        storage
            .list(prefix)
            .await?
            .into_iter()
            .filter(|k| layout::is_converted_file(k, kind))
            .collect()
    };
    let listed = keys.len();
    if !reload {
        let loaded = loaded_files::loaded(db, kind.collection(), prefix).await?;
        keys.retain(|key| !loaded.contains(key));
    }
    Ok((keys, listed))
}

/// Load every converted file of `kind` under `prefix` that the upload ledger does not list yet (every
/// one with `reload`), and record each in the ledger once its upserts are acknowledged.
pub async fn load_storage(
    db: &Database,
    storage: &Storage,
    kind: RawKind,
    prefix: &str,
    options: LoadOptions,
) -> Result<Report> {
    let collection = kind.collection();
    ensure_indexes(db, collection).await?;
    ensure_indexes(db, earshot_core::mongo::UPLOAD_LEDGER).await?;
    let (keys, listed) = files_to_load(db, storage, kind, prefix, options.reload).await?;
    let skipped = listed - keys.len();
    let progress = Progress::new("Loading converted files", "files", keys.len() as u64);
    let mut upserter = Upserter::new(db.clone(), collection, options.batch_size);
    // Imported and API plays share the collection: each file is matched against the other source.
    let mut reconciler =
        if collection == earshot_core::mongo::RAW_RECENTLY_PLAYED && !keys.is_empty() {
            Some(reconcile::Reconciler::new(
                db,
                collection,
                options.match_tolerance_ms,
            ))
        } else {
            None
        };
    // Files whose documents are all queued: stored once the next batch is acknowledged.
    let mut pending: Vec<LedgerEntry> = Vec::new();
    let (mut files, mut failed, mut merged) = (0, 0, 0);
    let mut members = std::collections::BTreeSet::new();
    for key in keys {
        if let Some(member) = layout::member_of_key(&key) {
            members.insert(member.to_string());
        }
        let bytes = storage.read_all(&key).await?;
        match parse_file(kind, &bytes) {
            Ok(mut documents) => {
                // The entry names every key the file touches, merged plays' tracks included.
                let entry = LedgerEntry::new(&key, collection, &documents);
                let follow_up = match reconciler.as_mut() {
                    Some(r) => r.reconcile(&mut documents).await?,
                    None => reconcile::FollowUp::default(),
                };
                merged += follow_up.merged;
                for document in documents {
                    if upserter.push(document).await? {
                        loaded_files::record(db, &mut pending).await?;
                    }
                }
                if !follow_up.is_empty() {
                    // Deleting a history play only once the API play that replaces it is stored.
                    upserter.flush().await?;
                    follow_up.send(db, collection).await?;
                }
                pending.push(entry);
                files += 1;
            }
            Err(reason) => {
                failed += 1;
                error!(file = %storage.location(&key), error = %reason, "Rejected a converted file; none of it was loaded.");
            }
        }
        progress.inc(1);
    }
    upserter.flush().await?;
    loaded_files::record(db, &mut pending).await?;
    progress.finish();
    Ok(Report {
        collection: collection.to_string(),
        kind: kind.folder(),
        merged,
        counts: upserter.counts,
        failed,
        files,
        skipped,
        members,
    }
    .logged())
}

/// Every line of a converted file as the document stored, or why the file is rejected (a file loads
/// whole or not at all).
fn parse_file(kind: RawKind, bytes: &[u8]) -> Result<Vec<Document>, String> {
    std::str::from_utf8(bytes)
        .map_err(|e| format!("not UTF-8: {e}"))
        .and_then(|text| {
            text.lines()
                .enumerate()
                .filter(|(_, line)| !line.trim().is_empty())
                .map(|(n, line)| {
                    to_document(kind, line).map_err(|e| format!("line {}: {e}", n + 1))
                })
                .collect()
        })
}

/// Load JSON Lines from a reader (stdin); a bad line is reported and skipped.
pub async fn load_lines<R: BufRead>(
    db: &Database,
    kind: RawKind,
    reader: R,
    batch_size: usize,
) -> Result<Report> {
    let collection = kind.collection();
    ensure_indexes(db, collection).await?;
    let mut upserter = Upserter::new(db.clone(), collection, batch_size);
    let mut failed = 0;
    let mut loaded: Vec<Document> = Vec::new();
    for (n, line) in reader.lines().enumerate() {
        let line = line.context("reading stdin")?;
        if line.trim().is_empty() {
            continue;
        }
        match to_document(kind, &line) {
            Ok(document) => {
                loaded.push(ledger_keys_only(&document));
                upserter.push(document).await?;
            }
            Err(reason) => {
                failed += 1;
                error!(line = n + 1, error = %reason, "Rejected a record on stdin.");
            }
        }
    }
    upserter.flush().await?;
    // Records from stdin have no file: one ledger entry per run names what they touch, so that
    // create-collections builds them too.
    if !loaded.is_empty() {
        let key = earshot_core::mongo::stdin_ledger_key(chrono::Utc::now());
        let mut entry = vec![LedgerEntry::new(&key, collection, &loaded)];
        loaded_files::record(db, &mut entry).await?;
    }
    let files = usize::from(upserter.counts.read > 0);
    Ok(Report {
        collection: collection.to_string(),
        kind: kind.folder(),
        merged: 0,
        counts: upserter.counts,
        failed,
        files,
        skipped: 0,
        members: std::collections::BTreeSet::new(),
    })
}

/// The fields of a document an upload-ledger entry lists (the rest need not be kept in memory).
fn ledger_keys_only(document: &Document) -> Document {
    earshot_core::ledger::source_fields()
        .filter_map(|field| document.get(field).map(|v| (field.to_string(), v.clone())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_loads_with_its_local_time_and_source_and_an_older_shape_is_refused() {
        let play = serde_json::json!({
            "_id": "ana|2024-10-21T07:15:00.000Z", "user_id": "ana", "user_name": "Ana",
            "played_at": "2024-10-21T07:15:00.000Z", "played_at_local": "2024-10-21 00:15:00 PDT",
            "local_day": "2024-10-21", "local_hour": 0, "local_weekday": 1, "local_day_number": 20017,
            "track_id": "t1", "track_name": "Song", "clean_track_name": "Song",
            "artist_song_name": "Band - Song", "artist_ids": ["a1"], "artist_names": ["Band"],
            "artist_urls": [null], "album_id": "al1", "album_name": "Album", "album_type": "album",
            "release_date": "2020", "total_tracks": 10, "duration_ms": 215000, "duration": "3:35",
            "popularity": null, "explicit": false, "is_local": false, "track_url": null,
            "images": [], "context_type": "none", "source": "api",
        });
        let document = to_document(RawKind::RecentlyPlayed, &play.to_string()).unwrap();
        assert_eq!(document.get_str("source"), Ok("api"));
        assert_eq!(document.get_str("local_day"), Ok("2024-10-21"));
        assert_eq!(document.get_i32("local_weekday"), Ok(1));
        assert_eq!(document.get("ms_played"), Some(&Bson::Null));
        // An imported play's record loads the same way, with its source.
        let mut imported = play.clone();
        imported["source"] = "history".into();
        imported["ms_played"] = 200_000.into();
        let document = to_document(RawKind::StreamingHistory, &imported.to_string()).unwrap();
        assert_eq!(document.get_str("source"), Ok("history"));
        assert_eq!(document.get_i64("ms_played"), Ok(200_000));
        // A record an earlier build converted (no local day, no source) is refused, naming the field:
        // `scripts/upgrade.sh` converts it again.
        for field in ["local_day", "local_day_number", "source"] {
            let mut older = play.clone();
            older.as_object_mut().unwrap().remove(field);
            let error = to_document(RawKind::RecentlyPlayed, &older.to_string()).unwrap_err();
            assert!(error.contains(field), "{field}: {error}");
        }
    }
}
