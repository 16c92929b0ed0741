//! Who is in the group and what Earshot holds about each one (`members list`, the dashboard's status
//! page).

use std::collections::BTreeSet;

use crate::status::{self, ImportStatus, SourcePlays, sources_of};
use anyhow::{Context as _, Result};
use chrono::{DateTime, Utc};
use earshot_core::mongo;
use earshot_core::records::PlaySource;
use mongodb::bson::{Document, doc};
use serde::Serialize;

use crate::Stores;

/// One member's row.
#[derive(Debug, Clone, Serialize)]
pub struct MemberRow {
    /// Spotify id.
    pub member: String,
    /// Display name (the config's, else the one they signed in with).
    pub name: String,
    /// Whether the group config lists them.
    pub in_config: bool,
    /// Plays stored (fetched and imported).
    pub plays: u64,
    /// Of which imported from an Extended Streaming History.
    pub imported_plays: u64,
    /// First play stored (`played_at`, UTC).
    pub first_play: Option<String>,
    /// Last play stored.
    pub last_play: Option<String>,
    /// Authorisation: `ok`, `expiring in N days`, `needs re-auth`, `authorisation ended`, `not
    /// connected`, `left on <date>`.
    pub authorisation: String,
    /// The day Spotify ends the authorisation.
    pub authorisation_ends: Option<DateTime<Utc>>,
    /// Stretches the fetcher could not cover (more plays than the recently-played window between two
    /// fetches).
    pub gaps: usize,
    /// Streaming-history import progress, when they imported one.
    pub import: Option<ImportStatus>,
    /// Where their plays came from: each source with plays, its count and its last play.
    pub sources: Vec<SourcePlays>,
}

/// A member's `played_at` at one end of their plays.
async fn edge_play(stores: &Stores, member: &str, direction: i32) -> Result<Option<String>> {
    let found = stores
        .db
        .collection::<Document>(mongo::RAW_RECENTLY_PLAYED)
        .find_one(doc! {"user_id": member})
        .sort(doc! {"played_at": direction})
        .projection(doc! {"played_at": 1})
        .await
        .with_context(|| format!("reading `{}`", mongo::RAW_RECENTLY_PLAYED))?;
    Ok(found.and_then(|d| {
        d.get_datetime("played_at")
            .ok()
            .map(|at| rfc3339_millis(*at))
    }))
}

/// Every member the config lists, then everyone else Earshot holds plays or state of.
pub async fn list(stores: &Stores, now: DateTime<Utc>) -> Result<Vec<MemberRow>> {
    let states = crate::fetch_state::list(&stores.storage).await?;
    let left = earshot_core::erasure::departures(&stores.storage).await?;
    let statuses = status::statuses(&states, &stores.group, &left, now);
    let plays = stores.db.collection::<Document>(mongo::RAW_RECENTLY_PLAYED);
    let with_plays: Vec<String> =
        mongo::distinct(&stores.db, mongo::RAW_RECENTLY_PLAYED, "user_id", doc! {})
            .await?
            .into_iter()
            .filter_map(|id| id.as_str().map(str::to_string))
            .collect();
    let mut ids: Vec<String> = stores.group.members.iter().map(|m| m.id.clone()).collect();
    let mut others: BTreeSet<String> = statuses.iter().map(|s| s.member.clone()).collect();
    others.extend(with_plays);
    for id in others {
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    let mut rows = Vec::with_capacity(ids.len());
    for id in ids {
        let status = statuses.iter().find(|s| s.member == id);
        let state = states.iter().find(|s| s.member == id);
        let count = plays
            .count_documents(doc! {"user_id": &id})
            .await
            .with_context(|| format!("counting the plays of `{id}`"))?;
        let imported = plays
            .count_documents(doc! {"user_id": &id, "source": PlaySource::History.as_str()})
            .await
            .with_context(|| format!("counting the imported plays of `{id}`"))?;
        let import = crate::import_progress::read_state(&stores.storage, &id)
            .await?
            .map(ImportStatus::from);
        rows.push(MemberRow {
            name: stores.group.member(&id).map_or_else(
                || state.map_or_else(|| id.clone(), |s| s.display_name.clone()),
                |m| m.display_name.clone(),
            ),
            in_config: stores.group.member(&id).is_some(),
            plays: count,
            imported_plays: imported,
            first_play: edge_play(stores, &id, 1).await?,
            last_play: edge_play(stores, &id, -1).await?,
            authorisation: status.map_or_else(|| "not connected".into(), |s| s.state.clone()),
            authorisation_ends: state.map(|s| s.authorisation_ends()),
            gaps: status.map_or(0, |s| s.gaps),
            import,
            sources: sources_of(&stores.db, &id).await?,
            member: id,
        });
    }
    Ok(rows)
}

/// A plain-text table.
pub fn table(rows: &[MemberRow]) -> String {
    let mut out = format!(
        "{:<16} {:<14} {:>8} {:>8} {:<24} {:<24} {:<22} {:<10} {}\n",
        "MEMBER",
        "NAME",
        "PLAYS",
        "IMPORTED",
        "FIRST PLAY",
        "LAST PLAY",
        "AUTHORISATION",
        "CONFIG",
        "SOURCES"
    );
    for row in rows {
        out.push_str(&format!(
            "{:<16} {:<14} {:>8} {:>8} {:<24} {:<24} {:<22} {:<10} {}\n",
            row.member,
            row.name,
            row.plays,
            row.imported_plays,
            row.first_play.as_deref().unwrap_or("-"),
            row.last_play.as_deref().unwrap_or("-"),
            row.authorisation,
            if row.in_config {
                "listed"
            } else {
                "not listed"
            },
            status::sources_text(&row.sources),
        ));
    }
    out
}

/// A BSON date as the converted records write times (`2024-10-21T07:15:00.000Z`).
pub fn rfc3339_millis(at: mongodb::bson::DateTime) -> String {
    chrono::DateTime::from_timestamp_millis(at.timestamp_millis())
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}
