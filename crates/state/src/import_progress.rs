//! A member's streaming-history import progress, kept in `state/imports/<id>.json` (counts only):
//! written by `data-fetcher import` and `enrich`, read by `status`, `members list` and the dashboard.

use std::collections::BTreeMap;

use anyhow::{Context as _, Result};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use earshot_core::{Storage, layout};
use serde::{Deserialize, Serialize};

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
    /// Of the episodes and audiobook chapters set aside from the music, those kept as spoken plays
    /// (30 s or more, not incognito): `rawdata_spoken` once converted and loaded.
    #[serde(default)]
    pub spoken: u64,
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
    /// What each stored file held that Earshot does not use and so did not store (incognito, short,
    /// out-of-range, no track URI, crafted URIs), counted as the file was imported, by the stored
    /// file's key: the totals add these to what the stored files hold.
    #[serde(default)]
    pub held_back: BTreeMap<String, HeldBack>,
    /// When this state was written.
    pub updated_at: Option<DateTime<Utc>>,
}

/// What one stored export file held and was not stored: counts only.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldBack {
    /// Entries set aside and not stored, distinct, by reason.
    pub set_aside: BTreeMap<String, u64>,
    /// Of the entries not stored, those that repeated one read before in the same import.
    pub repeated: u64,
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

/// Write a member's import progress.
pub async fn write_state(storage: &Storage, state: &ImportState) -> Result<()> {
    let key = layout::import_state_key(&state.member);
    storage
        .write(&key, Bytes::from(serde_json::to_vec_pretty(state)?))
        .await?;
    Ok(())
}
