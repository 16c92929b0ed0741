//! The Web API's endpoints the fetcher reads: recently played (reachable plays capped as on
//! Spotify), top items and a track, with the fields Spotify removed in 2026 stripped.

use std::collections::HashMap;

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::State;

use super::*;

/// Fields Spotify removed for development-mode apps in 2026; stripped from every answer in that mode.
pub(super) const REMOVED_FIELDS: &[&str] = &[
    "popularity",
    "available_markets",
    "linked_from",
    "label",
    "followers",
];
/// Fields of /v1/me removed in 2026.
pub(super) const REMOVED_USER_FIELDS: &[&str] = &["email", "country", "product"];
/// Most plays recently-played can reach, as on Spotify.
pub(super) const REACHABLE_PLAYS: usize = 50;
/// `GET /v1/me/player/recently-played`.
pub(super) fn recently_played(
    state: &State,
    user: &str,
    query: &HashMap<String, String>,
    href: &str,
) -> Answer {
    let limit = match int_param(query, "limit", 20, 1..=50) {
        Ok(n) => n as usize,
        Err(answer) => return answer,
    };
    if query.contains_key("after") && query.contains_key("before") {
        return Answer::api_error(
            StatusCode::BAD_REQUEST,
            "Only one of after or before may be specified",
        );
    }
    let after = match int_param(query, "after", i64::MIN, 0..=i64::MAX) {
        Ok(n) => n,
        Err(answer) => return answer,
    };
    let before = match int_param(query, "before", i64::MAX, 0..=i64::MAX) {
        Ok(n) => n,
        Err(answer) => return answer,
    };
    let now_ms = state.now.timestamp_millis();
    let plays = &state.members[user].plays;
    let visible = plays.partition_point(|(ms, _)| *ms <= now_ms);
    // Only the newest 50 plays are reachable at all, newest first.
    let reachable: Vec<&(i64, Value)> = plays[..visible]
        .iter()
        .rev()
        .take(REACHABLE_PLAYS)
        .collect();
    let matching: Vec<&&(i64, Value)> = reachable
        .iter()
        .filter(|(ms, _)| *ms > after && *ms < before)
        .collect();
    let page: Vec<&&(i64, Value)> = matching.iter().take(limit).copied().collect();
    let items: Vec<Value> = page.iter().map(|(_, play)| play.clone()).collect();
    let (cursors, next) = match (page.first(), page.last()) {
        (Some(newest), Some(oldest)) => {
            let more = reachable.iter().any(|(ms, _)| *ms < oldest.0);
            let next = more.then(|| {
                format!(
                    "{}/v1/me/player/recently-played?before={}&limit={limit}",
                    state.base_url, oldest.0
                )
            });
            (
                json!({"after": newest.0.to_string(), "before": oldest.0.to_string()}),
                json!(next),
            )
        }
        _ => (Value::Null, Value::Null),
    };
    Answer::json(
        StatusCode::OK,
        &json!({"items": items, "next": next, "cursors": cursors, "limit": limit, "href": href}),
    )
}

pub(super) fn top(
    state: &State,
    user: &str,
    query: &HashMap<String, String>,
    href: &str,
    kind: &str,
) -> Answer {
    let range = query
        .get("time_range")
        .map_or("medium_term", String::as_str);
    if !["short_term", "medium_term", "long_term"].contains(&range) {
        return Answer::api_error(StatusCode::BAD_REQUEST, "Invalid time range");
    }
    let limit = match int_param(query, "limit", 20, 1..=50) {
        Ok(n) => n as usize,
        Err(answer) => return answer,
    };
    let offset = match int_param(query, "offset", 0, 0..=10_000) {
        Ok(n) => n as usize,
        Err(answer) => return answer,
    };
    let member = &state.members[user];
    let lists = if kind == "tracks" {
        &member.top_tracks
    } else {
        &member.top_artists
    };
    let all = lists.get(range).map_or(&[][..], Vec::as_slice);
    let items: Vec<&Value> = all.iter().skip(offset).take(limit).collect();
    let page_url = |offset: usize| {
        format!(
            "{}/v1/me/top/{kind}?time_range={range}&limit={limit}&offset={offset}",
            state.base_url
        )
    };
    let next = (offset + limit < all.len()).then(|| page_url(offset + limit));
    let previous = (offset > 0).then(|| page_url(offset.saturating_sub(limit)));
    Answer::json(
        StatusCode::OK,
        &json!({"items": items, "total": all.len(), "limit": limit, "offset": offset, "href": href,
                "next": next, "previous": previous}),
    )
}

/// `GET /v1/tracks/{id}`: the track, 400 for an id that is not base-62, 404 for one Spotify does not
/// have (a track since removed).
pub(super) fn track(state: &State, path_and_query: &str) -> Answer {
    let path = path_and_query.split('?').next().unwrap_or(path_and_query);
    let id = path.trim_start_matches("/v1/tracks/").trim_end_matches('/');
    if id.len() != 22 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Answer::api_error(StatusCode::BAD_REQUEST, "invalid id");
    }
    match state.tracks.get(id) {
        Some(track) => Answer::json(StatusCode::OK, track),
        None => Answer::api_error(StatusCode::NOT_FOUND, "Resource not found"),
    }
}
