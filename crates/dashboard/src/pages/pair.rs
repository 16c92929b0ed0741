//! Two members' page: taste match, shared songs, the songs both play most, top lists in common.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use earshot_metrics::col;
use earshot_metrics::rows::{SharedFavourite, SharedTracks, TasteMatch, TopListOverlap};
use mongodb::bson::doc;
use serde::Serialize;

use crate::app::AppState;
use crate::page::{MemberLink, Page, PeriodQuery, not_a_member};
use crate::render::{Frame, Link, PageError, render};
use earshot_metrics::store::Select;

/// How many shared favourites show.
const FAVOURITES: i64 = 5;

#[derive(Serialize)]
struct PairPage {
    #[serde(flatten)]
    frame: Frame,
    period_label: String,
    a: MemberLink,
    b: MemberLink,
    shared: Option<Shared>,
    favourites: Vec<FavouriteRow>,
    taste: Option<String>,
    overlap: Vec<Overlap>,
}

#[derive(Serialize)]
struct Shared {
    shared: i64,
    jaccard: String,
}

#[derive(Serialize)]
struct FavouriteRow {
    track: Link,
    plays_a: i64,
    plays_b: i64,
}

#[derive(Serialize)]
struct Overlap {
    range: String,
    overlap: i64,
}

/// Two members' page (`a` before `b`; the other order redirects).
pub async fn page(
    State(state): State<Arc<AppState>>,
    Path((a, b)): Path<(String, String)>,
    Query(query): Query<PeriodQuery>,
) -> Result<Response, PageError> {
    let page = Page::read(&state, &query).await?;
    for id in [&a, &b] {
        if !page.names.contains(id) {
            return Err(not_a_member(id));
        }
    }
    if a == b {
        return Err(PageError::not_found(
            "Not a pair",
            "A pair is two different members.",
        ));
    }
    if a > b {
        return Ok(Redirect::to(&page.pair(&b, &a)).into_response());
    }
    if let Some(private) = [&a, &b].into_iter().find(|id| page.hides(id)) {
        return Err(PageError::not_found(
            "Not compared",
            format!(
                "{} keeps their listening out of comparisons with friends.",
                page.name(private)
            ),
        ));
    }
    let both = doc! {col::MEMBER_A: &a, col::MEMBER_B: &b};
    let shared: Option<SharedTracks> = page.row(Select::matching(both.clone())).await?;
    let taste: Option<TasteMatch> = page.row(Select::matching(both.clone())).await?;
    let overlap: Vec<TopListOverlap> = page
        .rows(Select::matching(both.clone()).sorted(doc! {col::TIME_RANGE: 1}))
        .await?;
    let title = format!("{} & {}", page.name(&a), page.name(&b));
    let context = PairPage {
        frame: page.frame(&title),
        period_label: page.period_label(),
        a: page.member(&a),
        b: page.member(&b),
        shared: shared.map(|r| Shared {
            shared: r.shared,
            jaccard: format!("{:.2}", r.jaccard),
        }),
        favourites: favourites(&page, both).await?,
        taste: taste.map(|r| format!("{:.1}", r.taste_match)),
        overlap: overlap
            .into_iter()
            .map(|r| Overlap {
                range: r.time_range.replace('_', " "),
                overlap: r.overlap,
            })
            .collect(),
    };
    Ok(render("pair.html", &context)?.into_response())
}

/// The tracks both play most, named from the group chart's rows.
async fn favourites(
    page: &Page<'_>,
    both: mongodb::bson::Document,
) -> Result<Vec<FavouriteRow>, PageError> {
    let favourite: Vec<SharedFavourite> = page
        .rows(
            Select::matching(both)
                .sorted(doc! {col::PLAYS: -1, col::TRACK_KEY: 1})
                .first(FAVOURITES),
        )
        .await?;
    let keys: Vec<&str> = favourite.iter().map(|r| r.track_key.as_str()).collect();
    let names = page.track_names(&keys).await?;
    Ok(favourite
        .iter()
        .map(|r| FavouriteRow {
            track: page.named_track(&r.track_key, &names),
            plays_a: r.plays_a,
            plays_b: r.plays_b,
        })
        .collect())
}
