//! Podcasts and audiobooks (the imported spoken plays, counted apart from the music): a member's
//! minutes and shows, the group's minutes per member and the podcasts friends share. Shown on the
//! member page, the group page and the recap.

use earshot_core::history::SpokenKind;
use earshot_metrics::col;
use earshot_metrics::rows::{SharedShow, ShowMinutes, SpokenSummary};
use mongodb::bson::doc;
use serde::Serialize;

use crate::page::{MemberLink, Page};
use crate::render::PageError;
use earshot_metrics::store::Select;

/// How many shows a list names.
const SHOWS: usize = 5;

/// A member's podcasts and audiobooks.
#[derive(Serialize)]
pub(crate) struct MemberSpoken {
    podcast_minutes: i64,
    episodes: i64,
    audiobook_minutes: i64,
    chapters: i64,
    /// Their podcasts, most minutes first.
    shows: Vec<ShowRow>,
    /// Their audiobooks, most minutes first.
    books: Vec<ShowRow>,
}

#[derive(Serialize)]
pub(crate) struct ShowRow {
    name: String,
    minutes: String,
    plays: i64,
}

/// The group's podcasts and audiobooks.
#[derive(Serialize)]
pub(crate) struct GroupSpoken {
    members: Vec<MemberMinutes>,
    shared: Vec<SharedRow>,
}

#[derive(Serialize)]
pub(crate) struct MemberMinutes {
    member: MemberLink,
    podcast_minutes: i64,
    audiobook_minutes: i64,
    top_show: Option<String>,
}

#[derive(Serialize)]
pub(crate) struct SharedRow {
    name: String,
    listeners: i64,
    minutes: String,
}

fn show_row(r: &ShowMinutes) -> ShowRow {
    ShowRow {
        name: r.show_name.clone(),
        minutes: format!("{:.1}", r.minutes),
        plays: r.plays,
    }
}

/// `id`'s podcasts and audiobooks in the page's run; none when they played neither.
pub(crate) async fn member(page: &Page<'_>, id: &str) -> Result<Option<MemberSpoken>, PageError> {
    let me = doc! {col::USER_ID: id};
    let Some(summary) = page
        .row::<SpokenSummary>(Select::matching(me.clone()))
        .await?
    else {
        return Ok(None);
    };
    let shows: Vec<ShowMinutes> = page
        .rows(Select::matching(me).sorted(doc! {col::MINUTES: -1, col::SHOW_NAME: 1}))
        .await?;
    let of = |kind: &str| -> Vec<ShowRow> {
        shows
            .iter()
            .filter(|r| r.kind == kind)
            .take(SHOWS)
            .map(show_row)
            .collect()
    };
    Ok(Some(MemberSpoken {
        podcast_minutes: summary.podcast_minutes.round() as i64,
        episodes: summary.episodes,
        audiobook_minutes: summary.audiobook_minutes.round() as i64,
        chapters: summary.chapters,
        shows: of(SpokenKind::Episode.as_str()),
        books: of(SpokenKind::Audiobook.as_str()),
    }))
}

/// Each member's minutes and top podcast, and the podcasts several friends follow; none when nobody
/// played either.
pub(crate) async fn group(page: &Page<'_>) -> Result<Option<GroupSpoken>, PageError> {
    let summary: Vec<SpokenSummary> = page
        .rows(Select::all().sorted(doc! {col::PODCAST_MINUTES: -1, col::USER_ID: 1}))
        .await?;
    if summary.is_empty() {
        return Ok(None);
    }
    let shows: Vec<ShowMinutes> = page
        .rows(
            Select::matching(doc! {col::KIND: SpokenKind::Episode.as_str()})
                .sorted(doc! {col::USER_ID: 1, col::MINUTES: -1, col::SHOW_NAME: 1}),
        )
        .await?;
    let shared: Vec<SharedShow> = page
        .rows(Select::all().sorted(doc! {col::LISTENERS: -1, col::MINUTES: -1, col::SHOW_NAME: 1}))
        .await?;
    Ok(Some(GroupSpoken {
        members: summary
            .iter()
            .map(|r| MemberMinutes {
                member: page.member(&r.user_id),
                podcast_minutes: r.podcast_minutes.round() as i64,
                audiobook_minutes: r.audiobook_minutes.round() as i64,
                top_show: shows
                    .iter()
                    .find(|s| s.user_id == r.user_id)
                    .map(|s| s.show_name.clone()),
            })
            .collect(),
        shared: shared
            .iter()
            .map(|r| SharedRow {
                name: r.show_name.clone(),
                listeners: r.listeners,
                minutes: format!("{:.1}", r.minutes),
            })
            .collect(),
    }))
}
