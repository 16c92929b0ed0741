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
use earshot_core::mongo::{
    CATALOGUE_OK, CATALOGUE_UNAVAILABLE, RAW_RECENTLY_PLAYED, TRACK_CATALOGUE, enrich_ledger_key,
};
use earshot_core::progress::Progress;
use earshot_core::records::{PlaySource, TrackFields};
use earshot_core::spotify::{SpotifyId, Track, is_spotify_id};
use mongodb::Database;
use mongodb::bson::{self, Bson, Document, doc};
use serde::Serialize;
use tracing::{info, warn};

use crate::fetch::Fetcher;
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
    let raw = db.collection::<Document>(RAW_RECENTLY_PLAYED);
    let catalogue = db.collection::<Document>(TRACK_CATALOGUE);
    let pending: BTreeSet<String> = raw
        .distinct(
            "track_id",
            doc! {"source": PlaySource::History.as_str(), "album_id": Bson::Null, "track_id": {"$type": "string"}},
        )
        .await
        .with_context(|| format!("listing tracks to enrich in `{RAW_RECENTLY_PLAYED}`"))?
        .into_iter()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    let pending = spotify_ids_only(pending);
    let mut report = EnrichReport::default();
    // What the catalogue already knows: applied again (a run cut short after the catalogue write),
    // never asked again.
    let mut known = catalogue
        .find(doc! {"_id": {"$in": pending.iter().collect::<Vec<_>>()}})
        .await
        .with_context(|| format!("reading `{TRACK_CATALOGUE}`"))?;
    let mut asked = BTreeSet::new();
    while known.advance().await? {
        let entry = known.deserialize_current()?;
        let Ok(id) = entry.get_str("_id") else {
            continue;
        };
        asked.insert(id.to_string());
        if entry.get_str("status") == Ok(CATALOGUE_OK) {
            apply(db, id, &entry).await?;
        }
    }
    let to_ask: Vec<&String> = pending.iter().filter(|id| !asked.contains(*id)).collect();
    report.remaining = to_ask.len();
    if to_ask.is_empty() {
        info!("No track to enrich.");
        return Ok(report);
    }
    let members: Vec<String> = match member {
        Some(m) => vec![m.to_string()],
        None => fetcher.group.members.iter().map(|m| m.id.clone()).collect(),
    };
    let mut session = None;
    for m in &members {
        if let Some(s) = fetcher.session(m).await? {
            session = Some(s);
            break;
        }
    }
    let Some(mut session) = session else {
        bail!("no member has connected (`data-fetcher auth`): enrichment asks Spotify as a member");
    };
    let progress = Progress::new(
        "Enriching imported tracks",
        "tracks",
        to_ask.len().min(max_requests) as u64,
    );
    for id in to_ask.into_iter().take(max_requests) {
        let checked = SpotifyId::parse(id).expect("only Spotify ids are pending");
        let path = format!("/v1/tracks/{checked}");
        report.requests += 1;
        match session.get(&path).await {
            Ok(body) => {
                let track: Track = serde_json::from_slice(&body)
                    .with_context(|| format!("GET {path}: not a track"))?;
                let mut entry = bson::to_document(&TrackFields::from_track(track))?;
                entry.insert("_id", id.as_str());
                entry.insert("status", CATALOGUE_OK);
                entry.insert(
                    "fetched_at",
                    bson::DateTime::from_millis(now.timestamp_millis()),
                );
                catalogue
                    .replace_one(doc! {"_id": id.as_str()}, entry.clone())
                    .upsert(true)
                    .await
                    .with_context(|| format!("storing track `{id}` in `{TRACK_CATALOGUE}`"))?;
                apply(db, id, &entry).await?;
                report.enriched += 1;
            }
            Err(error) => match error.downcast_ref::<SpotifyError>() {
                Some(SpotifyError::Status { status: 404, .. }) => {
                    catalogue
                        .replace_one(
                            doc! {"_id": id.as_str()},
                            doc! {
                                "_id": id.as_str(),
                                "status": CATALOGUE_UNAVAILABLE,
                                "fetched_at": bson::DateTime::from_millis(now.timestamp_millis()),
                            },
                        )
                        .upsert(true)
                        .await
                        .with_context(|| format!("marking track `{id}` unavailable"))?;
                    report.unavailable += 1;
                }
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

/// Put a catalogue entry's fields on the imported plays of its track (those still without them), and
/// record what they now touch in the upload ledger.
async fn apply(db: &Database, id: &str, entry: &Document) -> Result<()> {
    let raw = db.collection::<Document>(RAW_RECENTLY_PLAYED);
    let mut fields = entry.clone();
    for field in ["_id", "status", "fetched_at"] {
        fields.remove(field);
    }
    let filter = doc! {"source": PlaySource::History.as_str(), "track_id": id};
    raw.update_many(filter.clone(), doc! {"$set": fields})
        .await
        .with_context(|| format!("enriching the plays of track `{id}`"))?;
    let mut cursor = raw
        .find(filter)
        .projection(
            earshot_core::mongo::LEDGER_KEY_FIELDS
                .iter()
                .map(|f| (f.to_string(), Bson::Int32(1)))
                .collect::<Document>(),
        )
        .await?;
    let mut rows = Vec::new();
    while cursor.advance().await? {
        rows.push(cursor.deserialize_current()?);
    }
    let key = enrich_ledger_key(id);
    let mut entries = vec![earshot_upload::ledger::Entry::new(
        &key,
        RAW_RECENTLY_PLAYED,
        &rows,
    )];
    earshot_upload::ledger::record(db, &mut entries).await
}
