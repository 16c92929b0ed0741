//! What a track's and an artist's page share: the subject's listeners in the period, ranked
//! (`listeners.html`).

use earshot_metrics::col;
use earshot_metrics::rows::MetricRow;
use mongodb::bson::doc;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::data;
use crate::page::{MemberLink, Page};
use crate::render::PageError;
use earshot_metrics::store::Select;

/// What a track's or artist's page reads of its subject: its listeners in the period (`R` rows whose
/// `key_column` is `id`, most plays first) and its derived-collection document `D` (the whole
/// history); a `404` page when the group never played it (`what`: "track", "artist").
pub(super) async fn subject<R: MetricRow, D: DeserializeOwned + Send + Sync>(
    page: &Page<'_>,
    (key_column, collection, what): (&str, &str, &str),
    id: &str,
) -> Result<(Vec<R>, Option<D>), PageError> {
    let listeners: Vec<R> = page
        .rows(
            Select::matching(doc! {key_column: id}).sorted(doc! {col::PLAYS: -1, col::USER_ID: 1}),
        )
        .await?;
    let stored: Option<D> = data::derived(&page.state.stores.db, collection, id).await?;
    if listeners.is_empty() && stored.is_none() {
        return Err(PageError::not_found(
            &format!("No such {what}"),
            format!("The group never played the {what} `{id}`."),
        ));
    }
    Ok((listeners, stored))
}

/// A listener of the subject.
#[derive(Serialize)]
pub(super) struct Listener {
    rank: usize,
    member: MemberLink,
    plays: i64,
    minutes: String,
}

/// The listeners, most plays first: (member, plays, minutes) each.
pub(super) fn ranked<'a>(
    page: &Page<'_>,
    rows: impl Iterator<Item = (&'a str, i64, f64)>,
) -> Vec<Listener> {
    rows.enumerate()
        .map(|(i, (member, plays, minutes))| Listener {
            rank: i + 1,
            member: page.member(member),
            plays,
            minutes: format!("{minutes:.1}"),
        })
        .collect()
}
