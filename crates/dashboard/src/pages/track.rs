//! A track's page: its listeners ranked, its artists and album, its first and last play.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::response::Html;
use earshot_core::derived::TrackDocument;
use earshot_core::mongo;
use earshot_metrics::col;
use earshot_metrics::rows::MemberTrack;
use serde::Serialize;

use crate::app::AppState;
use crate::data::local_time;
use crate::page::{Page, PeriodQuery};
use crate::pages::listeners::{Listener, ranked, subject};
use crate::render::{Frame, Link, PageError, render};

#[derive(Serialize)]
struct TrackPage {
    #[serde(flatten)]
    frame: Frame,
    period_label: String,
    name: String,
    key: String,
    listeners: Vec<Listener>,
    info: Option<Info>,
}

#[derive(Serialize)]
struct Info {
    album: String,
    duration: String,
    url: String,
    artists: Vec<Link>,
    first: Option<String>,
    last: Option<String>,
}

/// A track's page; `404` when the group never played it.
pub async fn page(
    State(state): State<Arc<AppState>>,
    Path(key): Path<String>,
    Query(query): Query<PeriodQuery>,
) -> Result<Html<String>, PageError> {
    let page = Page::read(&state, &query).await?;
    let (listeners, stored): (Vec<MemberTrack>, Option<TrackDocument>) =
        subject(&page, (col::TRACK_KEY, mongo::TRACKS, "track"), &key).await?;
    let name = listeners
        .first()
        .map(|r| r.name.clone())
        .or_else(|| stored.as_ref().and_then(|d| d.artist_song_name.clone()))
        .unwrap_or_else(|| key.clone());
    let info = stored.map(|d| Info {
        artists: d
            .artist_names
            .iter()
            .enumerate()
            .map(|(i, n)| {
                page.artist(
                    d.artist_ids.get(i).and_then(Option::as_deref),
                    n.as_deref().unwrap_or_default(),
                )
            })
            .collect(),
        album: d.album_name.unwrap_or_default(),
        duration: d.duration.unwrap_or_default(),
        url: d.track_url.unwrap_or_default(),
        first: d.first_played.map(|t| local_time(t, page.zone)),
        last: d.last_played.map(|t| local_time(t, page.zone)),
    });
    render(
        "track.html",
        &TrackPage {
            frame: page.frame(&name),
            period_label: page.period_label(),
            listeners: ranked(
                &page,
                listeners
                    .iter()
                    .map(|r| (r.user_id.as_str(), r.plays, r.minutes)),
            ),
            name,
            key,
            info,
        },
    )
}
