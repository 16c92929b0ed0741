//! An artist's page: their listeners ranked, their first and last play.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::response::Html;
use earshot_core::derived::ArtistDocument;
use earshot_core::mongo;
use earshot_metrics::col;
use earshot_metrics::rows::MemberArtist;
use serde::Serialize;

use crate::app::AppState;
use crate::data::local_time;
use crate::page::{Page, PeriodQuery};
use crate::pages::listeners::{Listener, ranked, subject};
use crate::render::{Frame, PageError, render};

#[derive(Serialize)]
struct ArtistPage {
    #[serde(flatten)]
    frame: Frame,
    period_label: String,
    name: String,
    listeners: Vec<Listener>,
    info: Option<Info>,
}

#[derive(Serialize)]
struct Info {
    url: String,
    plays: i64,
    first: Option<String>,
    last: Option<String>,
}

/// An artist's page; `404` when the group never played them.
pub async fn page(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(query): Query<PeriodQuery>,
) -> Result<Html<String>, PageError> {
    let page = Page::read(&state, &query).await?;
    let (listeners, stored): (Vec<MemberArtist>, Option<ArtistDocument>) =
        subject(&page, (col::ARTIST_ID, mongo::ARTISTS, "artist"), &id).await?;
    let name = listeners
        .first()
        .map(|r| r.name.clone())
        .or_else(|| stored.as_ref().and_then(|d| d.artist_name.clone()))
        .unwrap_or_else(|| id.clone());
    let info = stored.map(|d| Info {
        url: d.artist_url.unwrap_or_default(),
        plays: d.plays,
        first: d.first_played.map(|t| local_time(t, page.zone)),
        last: d.last_played.map(|t| local_time(t, page.zone)),
    });
    render(
        "artist.html",
        &ArtistPage {
            frame: page.frame(&name),
            period_label: page.period_label(),
            listeners: ranked(
                &page,
                listeners
                    .iter()
                    .map(|r| (r.user_id.as_str(), r.plays, r.minutes)),
            ),
            name,
            info,
        },
    )
}
