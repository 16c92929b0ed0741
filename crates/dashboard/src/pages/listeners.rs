//! What a track's and an artist's page share: the subject's listeners in the period, ranked
//! (`listeners.html`).

use serde::Serialize;

use crate::page::{MemberLink, Page};

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
