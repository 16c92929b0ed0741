//! The group page: who listened most, plays per day, the group chart, shared songs, taste match,
//! listening clocks, and the last week's recap.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::Html;
use chrono::NaiveDate;
use earshot_core::period::Period;
use earshot_metrics::col;
use earshot_metrics::report::{CHART_LENGTH, chart_with_leaders};
use earshot_metrics::rows::{
    ClockCell, MemberSummary, PlaysPerDay, SharedTracks, TasteMatch, TrackListeners,
    TrackTopListener,
};
use mongodb::bson::doc;
use serde::Serialize;

use crate::app::AppState;
use crate::data;
use crate::page::{MemberLink, Page, PeriodQuery};
use crate::pages::{clock_chart, spoken};
use crate::render::{Frame, Link, PageError, render};
use crate::urls;
use earshot_charts::{Bar, Heatmap};
use earshot_metrics::store::Select;

#[derive(Serialize)]
struct GroupPage {
    #[serde(flatten)]
    frame: Frame,
    group_name: String,
    period_label: String,
    most: String,
    members: Vec<MemberRow>,
    days: String,
    chart: Vec<ChartRow>,
    shared: Vec<PairRow>,
    matrix: String,
    clock: String,
    clocks: Vec<String>,
    weekly: Option<Weekly>,
    spoken: Option<spoken::GroupSpoken>,
}

#[derive(Serialize)]
struct MemberRow {
    member: MemberLink,
    plays: i64,
    minutes: i64,
    tracks: i64,
    artists: i64,
}

#[derive(Serialize)]
struct ChartRow {
    position: usize,
    track: Link,
    listeners: i64,
    plays: i64,
    top: Vec<Leader>,
}

#[derive(Serialize)]
struct Leader {
    member: MemberLink,
    plays: i64,
}

#[derive(Serialize)]
struct PairRow {
    a: MemberLink,
    b: MemberLink,
    href: String,
    shared: i64,
    jaccard: String,
}

#[derive(Serialize)]
struct Weekly {
    week: String,
    members: Vec<WeeklyRow>,
    recap_href: Option<String>,
}

#[derive(Serialize)]
struct WeeklyRow {
    member: MemberLink,
    tracks: i64,
    artists: Option<i64>,
    top: Option<Link>,
    top_plays: Option<i64>,
}

/// The group page.
pub async fn page(
    State(state): State<Arc<AppState>>,
    Query(query): Query<PeriodQuery>,
) -> Result<Html<String>, PageError> {
    let page = Page::read(&state, &query).await?;
    let summary: Vec<MemberSummary> = page
        .rows(Select::all().sorted(doc! {col::PLAYS: -1, col::USER_ID: 1}))
        .await?;
    let ids: Vec<String> = summary.iter().map(|r| r.user_id.clone()).collect();
    let clock_rows: Vec<ClockCell> = page.rows(Select::all()).await?;
    let per_day: Vec<PlaysPerDay> = page.rows(Select::all()).await?;
    let title = format!("{} · {}", state.stores.group.name, page.period_label());
    render(
        "group.html",
        &GroupPage {
            frame: page.frame(&title),
            group_name: state.stores.group.name.clone(),
            period_label: page.period_label(),
            most: most(&page, &summary),
            members: summary.iter().map(|r| member_row(&page, r)).collect(),
            days: earshot_charts::timeline(
                "days",
                "Plays per day",
                "plays",
                &plays_per_day(&per_day),
            )
            .html(),
            chart: chart(&page).await?,
            shared: shared(&page).await?,
            matrix: taste_matrix(&page, &ids).await?,
            clock: clock_chart(
                "clock",
                "The group's listening clock (group time zone)",
                clock_rows.iter(),
            ),
            clocks: ids
                .iter()
                .enumerate()
                .map(|(i, id)| {
                    let theirs = clock_rows.iter().filter(|r| &r.user_id == id);
                    clock_chart(
                        &format!("clock-{i}"),
                        &format!("{}'s listening clock", page.name(id)),
                        theirs,
                    )
                })
                .collect(),
            weekly: weekly(&page).await?,
            spoken: spoken::group(&page).await?,
        },
    )
}

fn most(page: &Page<'_>, summary: &[MemberSummary]) -> String {
    let bars: Vec<Bar> = summary
        .iter()
        .map(|r| Bar {
            label: page.name(&r.user_id),
            href: Some(urls::member(&r.user_id, page.period)),
            value: r.plays as f64,
        })
        .collect();
    earshot_charts::bars("most", "Who listened most", "plays", &bars, true).html()
}

fn member_row(page: &Page<'_>, r: &MemberSummary) -> MemberRow {
    MemberRow {
        member: page.member(&r.user_id),
        plays: r.plays,
        minutes: r.minutes.round() as i64,
        tracks: r.unique_tracks,
        artists: r.unique_artists.unwrap_or(0),
    }
}

/// Plays per local day, summed over members.
pub fn plays_per_day(rows: &[PlaysPerDay]) -> Vec<(NaiveDate, f64)> {
    let mut days = std::collections::BTreeMap::<NaiveDate, f64>::new();
    for row in rows {
        if let Ok(day) = NaiveDate::parse_from_str(&row.day, "%Y-%m-%d") {
            *days.entry(day).or_default() += row.plays as f64;
        }
    }
    days.into_iter().collect()
}

/// The group chart, each track with who played it most.
async fn chart(page: &Page<'_>) -> Result<Vec<ChartRow>, PageError> {
    let tracks: Vec<TrackListeners> = page
        .rows(
            Select::all()
                .sorted(doc! {col::LISTENERS: -1, col::PLAYS: -1, col::TRACK_KEY: 1})
                .first(CHART_LENGTH as i64),
        )
        .await?;
    let keys: Vec<&str> = tracks.iter().map(|r| r.track_key.as_str()).collect();
    let leaders: Vec<TrackTopListener> = page
        .rows(
            Select::matching(doc! {col::TRACK_KEY: {"$in": &keys}}).sorted(doc! {col::USER_ID: 1}),
        )
        .await?;
    Ok(chart_with_leaders(&tracks, &leaders)
        .into_iter()
        .enumerate()
        .map(|(i, entry)| ChartRow {
            position: i + 1,
            track: page.track(&entry.track_key, &entry.name),
            listeners: entry.listeners,
            plays: entry.plays,
            top: entry
                .listened_most
                .iter()
                .map(|l| Leader {
                    member: page.member(&l.member),
                    plays: l.plays,
                })
                .collect(),
        })
        .collect())
}

async fn shared(page: &Page<'_>) -> Result<Vec<PairRow>, PageError> {
    let pairs: Vec<SharedTracks> = page
        .rows(Select::all().sorted(doc! {col::SHARED: -1, col::MEMBER_A: 1, col::MEMBER_B: 1}))
        .await?;
    Ok(pairs
        .iter()
        .map(|r| PairRow {
            a: page.member(&r.member_a),
            b: page.member(&r.member_b),
            href: page.pair(&r.member_a, &r.member_b),
            shared: r.shared,
            jaccard: format!("{:.2}", r.jaccard),
        })
        .collect())
}

async fn taste_matrix(page: &Page<'_>, ids: &[String]) -> Result<String, PageError> {
    let taste: Vec<TasteMatch> = page.rows(Select::all()).await?;
    let cell = |a: &String, b: &String| {
        taste
            .iter()
            .find(|r| {
                (&r.member_a == a && &r.member_b == b) || (&r.member_a == b && &r.member_b == a)
            })
            .map(|r| (r.taste_match * 10.0).round() / 10.0)
    };
    Ok(earshot_charts::heatmap(&Heatmap {
        id: "taste",
        title: "Taste match",
        unit: "taste match, 0–100",
        rows: ids.iter().map(|id| page.name(id)).collect(),
        columns: ids.iter().map(|id| page.name(id)).collect(),
        cells: ids
            .iter()
            .map(|a| ids.iter().map(|b| cell(a, b)).collect())
            .collect(),
        decimals: 1,
        cell: (70.0, 32.0),
        label_width: 120.0,
        range: None,
    })
    .html())
}

/// The run's report's weekly recap, with a link to that week's recap page when it was computed.
async fn weekly(page: &Page<'_>) -> Result<Option<Weekly>, PageError> {
    let Some(report) = data::report(&page.state.stores.storage, &page.run.run).await? else {
        return Ok(None);
    };
    let week = report.meta.weekly_recap_week_starting;
    let recapped = NaiveDate::parse_from_str(&week, "%Y-%m-%d")
        .ok()
        .and_then(|d| {
            let w = chrono::Datelike::iso_week(&d);
            let period = Period::Week(w.year(), w.week());
            earshot_metrics::runs::periods(&page.runs)
                .contains(&period)
                .then(|| urls::recap(period))
        });
    let members = report
        .weekly_recap
        .iter()
        .map(|m| WeeklyRow {
            member: page.member(&m.id),
            tracks: m.unique_tracks,
            artists: m.unique_artists,
            top: m
                .top_track
                .as_ref()
                .map(|t| page.track(&t.track_key, &t.name)),
            top_plays: m.top_track.as_ref().map(|t| t.plays),
        })
        .collect();
    Ok(Some(Weekly {
        week,
        members,
        recap_href: recapped,
    }))
}
