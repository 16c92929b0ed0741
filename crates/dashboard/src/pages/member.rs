//! A member's page: their totals, top tracks and artists, deep cuts, obscurity, listening clock,
//! plays per day, recommendations, best matches, the tracks they lead, and their podcasts and
//! audiobooks.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::response::Html;
use earshot_metrics::col;
use earshot_metrics::rows::{
    ClockCell, MemberArtist, MemberSummary, MemberTrack, Obscure, PlaysPerDay, RecommendationScore,
    TasteMatch, TrackListeners, TrackTopListener,
};
use mongodb::bson::{Document, doc};
use serde::Serialize;

use crate::app::AppState;
use crate::page::{MemberLink, Page, PeriodQuery, not_a_member};
use crate::pages::group::plays_per_day;
use crate::pages::{clock_chart, spoken};
use crate::render::{Frame, Link, PageError, render};
use earshot_metrics::store::Select;

/// How many tracks each list shows.
const LIST: i64 = 10;
/// How many deep cuts and led tracks show.
const LONG_LIST: usize = 20;

#[derive(Serialize)]
struct MemberPage {
    #[serde(flatten)]
    frame: Frame,
    period_label: String,
    member: Named,
    summary: Option<Summary>,
    by_plays: Vec<TrackRow>,
    by_minutes: Vec<TrackRow>,
    artists: Vec<ArtistRow>,
    deep: Vec<TrackRow>,
    obscure: Option<ObscureCounts>,
    clock: String,
    days: String,
    recommendations: Vec<Recommendation>,
    matches: Vec<Match>,
    top_listener_of: Vec<TrackRow>,
    top_listener_count: usize,
    spoken: Option<spoken::MemberSpoken>,
    /// Where the member's plays came from, over everything stored: `Spotify (478), ListenBrainz (125)`.
    sources: String,
}

/// A source's name as a friend reads it.
fn source_label(source: &str) -> &str {
    match source {
        "api" => "Spotify",
        "history" => "Spotify's streaming history",
        "listenbrainz" => "ListenBrainz scrobbles",
        "maloja" => "a Maloja import",
        "csv" => "a scrobble CSV",
        other => other,
    }
}

#[derive(Serialize)]
struct Named {
    id: String,
    name: String,
}

#[derive(Serialize)]
struct Summary {
    plays: i64,
    minutes: i64,
    tracks: i64,
    artists: i64,
}

#[derive(Serialize)]
struct TrackRow {
    track: Link,
    plays: i64,
    /// Minutes, for the lists that show them (the top tracks).
    minutes: Option<String>,
}

#[derive(Serialize)]
struct ArtistRow {
    #[serde(flatten)]
    artist: Link,
    plays: i64,
}

#[derive(Serialize)]
struct ObscureCounts {
    obscure: i64,
    unknown: i64,
    known: i64,
}

#[derive(Serialize)]
struct Recommendation {
    track: Link,
    score: String,
}

#[derive(Serialize)]
struct Match {
    friend: MemberLink,
    href: String,
    #[serde(rename = "match")]
    taste: String,
}

/// A member's page.
pub async fn page(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(query): Query<PeriodQuery>,
) -> Result<Html<String>, PageError> {
    let page = Page::read(&state, &query).await?;
    let me = doc! {col::USER_ID: &id};
    let summary: Option<MemberSummary> = page.row(Select::matching(me.clone())).await?;
    if summary.is_none() && !page.names.contains(&id) {
        return Err(not_a_member(&id));
    }
    let name = page.name(&id);
    let clock: Vec<ClockCell> = page.rows(Select::matching(me.clone())).await?;
    let days: Vec<PlaysPerDay> = page.rows(Select::matching(me.clone())).await?;
    let obscure: Option<Obscure> = page.row(Select::matching(me.clone())).await?;
    let (top_listener_of, top_listener_count) = led(&page, &me).await?;
    let sources = earshot_state::status::sources_of(&state.stores.db, &id)
        .await?
        .iter()
        .map(|s| format!("{} ({})", source_label(s.source), s.plays))
        .collect::<Vec<_>>()
        .join(", ");
    render(
        "member.html",
        &MemberPage {
            frame: page.frame(&name),
            period_label: page.period_label(),
            sources,
            summary: summary.map(|r| Summary {
                plays: r.plays,
                minutes: r.minutes.round() as i64,
                tracks: r.unique_tracks,
                artists: r.unique_artists.unwrap_or(0),
            }),
            by_plays: tracks(&page, &me, doc! {col::PLAYS: -1, col::TRACK_KEY: 1}).await?,
            by_minutes: tracks(&page, &me, doc! {col::MINUTES: -1, col::TRACK_KEY: 1}).await?,
            artists: artists(&page, &me).await?,
            deep: deep_cuts(&page, &id).await?,
            obscure: obscure.map(|r| ObscureCounts {
                obscure: r.obscure_plays,
                unknown: r.unknown_popularity_plays,
                known: r.known_popularity_plays,
            }),
            clock: clock_chart(
                "clock",
                &format!("{name}'s listening clock (group time zone)"),
                clock.iter(),
            ),
            days: earshot_charts::timeline(
                "days",
                &format!("{name}'s plays per day"),
                "plays",
                &plays_per_day(&days),
            )
            .html(),
            recommendations: recommendations(&page, &me).await?,
            matches: matches(&page, &id).await?,
            top_listener_of,
            top_listener_count,
            spoken: spoken::member(&page, &id).await?,
            member: Named { id, name },
        },
    )
}

fn track_row(page: &Page<'_>, key: &str, name: &str, plays: i64, minutes: Option<f64>) -> TrackRow {
    TrackRow {
        track: page.track(key, name),
        plays,
        minutes: minutes.map(|m| format!("{m:.1}")),
    }
}

async fn tracks(
    page: &Page<'_>,
    me: &Document,
    order: Document,
) -> Result<Vec<TrackRow>, PageError> {
    let rows: Vec<MemberTrack> = page
        .rows(Select::matching(me.clone()).sorted(order).first(LIST))
        .await?;
    Ok(rows
        .iter()
        .map(|r| track_row(page, &r.track_key, &r.name, r.plays, Some(r.minutes)))
        .collect())
}

async fn artists(page: &Page<'_>, me: &Document) -> Result<Vec<ArtistRow>, PageError> {
    let rows: Vec<MemberArtist> = page
        .rows(
            Select::matching(me.clone())
                .sorted(doc! {col::PLAYS: -1, col::ARTIST_ID: 1})
                .first(LIST),
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| ArtistRow {
            artist: page.artist(Some(&r.artist_id), &r.name),
            plays: r.plays,
        })
        .collect())
}

/// Tracks only this member played.
async fn deep_cuts(page: &Page<'_>, id: &str) -> Result<Vec<TrackRow>, PageError> {
    let rows: Vec<TrackListeners> = page
        .rows(
            Select::matching(doc! {col::LISTENERS: 1, col::ONLY_LISTENER: id})
                .sorted(doc! {col::PLAYS: -1, col::TRACK_KEY: 1})
                .first(LONG_LIST as i64),
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| track_row(page, &r.track_key, &r.name, r.plays, None))
        .collect())
}

async fn recommendations(page: &Page<'_>, me: &Document) -> Result<Vec<Recommendation>, PageError> {
    let rows: Vec<RecommendationScore> = page
        .rows(
            Select::matching(me.clone())
                .sorted(doc! {col::SCORE: -1, col::TRACK_KEY: 1})
                .first(LIST),
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| Recommendation {
            track: page.track(&r.track_key, &r.name),
            score: format!("{:.2}", r.score),
        })
        .collect())
}

async fn matches(page: &Page<'_>, id: &str) -> Result<Vec<Match>, PageError> {
    let rows: Vec<TasteMatch> = page
        .rows(
            Select::matching(doc! {"$or": [{col::MEMBER_A: id}, {col::MEMBER_B: id}]})
                .sorted(doc! {col::TASTE_MATCH: -1}),
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let friend = if r.member_a == id {
                &r.member_b
            } else {
                &r.member_a
            };
            Match {
                friend: page.member(friend),
                href: page.pair(&r.member_a, &r.member_b),
                taste: format!("{:.1}", r.taste_match),
            }
        })
        .collect())
}

/// The tracks the member played at least as often as anyone (the first few), and how many.
async fn led(page: &Page<'_>, me: &Document) -> Result<(Vec<TrackRow>, usize), PageError> {
    let led: Vec<TrackTopListener> = page
        .rows(Select::matching(me.clone()).sorted(doc! {col::PLAYS: -1, col::TRACK_KEY: 1}))
        .await?;
    let keys: Vec<&str> = led
        .iter()
        .take(LONG_LIST)
        .map(|r| r.track_key.as_str())
        .collect();
    let names = page.track_names(&keys).await?;
    let rows = led
        .iter()
        .take(LONG_LIST)
        .map(|r| TrackRow {
            track: page.named_track(&r.track_key, &names),
            plays: r.plays,
            minutes: None,
        })
        .collect();
    Ok((rows, led.len()))
}
