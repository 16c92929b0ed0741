//! The recap of a named period (the group's "Wrapped"): each member's card, minutes per member, the
//! most shared track and the closest pair, the podcasts and audiobooks, and the neighbouring periods.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use earshot_core::period::Period;
use earshot_metrics::col;
use earshot_metrics::rows::{RecapDiscovered, RecapGroup, RecapMember, TrackTopListener};
use mongodb::bson::doc;
use serde::Serialize;

use crate::app::AppState;
use crate::page::{MemberLink, Names, Page, PeriodQuery};
use crate::pages::spoken;
use crate::render::{Frame, Link, PageError, render};
use crate::urls;
use earshot_charts::Bar;
use earshot_metrics::store::Select;

/// How many discovered artists and led tracks a card names.
const CARD_LIST: usize = 5;

#[derive(Serialize)]
struct RecapPage {
    #[serde(flatten)]
    frame: Frame,
    empty: bool,
    heading: String,
    members: Vec<Card>,
    minutes: String,
    group: Option<Group>,
    previous: Option<Step>,
    next: Option<Step>,
    spoken: Option<spoken::GroupSpoken>,
}

#[derive(Serialize)]
struct Card {
    member: MemberLink,
    minutes: i64,
    plays: i64,
    top_track: Link,
    top_track_plays: Option<i64>,
    top_artist: Link,
    top_artist_plays: Option<i64>,
    top_album: Option<String>,
    top_album_plays: Option<i64>,
    discovered: i64,
    discovered_names: Vec<Link>,
    streak: Option<i64>,
    busiest_day: Option<String>,
    busiest_day_plays: Option<i64>,
    top_listener_of: i64,
    leads: Vec<Link>,
}

#[derive(Serialize)]
struct Group {
    track: Link,
    listeners: i64,
    plays: i64,
    closest: Option<Closest>,
}

#[derive(Serialize)]
struct Closest {
    a: MemberLink,
    b: MemberLink,
    href: String,
    #[serde(rename = "match")]
    taste: String,
}

#[derive(Serialize)]
struct Step {
    label: String,
    href: String,
    available: bool,
}

/// The recap of `?period=`; without one, a redirect to the newest period recapped.
pub async fn page(
    State(state): State<Arc<AppState>>,
    Query(query): Query<PeriodQuery>,
) -> Result<Response, PageError> {
    let asked = query.period()?;
    let runs = earshot_metrics::runs::listed(&state.stores.db).await?;
    let Some(period) = asked.or_else(|| earshot_metrics::runs::periods(&runs).into_iter().next())
    else {
        let names = Names::read(&state).await?;
        let context = RecapPage {
            frame: Frame {
                periods: Some(Vec::new()),
                ..names.frame(&state, "Recap", None)
            },
            empty: true,
            heading: "Recap".into(),
            members: Vec::new(),
            minutes: String::new(),
            group: None,
            previous: None,
            next: None,
            spoken: None,
        };
        return Ok(render("recap.html", &context)?.into_response());
    };
    if asked.is_none() {
        return Ok(Redirect::to(&urls::recap(period)).into_response());
    }
    let page = Page::of(&state, runs, Some(period)).await?;
    let recap: Vec<RecapMember> = page
        .rows(Select::all().sorted(doc! {col::MINUTES: -1, col::USER_ID: 1}))
        .await?;
    let (previous, next) = period.neighbours();
    let known = earshot_metrics::runs::periods(&page.runs);
    let step = |p: Period| Step {
        label: p.label(),
        href: urls::recap(p),
        available: known.contains(&p),
    };
    let context = RecapPage {
        frame: page.frame(&format!("Recap · {}", period.label())),
        empty: false,
        heading: format!("{} · {}", state.stores.group.name, period.label()),
        members: cards(&page, &recap).await?,
        minutes: minutes_chart(&page, period, &recap),
        group: group(&page).await?,
        previous: Some(step(previous)),
        next: Some(step(next)),
        spoken: spoken::group(&page).await?,
    };
    Ok(render("recap.html", &context)?.into_response())
}

/// Each member's card.
async fn cards(page: &Page<'_>, recap: &[RecapMember]) -> Result<Vec<Card>, PageError> {
    let discovered: Vec<RecapDiscovered> = page
        .rows(Select::all().sorted(doc! {col::USER_ID: 1, col::PLAYS: -1, col::ARTIST_ID: 1}))
        .await?;
    let led: Vec<TrackTopListener> = page
        .rows(Select::all().sorted(doc! {col::PLAYS: -1, col::TRACK_KEY: 1}))
        .await?;
    let names = page.track_names_all().await?;
    Ok(recap
        .iter()
        .map(|r| card(page, r, &discovered, &led, &names))
        .collect())
}

fn card(
    page: &Page<'_>,
    r: &RecapMember,
    discovered: &[RecapDiscovered],
    led: &[TrackTopListener],
    names: &BTreeMap<String, String>,
) -> Card {
    let id = r.user_id.as_str();
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    Card {
        member: page.member(id),
        minutes: r.minutes.round() as i64,
        plays: r.plays,
        top_track: page.track(&text(&r.top_track_key), &text(&r.top_track_name)),
        top_track_plays: r.top_track_plays,
        top_artist: page.artist(r.top_artist_id.as_deref(), &text(&r.top_artist_name)),
        top_artist_plays: r.top_artist_plays,
        top_album: r.top_album_name.clone(),
        top_album_plays: r.top_album_plays,
        discovered: r.artists_discovered,
        discovered_names: discovered
            .iter()
            .filter(|d| d.user_id == id)
            .take(CARD_LIST)
            .map(|d| page.artist(Some(&d.artist_id), &d.name))
            .collect(),
        streak: r.longest_streak_days,
        busiest_day: r.busiest_day.clone(),
        busiest_day_plays: r.busiest_day_plays,
        top_listener_of: r.top_listener_of,
        leads: led
            .iter()
            .filter(|l| l.user_id == id)
            .take(CARD_LIST)
            .map(|l| page.named_track(&l.track_key, names))
            .collect(),
    }
}

fn minutes_chart(page: &Page<'_>, period: Period, recap: &[RecapMember]) -> String {
    let bars: Vec<Bar> = recap
        .iter()
        .map(|r| Bar {
            label: page.name(&r.user_id),
            href: Some(urls::member(&r.user_id, page.period)),
            value: r.minutes.round(),
        })
        .collect();
    earshot_charts::bars(
        "minutes",
        &format!("Minutes listened, {}", period.label()),
        "minutes",
        &bars,
        true,
    )
    .html()
}

/// The group's most shared track and closest pair.
async fn group(page: &Page<'_>) -> Result<Option<Group>, PageError> {
    let whole: Option<RecapGroup> = page.row(Select::all()).await?;
    Ok(whole.map(|g| Group {
        track: page.track(&g.most_shared_track_key, &g.most_shared_track_name),
        listeners: g.most_shared_listeners,
        plays: g.most_shared_plays,
        closest: match (g.closest_a, g.closest_b) {
            (Some(a), Some(b)) if !a.is_empty() && !page.hides(&a) && !page.hides(&b) => {
                Some(Closest {
                    href: page.pair(&a, &b),
                    a: page.member(&a),
                    b: page.member(&b),
                    taste: format!("{:.1}", g.closest_taste_match.unwrap_or_default()),
                })
            }
            _ => None,
        },
    }))
}
