//! `data-fetcher enrich`: imported streaming-history plays gain the ids, duration and images the
//! export does not have, one `GET /v1/tracks/{id}` at a time (development-mode apps cannot ask for
//! several tracks at once), within a per-run request budget.
//!
//! Answers are stored 50 at a time, each step one command: into the track catalogue
//! (`track_catalogue`, named in earshot-core) first, then into the upload ledger (what the plays will
//! touch: their artists, album, images, links, so create-collections rebuilds them), then onto the
//! imported plays of each track. A track that answers 404 is marked
//! `unavailable` and its plays keep the export's names. The work resumes across runs: what the
//! catalogue knows is never asked again, and a long `Retry-After` (development-mode apps see hours)
//! stops the run cleanly, to go on at the next one.

use std::collections::{BTreeSet, HashMap};

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

use earshot_core::erasure::ErasureGuard;
use earshot_upload::upsert::run_updates;

use crate::fetch::{Fetcher, Session};
use earshot_spotify::api::SpotifyError;

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

/// How many answers a run asks for before it stores them (a run cut short asks these again).
const STORE_EVERY: usize = 50;

/// Enrich up to `max_requests` tracks of imported plays, asking as `member` (default: the first
/// member of the group with stored tokens).
pub async fn enrich(
    fetcher: &Fetcher,
    db: &Database,
    member: Option<&str>,
    max_requests: usize,
    now: DateTime<Utc>,
) -> Result<EnrichReport> {
    let guard = ErasureGuard::begin(&fetcher.storage, "data-fetcher enrich").await?;
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
    let mut session = first_session(fetcher, member, &guard).await?;
    let progress = Progress::new(
        "Enriching imported tracks",
        "tracks",
        to_ask.len().min(max_requests) as u64,
    );
    let fetched_at = bson::DateTime::from_millis(now.timestamp_millis());
    let asking: Vec<&String> = to_ask.into_iter().take(max_requests).collect();
    for chunk in asking.chunks(STORE_EVERY) {
        let mut answers = Vec::with_capacity(chunk.len());
        for id in chunk {
            report.requests += 1;
            match ask(&mut session, id).await {
                Ok(answer) => answers.push(answer),
                Err(error) => match error.downcast_ref::<SpotifyError>() {
                    Some(spotify) if spotify.stops_run() => {
                        warn!(error = %error, "Stopping enrichment cleanly: the next run goes on.");
                        report.stopped = Some(format!("{error:#}"));
                        break;
                    }
                    _ => {
                        guard.check(false).await?;
                        store(db, &answers, fetched_at).await?;
                        return Err(error);
                    }
                },
            }
        }
        guard.check(false).await?;
        store(db, &answers, fetched_at).await?;
        for answer in &answers {
            match answer.status() {
                CatalogueStatus::Ok => report.enriched += 1,
                CatalogueStatus::Unavailable => report.unavailable += 1,
            }
        }
        report.remaining -= answers.len();
        progress.inc(answers.len() as u64);
        if report.stopped.is_some() {
            break;
        }
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
    let without_album = doc! {
        "source": PlaySource::History.as_str(),
        "album_id": Bson::Null,
        "track_id": {"$type": "string"},
    };
    let pending: BTreeSet<String> =
        earshot_core::mongo::distinct(db, RAW_RECENTLY_PLAYED, "track_id", without_album)
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
    let mut found = Vec::new();
    while known.advance().await? {
        let Some((entry, fields)) = CatalogueEntry::split(known.deserialize_current()?) else {
            continue;
        };
        if entry.status == CatalogueStatus::Ok {
            found.push((entry.track_id.clone(), fields));
        }
        asked.insert(entry.track_id);
    }
    for chunk in found.chunks(STORE_EVERY) {
        apply(db, chunk).await?;
    }
    Ok(asked)
}

/// A session of `member`, else of the first member of the group with stored tokens.
async fn first_session<'a>(
    fetcher: &'a Fetcher,
    member: Option<&str>,
    guard: &ErasureGuard,
) -> Result<Session<'a>> {
    let members: Vec<String> = match member {
        Some(m) => vec![m.to_string()],
        None => fetcher
            .group
            .members
            .iter()
            .filter(|m| m.spotify)
            .map(|m| m.id.clone())
            .collect(),
    };
    for m in &members {
        if let Some(session) = fetcher.session(m, guard.clone()).await? {
            return Ok(session);
        }
    }
    bail!("no member has connected (`data-fetcher auth`): enrichment asks Spotify as a member")
}

/// Spotify's answer for one track: its fields, or `None` for a 404.
struct Answer {
    id: String,
    fields: Option<Document>,
}

impl Answer {
    fn status(&self) -> CatalogueStatus {
        match self.fields {
            Some(_) => CatalogueStatus::Ok,
            None => CatalogueStatus::Unavailable,
        }
    }
}

/// Ask Spotify for one track (a 404 is an answer: the track is unavailable).
async fn ask(session: &mut Session<'_>, id: &str) -> Result<Answer> {
    let checked = SpotifyId::parse(id).expect("only Spotify ids are pending");
    let path = format!("/v1/tracks/{checked}");
    let fields = match session.get(&path).await {
        Ok(body) => {
            let track: Track = serde_json::from_slice(&body)
                .with_context(|| format!("GET {path}: not a track"))?;
            Some(bson::to_document(&TrackFields::from_track(track))?)
        }
        Err(error) => match error.downcast_ref::<SpotifyError>() {
            Some(SpotifyError::Status { status: 404, .. }) => None,
            _ => return Err(error),
        },
    };
    Ok(Answer {
        id: id.to_string(),
        fields,
    })
}

/// Store answers: each into the catalogue first (one command), then the found tracks' fields onto
/// their plays.
async fn store(db: &Database, answers: &[Answer], fetched_at: bson::DateTime) -> Result<()> {
    if answers.is_empty() {
        return Ok(());
    }
    let replacements = answers
        .iter()
        .map(|answer| {
            let entry = CatalogueEntry {
                track_id: answer.id.clone(),
                status: answer.status(),
                fetched_at,
            };
            doc! {"q": {"_id": &answer.id}, "u": entry.document(answer.fields.clone()), "upsert": true}
        })
        .collect();
    run_updates(db, TRACK_CATALOGUE, replacements)
        .await
        .with_context(|| {
            format!(
                "storing {} tracks (`{}` first) in `{TRACK_CATALOGUE}`",
                answers.len(),
                answers[0].id
            )
        })?;
    let found: Vec<(String, Document)> = answers
        .iter()
        .filter_map(|a| a.fields.clone().map(|f| (a.id.clone(), f)))
        .collect();
    apply(db, &found).await
}

/// Put catalogue entries' track fields on the imported plays of their tracks (those still without
/// them). What the plays will touch goes into the upload ledger first, one entry a track, read from
/// the plays with the fields laid over them: a run cut short between the two leaves the plays
/// pending, and the next run applies the catalogue entry and records the entry again.
async fn apply(db: &Database, tracks: &[(String, Document)]) -> Result<()> {
    if tracks.is_empty() {
        return Ok(());
    }
    let raw = db.collection::<Document>(RAW_RECENTLY_PLAYED);
    let ids: Vec<&String> = tracks.iter().map(|(id, _)| id).collect();
    let mut cursor = raw
        .find(doc! {"source": PlaySource::History.as_str(), "track_id": {"$in": &ids}})
        .projection(earshot_core::ledger::source_projection())
        .await
        .with_context(|| format!("reading the imported plays of {} tracks", ids.len()))?;
    let mut rows: HashMap<String, Vec<Document>> = HashMap::new();
    while cursor.advance().await? {
        let row: Document = cursor.deserialize_current()?;
        if let Ok(track) = row.get_str("track_id") {
            rows.entry(track.to_string()).or_default().push(row);
        }
    }
    let mut entries = Vec::with_capacity(tracks.len());
    let mut updates = Vec::with_capacity(tracks.len());
    for (id, fields) in tracks {
        let enriched: Vec<Document> = rows
            .remove(id)
            .unwrap_or_default()
            .into_iter()
            .map(|mut row| {
                row.extend(fields.clone());
                row
            })
            .collect();
        entries.push(LedgerEntry::new(
            &enrich_ledger_key(id),
            RAW_RECENTLY_PLAYED,
            &enriched,
        ));
        updates.push(doc! {
            "q": {"source": PlaySource::History.as_str(), "track_id": id},
            "u": {"$set": fields},
            "multi": true,
        });
    }
    earshot_upload::loaded_files::record(db, &mut entries).await?;
    run_updates(db, RAW_RECENTLY_PLAYED, updates)
        .await
        .with_context(|| format!("enriching the plays of {} tracks", tracks.len()))?;
    Ok(())
}
