//! Request handling of the mock: one dispatcher, so that faults, authentication and error bodies are
//! applied the same way to every endpoint, in Spotify's shapes. The endpoints are grouped as
//! Spotify groups them: `web_api`, `accounts`, and the mock's own `control`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State as AxumState;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{
    AccessGrant, CodeGrant, Endpoint, Fault, RefreshGrant, RefreshPolicy, RequestRecord, Shape,
    State,
};

mod accounts;
mod control;
mod web_api;

use accounts::*;
use control::*;
use web_api::*;

type Shared = Arc<Mutex<State>>;

pub(super) fn router(state: Shared) -> Router {
    Router::new().fallback(dispatch).with_state(state)
}

fn endpoint_of(method: &Method, path: &str) -> Endpoint {
    // Spotify answers `/v1/me/` as it answers `/v1/me` (spotipy, for one, calls it that way).
    let path = match path.strip_suffix('/') {
        Some(trimmed) if !trimmed.is_empty() => trimmed,
        _ => path,
    };
    match (method.as_str(), path) {
        ("GET", "/authorize") => Endpoint::Authorize,
        ("POST", "/api/token") => Endpoint::Token,
        ("GET", "/v1/me") => Endpoint::Me,
        ("GET", "/v1/me/player/recently-played") => Endpoint::RecentlyPlayed,
        ("GET", "/v1/me/top/tracks") => Endpoint::TopTracks,
        ("GET", "/v1/me/top/artists") => Endpoint::TopArtists,
        ("GET", p)
            if p.strip_prefix("/v1/tracks/")
                .is_some_and(|id| !id.is_empty() && !id.contains('/')) =>
        {
            Endpoint::Track
        }
        _ => Endpoint::Other,
    }
}

/// A response under construction, before faults that change the body are applied.
struct Answer {
    status: StatusCode,
    headers: Vec<(header::HeaderName, String)>,
    body: String,
    content_type: &'static str,
}

impl Answer {
    fn json(status: StatusCode, body: &Value) -> Answer {
        Answer {
            status,
            headers: Vec::new(),
            body: body.to_string(),
            content_type: "application/json; charset=utf-8",
        }
    }

    /// The Web API's error shape: `{"error": {"status": n, "message": "…"}}`.
    fn api_error(status: StatusCode, message: &str) -> Answer {
        Answer::json(
            status,
            &json!({"error": {"status": status.as_u16(), "message": message}}),
        )
    }

    /// The accounts service's error shape: `{"error": "code", "error_description": "…"}`.
    fn auth_error(status: StatusCode, code: &str, description: &str) -> Answer {
        Answer::json(
            status,
            &json!({"error": code, "error_description": description}),
        )
    }

    fn text(status: StatusCode, body: &str) -> Answer {
        Answer {
            status,
            headers: Vec::new(),
            body: body.to_string(),
            content_type: "text/plain; charset=utf-8",
        }
    }

    fn redirect(location: String) -> Answer {
        Answer {
            status: StatusCode::FOUND,
            headers: vec![(header::LOCATION, location)],
            body: String::new(),
            content_type: "text/plain; charset=utf-8",
        }
    }
}

async fn dispatch(
    AxumState(shared): AxumState<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let endpoint = endpoint_of(&method, uri.path());
    let query: HashMap<String, String> =
        url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let path_and_query = uri
        .path_and_query()
        .map_or_else(|| uri.path().to_string(), |p| p.as_str().to_string());

    // Decide everything under the lock; sleep (slow fault) outside it.
    let (answer, member, delay, truncate) = {
        let mut state = shared.lock().unwrap_or_else(|p| p.into_inner());
        let member = requester(&state, endpoint, &headers, &form);
        let fault = state.take_fault(endpoint, member.as_deref());
        let (delay, truncate) = match &fault {
            Some(Fault::Slow(d)) => (Some(*d), false),
            Some(Fault::Truncated) => (None, true),
            _ => (None, false),
        };
        let answer = match fault {
            Some(Fault::RateLimited { retry_after, quota }) => {
                let mut error = json!({"status": 429, "message": "API rate limit exceeded"});
                if quota {
                    error["reason"] = json!("QUOTA_EXCEEDED");
                }
                let mut answer =
                    Answer::json(StatusCode::TOO_MANY_REQUESTS, &json!({"error": error}));
                answer
                    .headers
                    .push((header::RETRY_AFTER, retry_after.to_string()));
                answer
            }
            Some(Fault::Status(code)) => {
                let status =
                    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                if endpoint == Endpoint::Token {
                    Answer::auth_error(status, "server_error", "Server error")
                } else {
                    let message = match code {
                        502 => "Bad gateway.",
                        503 => "Service unavailable",
                        _ => "Server error.",
                    };
                    Answer::api_error(status, message)
                }
            }
            Some(Fault::ExpiredToken) if endpoint != Endpoint::Token => {
                Answer::api_error(StatusCode::UNAUTHORIZED, "The access token expired")
            }
            Some(Fault::InvalidGrant) if endpoint == Endpoint::Token => Answer::auth_error(
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                "Invalid refresh token",
            ),
            _ => handle(
                &mut state,
                endpoint,
                &path_and_query,
                &query,
                &form,
                &headers,
            ),
        };
        let record = RequestRecord {
            endpoint,
            method: method.to_string(),
            path_and_query: path_and_query.clone(),
            status: answer.status.as_u16(),
            member: member.clone(),
            at: state.now,
            received: std::time::Instant::now(),
        };
        state.log.push(record);
        (answer, member, delay, truncate)
    };
    let _ = member;
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    let mut body = answer.body;
    if truncate {
        let mut cut = body.len() / 2;
        while !body.is_char_boundary(cut) {
            cut -= 1;
        }
        body.truncate(cut);
    }
    let mut response = (answer.status, body).into_response();
    let response_headers = response.headers_mut();
    response_headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(answer.content_type),
    );
    response_headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=0"),
    );
    for (name, value) in answer.headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            response_headers.insert(name, value);
        }
    }
    response
}

/// The member a request is for, when it can be told (bearer token, refresh token or code).
fn requester(
    state: &State,
    endpoint: Endpoint,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Option<String> {
    if endpoint == Endpoint::Token {
        if let Some(token) = form.get("refresh_token") {
            return state.refresh.get(token).map(|g| g.user_id.clone());
        }
        return form
            .get("code")
            .and_then(|c| state.codes.get(c))
            .map(|g| g.user_id.clone());
    }
    let token = bearer(headers)?;
    state.access.get(token).map(|g| g.user_id.clone())
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

fn handle(
    state: &mut State,
    endpoint: Endpoint,
    path_and_query: &str,
    query: &HashMap<String, String>,
    form: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Answer {
    match endpoint {
        Endpoint::Authorize => authorize(state, query),
        Endpoint::Token => token(state, form, headers),
        Endpoint::Other if path_and_query.starts_with("/mock/clock") => clock(state, query),
        Endpoint::Other => Answer::api_error(StatusCode::NOT_FOUND, "Service not found"),
        api => {
            let user = match authenticate(state, headers) {
                Ok(user) => user,
                Err(answer) => return answer,
            };
            let href = format!("{}{path_and_query}", state.base_url);
            let mut answer = match api {
                Endpoint::Me => Answer::json(StatusCode::OK, &state.members[&user].user),
                Endpoint::RecentlyPlayed => recently_played(state, &user, query, &href),
                Endpoint::TopTracks => top(state, &user, query, &href, "tracks"),
                Endpoint::Track => track(state, path_and_query),
                _ => top(state, &user, query, &href, "artists"),
            };
            if state.options.shape == Shape::DevMode
                && answer.status == StatusCode::OK
                && let Ok(mut value) = serde_json::from_str::<Value>(&answer.body)
            {
                strip(&mut value, REMOVED_FIELDS);
                if api == Endpoint::Me {
                    strip(&mut value, REMOVED_USER_FIELDS);
                }
                answer.body = value.to_string();
            }
            answer
        }
    }
}

fn strip(value: &mut Value, fields: &[&str]) {
    match value {
        Value::Object(map) => {
            for field in fields {
                map.remove(*field);
            }
            map.values_mut().for_each(|v| strip(v, fields));
        }
        Value::Array(items) => items.iter_mut().for_each(|v| strip(v, fields)),
        _ => {}
    }
}

fn authenticate(state: &State, headers: &HeaderMap) -> Result<String, Answer> {
    let Some(token) = bearer(headers) else {
        return Err(Answer::api_error(
            StatusCode::UNAUTHORIZED,
            "No token provided",
        ));
    };
    let Some(grant) = state.access.get(token) else {
        return Err(Answer::api_error(
            StatusCode::UNAUTHORIZED,
            "Invalid access token",
        ));
    };
    if state.now >= grant.expires_at {
        return Err(Answer::api_error(
            StatusCode::UNAUTHORIZED,
            "The access token expired",
        ));
    }
    let allowed = state.clients.get(&grant.client_id).is_some_and(|c| {
        c.allowlist
            .as_ref()
            .is_none_or(|list| list.contains(&grant.user_id))
    });
    if !allowed {
        return Err(Answer::api_error(
            StatusCode::FORBIDDEN,
            "User not registered in the Developer Dashboard",
        ));
    }
    if !state.members.contains_key(&grant.user_id) {
        return Err(Answer::api_error(StatusCode::NOT_FOUND, "User not found"));
    }
    Ok(grant.user_id.clone())
}

/// Parse an integer parameter; `Err` is the 400 answer naming it.
fn int_param(
    query: &HashMap<String, String>,
    name: &str,
    default: i64,
    range: std::ops::RangeInclusive<i64>,
) -> Result<i64, Answer> {
    match query.get(name) {
        None => Ok(default),
        Some(text) => match text.parse::<i64>() {
            Ok(n) if range.contains(&n) => Ok(n),
            _ => Err(Answer::api_error(
                StatusCode::BAD_REQUEST,
                &format!("Invalid {name}"),
            )),
        },
    }
}
