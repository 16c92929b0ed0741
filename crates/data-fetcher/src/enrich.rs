//! `data-fetcher enrich`: imported streaming-history plays gain the ids, duration and images the
//! export does not have, one `GET /v1/tracks/{id}` at a time (development-mode apps cannot ask for
//! several tracks at once), within a per-run request budget.
//!
//! Each answer goes into the track catalogue (`track_catalogue`, named in earshot-core) first, then
//! onto the imported plays of that track, then into the upload ledger (so create-collections rebuilds
//! what they now touch: their artists, album, images, links). A track that answers 404 is marked
//! `unavailable` and its plays keep the export's names. The work resumes across runs: what the
//! catalogue knows is never asked again, and a long `Retry-After` (development-mode apps see hours)
//! stops the run cleanly, to go on at the next one.

use std::collections::BTreeSet;

use anyhow::{Context as _, Result, bail};
use chrono::{DateTime, Utc};
use earshot_core::ledger::{CatalogueEntry, CatalogueStatus, LedgerEntry};
use earshot_core::mongo::{RAW_RECENTLY_PLAYED, TRACK_CATALOGUE, enrich_ledger_key};
use earshot_core::progress::Progress;
use earshot_core::records::{PlaySource, TrackFields};
use earshot_core::spotify::{SpotifyId, Track, is_spotify_id};
use mongodb::Database;
use mongodb::bson::{self, Bson, Document, doc};
use serde::Serialize;
use tracing::{info, warn};

use crate::fetch::{Fetcher, Session};
use crate::spotify::SpotifyError;

/// What one enrichment run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EnrichReport {
    /// Requests made to `GET /v1/tracks/{id}`.
    pub requests: usize,
    /// Tracks found and applied to their plays.
    pub enriched: usize,
    /// Tracks Spotify answered 404 for.
    pub unavailable: usize,
    /// Tracks still to ask about (the budget ran out, or the run stopped).
    pub remaining: usize,
    /// Why the run stopped early (a long `Retry-After`), if it did.
    pub stopped: Option<String>,
}

/// Ids come from a user's file: only Spotify ids ever go into a request path (the rest are counted).
fn spotify_ids_only(ids: BTreeSet<String>) -> BTreeSet<String> {
    let (valid, invalid): (BTreeSet<String>, BTreeSet<String>) =
        ids.into_iter().partition(|id| is_spotify_id(id));
    if !invalid.is_empty() {
        tracing::warn!(
            tracks = invalid.len(),
            "Imported plays name track ids that are no Spotify ids: never asked for."
        );
    }
    valid
}

/// Enrich up to `max_requests` tracks of imported plays, asking as `member` (default: the first
/// member of the group with stored tokens).
pub async fn enrich(
    fetcher: &Fetcher,
    db: &Database,
    member: Option<&str>,
    max_requests: usize,
    now: DateTime<Utc>,
) -> Result<EnrichReport> {
    let pending = pending_tracks(db).await?;
    let asked = apply_known(db, &pending).await?;
    let to_ask: Vec<&String> = pending.iter().filter(|id| !asked.contains(*id)).collect();
    let mut report = EnrichReport {
        remaining: to_ask.len(),
        ..EnrichReport::default()
    };
    if to_ask.is_empty() {
        info!("No track to enrich.");
        return Ok(report);
    }
    let mut session = first_session(fetcher, member).await?;
    let progress = Progress::new(
        "Enriching imported tracks",
        "tracks",
        to_ask.len().min(max_requests) as u64,
    );
    let fetched_at = bson::DateTime::from_millis(now.timestamp_millis());
    for id in to_ask.into_iter().take(max_requests) {
        report.requests += 1;
        match ask(&mut session, db, id, fetched_at).await {
            Ok(CatalogueStatus::Ok) => report.enriched += 1,
            Ok(CatalogueStatus::Unavailable) => report.unavailable += 1,
            Err(error) => match error.downcast_ref::<SpotifyError>() {
                Some(spotify) if spotify.stops_run() => {
                    warn!(error = %error, "Stopping enrichment cleanly: the next run goes on.");
                    report.stopped = Some(format!("{error:#}"));
                    break;
                }
                _ => return Err(error),
            },
        }
        report.remaining -= 1;
        progress.inc(1);
    }
    progress.finish();
    info!(
        requests = report.requests,
        enriched = report.enriched,
        unavailable = report.unavailable,
        remaining = report.remaining,
        "Enriched imported tracks."
    );
    Ok(report)
}

/// The Spotify ids of imported plays' tracks that have no album yet.
async fn pending_tracks(db: &Database) -> Result<BTreeSet<String>> {
    let pending: BTreeSet<String> = db
        .collection::<Document>(RAW_RECENTLY_PLAYED)
        .distinct(
            "track_id",
            doc! {"source": PlaySource::History.as_str(), "album_id": Bson::Null, "track_id": {"$type": "string"}},
        )
        .await
        .with_context(|| format!("listing tracks to enrich in `{RAW_RECENTLY_PLAYED}`"))?
        .into_iter()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    Ok(spotify_ids_only(pending))
}

/// What the catalogue already knows of `pending`: applied again (a run cut short after the catalogue
/// write), never asked again. Returns the ids it knows.
async fn apply_known(db: &Database, pending: &BTreeSet<String>) -> Result<BTreeSet<String>> {
    let mut known = db
        .collection::<Document>(TRACK_CATALOGUE)
        .find(doc! {"_id": {"$in": pending.iter().collect::<Vec<_>>()}})
        .await
        .with_context(|| format!("reading `{TRACK_CATALOGUE}`"))?;
    let mut asked = BTreeSet::new();
    while known.advance().await? {
        let Some((entry, fields)) = CatalogueEntry::split(known.deserialize_current()?) else {
            continue;
        };
        if entry.status == CatalogueStatus::Ok {
            apply(db, &entry.track_id, fields).await?;
        }
        asked.insert(entry.track_id);
    }
    Ok(asked)
}

/// A session of `member`, else of the first member of the group with stored tokens.
async fn first_session<'a>(fetcher: &'a Fetcher, member: Option<&str>) -> Result<Session<'a>> {
    let members: Vec<String> = match member {
        Some(m) => vec![m.to_string()],
        None => fetcher.group.members.iter().map(|m| m.id.clone()).collect(),
    };
    for m in &members {
        if let Some(session) = fetcher.session(m).await? {
            return Ok(session);
        }
    }
    bail!("no member has connected (`data-fetcher auth`): enrichment asks Spotify as a member")
}

/// Ask Spotify for one track: its entry goes into the catalogue, then onto its plays; a 404 is marked
/// `unavailable`.
async fn ask(
    session: &mut Session<'_>,
    db: &Database,
    id: &str,
    fetched_at: bson::DateTime,
) -> Result<CatalogueStatus> {
    let checked = SpotifyId::parse(id).expect("only Spotify ids are pending");
    let path = format!("/v1/tracks/{checked}");
    let (status, fields) = match session.get(&path).await {
        Ok(body) => {
            let track: Track = serde_json::from_slice(&body)
                .with_context(|| format!("GET {path}: not a track"))?;
            (
                CatalogueStatus::Ok,
                Some(bson::to_document(&TrackFields::from_track(track))?),
            )
        }
        Err(error) => match error.downcast_ref::<SpotifyError>() {
            Some(SpotifyError::Status { status: 404, .. }) => (CatalogueStatus::Unavailable, None),
            _ => return Err(error),
        },
    };
    let entry = CatalogueEntry {
        track_id: id.to_string(),
        status,
        fetched_at,
    };
    db.collection::<Document>(TRACK_CATALOGUE)
        .replace_one(doc! {"_id": id}, entry.document(fields.clone()))
        .upsert(true)
        .await
        .with_context(|| {
            format!(
                "storing track `{id}` ({}) in `{TRACK_CATALOGUE}`",
                status.as_str()
            )
        })?;
    if let Some(fields) = fields {
        apply(db, id, fields).await?;
    }
    Ok(status)
}

/// Put a catalogue entry's track fields on the imported plays of its track (those still without
/// them), and record what they now touch in the upload ledger.
async fn apply(db: &Database, id: &str, fields: Document) -> Result<()> {
    let raw = db.collection::<Document>(RAW_RECENTLY_PLAYED);
    let filter = doc! {"source": PlaySource::History.as_str(), "track_id": id};
    raw.update_many(filter.clone(), doc! {"$set": fields})
        .await
        .with_context(|| format!("enriching the plays of track `{id}`"))?;
    let mut cursor = raw
        .find(filter)
        .projection(earshot_core::ledger::source_projection())
        .await?;
    let mut rows = Vec::new();
    while cursor.advance().await? {
        rows.push(cursor.deserialize_current()?);
    }
    let key = enrich_ledger_key(id);
    let mut entries = vec![LedgerEntry::new(&key, RAW_RECENTLY_PLAYED, &rows)];
    earshot_upload::ledger::record(db, &mut entries).await
}
