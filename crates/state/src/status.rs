//! `data-fetcher status`: each member's connection state, so the group reconnects before Spotify ends
//! an authorisation (6 months after it was given) and plays are lost.

use std::collections::BTreeMap;

use anyhow::Result;
use chrono::{DateTime, Utc};
use earshot_core::GroupConfig;
use earshot_core::records::PlaySource;
use serde::Serialize;

use crate::fetch_state::{EXPIRY_WARNING_DAYS, MemberState};

/// One row of the status table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemberStatus {
    /// Spotify user id.
    pub member: String,
    /// Display name.
    pub name: String,
    /// `ok`, `expiring in N days`, `needs re-auth`, `authorisation ended`, `not connected`, `not on
    /// Spotify` (`spotify = false`: they scrobble), or `left on <date>` for a member who erased themselves (until the operator removes them from the
    /// group config).
    pub state: String,
    /// Days until Spotify ends the authorisation (negative: ended).
    pub days_left: Option<i64>,
    /// Newest play fetched.
    pub last_play: Option<DateTime<Utc>>,
    /// Windows where plays may have been missed.
    pub gaps: usize,
    /// The streaming-history import, where the member imported one.
    pub import: Option<ImportStatus>,
    /// Where their plays came from, and the last play from each (read from MongoDB when it answers;
    /// empty otherwise).
    pub sources: Vec<SourcePlays>,
}

/// A member's plays from one source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourcePlays {
    /// `api`, `history`, `listenbrainz`, `maloja` or `csv` ([`PlaySource`]).
    pub source: &'static str,
    /// Plays stored from it.
    pub plays: u64,
    /// The last of them (`played_at`, UTC).
    pub last_play: Option<String>,
}

/// A member's plays by source, each read from the `(source, user_id, played_at)` index.
pub async fn sources_of(db: &mongodb::Database, member: &str) -> Result<Vec<SourcePlays>> {
    use anyhow::Context as _;
    use earshot_core::mongo;
    use mongodb::bson::{Document, doc};
    let plays = db.collection::<Document>(mongo::RAW_RECENTLY_PLAYED);
    let mut out = Vec::new();
    for source in PlaySource::ALL {
        let filter = doc! {"source": source.as_str(), "user_id": member};
        let count = plays
            .count_documents(filter.clone())
            .await
            .with_context(|| format!("counting the {} plays of `{member}`", source.as_str()))?;
        if count == 0 {
            continue;
        }
        let last = plays
            .find_one(filter)
            .sort(doc! {"played_at": -1})
            .projection(doc! {"played_at": 1})
            .await
            .with_context(|| format!("reading `{}`", mongo::RAW_RECENTLY_PLAYED))?
            .and_then(|d| {
                d.get_datetime("played_at")
                    .ok()
                    .map(|at| crate::roster::rfc3339_millis(*at))
            });
        out.push(SourcePlays {
            source: source.as_str(),
            plays: count,
            last_play: last,
        });
    }
    Ok(out)
}

/// The sources as the table shows them: `api 478 (last 2024-11-11T08:59), listenbrainz 125 (…)`.
pub fn sources_text(sources: &[SourcePlays]) -> String {
    if sources.is_empty() {
        return "-".to_string();
    }
    sources
        .iter()
        .map(|s| {
            let last = s
                .last_play
                .as_deref()
                .and_then(|t| t.get(..16))
                .unwrap_or("-");
            format!("{} {} (last {last})", s.source, s.plays)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A member's streaming-history import, as `status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportStatus {
    /// Music plays imported (distinct).
    pub plays: u64,
    /// Entries set aside (episodes, audiobooks, videos, no track URI, incognito, under 30 s).
    pub set_aside: u64,
    /// Distinct tracks of the imported plays stored (of every imported play, before the first
    /// `enrich`): what enrichment has to look up.
    pub tracks_to_enrich: u64,
    /// Of those, enriched (or found unavailable) so far.
    pub tracks_enriched: u64,
    /// When the import last ran.
    pub updated_at: Option<DateTime<Utc>>,
}

impl From<crate::import_progress::ImportState> for ImportStatus {
    fn from(state: crate::import_progress::ImportState) -> ImportStatus {
        ImportStatus {
            plays: state.plays,
            set_aside: state.set_aside.values().sum(),
            tracks_to_enrich: if state.tracks_stored > 0 {
                state.tracks_stored
            } else {
                state.tracks
            },
            tracks_enriched: state.tracks_enriched + state.tracks_unavailable,
            updated_at: state.updated_at,
        }
    }
}

/// What `status` says of a member the group config lists with `spotify = false` (they scrobble).
pub const NOT_ON_SPOTIFY: &str = "not on Spotify";

/// What `status` says of a member who left on `at`.
pub fn left_on(at: DateTime<Utc>) -> String {
    format!("left on {}", at.format("%Y-%m-%d"))
}

/// Rows for connected members, then for members of the group config who never connected or have
/// `left` (erased themselves; [`earshot_core::erasure::departures`]).
pub fn statuses(
    members: &[MemberState],
    group: &GroupConfig,
    left: &BTreeMap<String, DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Vec<MemberStatus> {
    let mut rows: Vec<MemberStatus> = members
        .iter()
        .map(|m| {
            let days = m.days_left(now);
            let state = if let Some(at) = left.get(&m.member) {
                left_on(*at)
            } else if m.needs_reauth.is_some() {
                "needs re-auth".to_string()
            } else if days < 0 {
                "authorisation ended".to_string()
            } else if days <= EXPIRY_WARNING_DAYS {
                format!("expiring in {days} days")
            } else {
                "ok".to_string()
            };
            MemberStatus {
                member: m.member.clone(),
                name: group
                    .member(&m.member)
                    .map_or_else(|| m.display_name.clone(), |c| c.display_name.clone()),
                state,
                days_left: Some(days),
                last_play: m.last_play_at,
                gaps: m.gaps.len(),
                import: None,
                sources: Vec::new(),
            }
        })
        .collect();
    for configured in &group.members {
        if !members.iter().any(|m| m.member == configured.id) {
            rows.push(MemberStatus {
                member: configured.id.clone(),
                name: configured.display_name.clone(),
                state: match left.get(&configured.id) {
                    Some(at) => left_on(*at),
                    None if !configured.spotify => NOT_ON_SPOTIFY.into(),
                    None => "not connected".into(),
                },
                days_left: None,
                last_play: None,
                gaps: 0,
                import: None,
                sources: Vec::new(),
            });
        }
    }
    rows
}

/// A plain-text table.
pub fn table(rows: &[MemberStatus]) -> String {
    let mut out = format!(
        "{:<20} {:<16} {:<24} {:<26} {:<6} {:<44} {}\n",
        "MEMBER", "NAME", "STATE", "LAST PLAY", "GAPS", "IMPORTED", "SOURCES"
    );
    for row in rows {
        let last = row.last_play.map_or_else(
            || "-".to_string(),
            |t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        );
        let imported = row.import.as_ref().map_or_else(
            || "-".to_string(),
            |i| {
                format!(
                    "{} plays, {} set aside, {}/{} tracks enriched",
                    i.plays, i.set_aside, i.tracks_enriched, i.tracks_to_enrich
                )
            },
        );
        out.push_str(&format!(
            "{:<20} {:<16} {:<24} {:<26} {:<6} {:<44} {}\n",
            row.member,
            row.name,
            row.state,
            last,
            row.gaps,
            imported,
            sources_text(&row.sources)
        ));
    }
    out
}
