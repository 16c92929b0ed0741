//! The mock's own control endpoint, not part of Spotify: the clock.

use std::collections::HashMap;

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde_json::json;

use super::State;

use super::*;

/// Test control, not part of Spotify: `GET /mock/clock` reads the mock clock, `?set=<RFC 3339>` sets it
/// (scripts and the Airflow end-to-end test move time this way).
pub(super) fn clock(state: &mut State, query: &HashMap<String, String>) -> Answer {
    if let Some(text) = query.get("set") {
        match DateTime::parse_from_rfc3339(text) {
            Ok(at) => state.now = at.with_timezone(&Utc),
            Err(_) => {
                return Answer::api_error(StatusCode::BAD_REQUEST, "set must be an RFC 3339 time");
            }
        }
    }
    Answer::json(
        StatusCode::OK,
        &json!({"now": state.now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)}),
    )
}
