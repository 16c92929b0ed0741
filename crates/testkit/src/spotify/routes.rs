//! Request handling of the mock: one dispatcher, so that faults, authentication and error bodies are
//! applied the same way to every endpoint, in Spotify's shapes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State as AxumState;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, Months, Utc};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{
    AccessGrant, CodeGrant, Endpoint, Fault, RefreshGrant, RefreshPolicy, RequestRecord, Shape,
    State,
};

type Shared = Arc<Mutex<State>>;

/// Fields Spotify removed for development-mode apps in 2026; stripped from every answer in that mode.
const REMOVED_FIELDS: &[&str] = &[
    "popularity",
    "available_markets",
    "linked_from",
    "label",
    "followers",
];
/// Fields of /v1/me removed in 2026.
const REMOVED_USER_FIELDS: &[&str] = &["email", "country", "product"];
/// Most plays recently-played can reach, as on Spotify.
const REACHABLE_PLAYS: usize = 50;
/// An authorization code is good for this long.
const CODE_LIFETIME_MINUTES: i64 = 10;
const KNOWN_SCOPES: &[&str] = &[
    "user-read-recently-played",
    "user-top-read",
    "user-read-private",
    "user-read-email",
    "user-library-read",
    "playlist-read-private",
];

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

fn recently_played(
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

fn top(
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
fn track(state: &State, path_and_query: &str) -> Answer {
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

fn is_loopback_redirect(uri: &url::Url) -> bool {
    uri.scheme() == "http" && matches!(uri.host(), Some(url::Host::Ipv4(ip)) if ip.is_loopback())
        || uri.scheme() == "http"
            && matches!(uri.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback())
}

fn authorize(state: &mut State, query: &HashMap<String, String>) -> Answer {
    let Some(client_id) = query.get("client_id") else {
        return Answer::text(StatusCode::BAD_REQUEST, "INVALID_CLIENT: Invalid client");
    };
    if !state.clients.contains_key(client_id) {
        return Answer::text(StatusCode::BAD_REQUEST, "INVALID_CLIENT: Invalid client");
    }
    let Some(redirect) = query
        .get("redirect_uri")
        .and_then(|r| url::Url::parse(r).ok())
    else {
        return Answer::text(
            StatusCode::BAD_REQUEST,
            "INVALID_CLIENT: Invalid redirect URI",
        );
    };
    // Since 2025-11-27: HTTPS, or a loopback IP literal over HTTP; `localhost` is refused.
    if !(redirect.scheme() == "https" || is_loopback_redirect(&redirect)) {
        return Answer::text(
            StatusCode::BAD_REQUEST,
            "INVALID_CLIENT: Insecure redirect URI",
        );
    }
    let state_param = query.get("state").cloned();
    let redirect_with = |pairs: &[(&str, &str)]| {
        let mut target = redirect.clone();
        {
            let mut q = target.query_pairs_mut();
            for (k, v) in pairs {
                q.append_pair(k, v);
            }
            if let Some(s) = &state_param {
                q.append_pair("state", s);
            }
        }
        Answer::redirect(target.to_string())
    };
    if query.get("response_type").map(String::as_str) != Some("code") {
        return redirect_with(&[("error", "unsupported_response_type")]);
    }
    let scope = query.get("scope").cloned().unwrap_or_default();
    if scope.split_whitespace().any(|s| !KNOWN_SCOPES.contains(&s)) {
        return redirect_with(&[("error", "invalid_scope")]);
    }
    let challenge = query.get("code_challenge").cloned();
    if challenge.is_some() && query.get("code_challenge_method").map(String::as_str) != Some("S256")
    {
        return redirect_with(&[("error", "invalid_request")]);
    }
    let Some(user) = query
        .get("mock_user")
        .cloned()
        .or_else(|| state.login.clone())
    else {
        return Answer::text(
            StatusCode::UNAUTHORIZED,
            "no member is logged in to the mock (login_as or mock_user)",
        );
    };
    if !state.members.contains_key(&user) {
        return Answer::text(StatusCode::BAD_REQUEST, "unknown mock member");
    }
    if std::mem::take(&mut state.deny_next) {
        return redirect_with(&[("error", "access_denied")]);
    }
    let code = state.new_token("AQC");
    state.codes.insert(
        code.clone(),
        CodeGrant {
            client_id: client_id.clone(),
            user_id: user,
            redirect_uri: query["redirect_uri"].clone(),
            challenge,
            scope,
            issued_at: state.now,
        },
    );
    redirect_with(&[("code", &code)])
}

/// Client authentication: HTTP Basic (confidential client) or `client_id` in the body (PKCE).
/// Returns the client id and whether a correct secret was given.
fn client_auth(
    state: &State,
    form: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Result<(String, bool), Answer> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok());
    if let Some(pair) = basic {
        let (id, secret) = pair.split_once(':').unwrap_or((&pair, ""));
        return match state.clients.get(id) {
            None => Err(Answer::auth_error(
                StatusCode::BAD_REQUEST,
                "invalid_client",
                "Invalid client",
            )),
            Some(client) if client.secret != secret => Err(Answer::auth_error(
                StatusCode::BAD_REQUEST,
                "invalid_client",
                "Invalid client secret",
            )),
            Some(_) => Ok((id.to_string(), true)),
        };
    }
    match form.get("client_id") {
        Some(id) if state.clients.contains_key(id) => Ok((id.clone(), false)),
        _ => Err(Answer::auth_error(
            StatusCode::BAD_REQUEST,
            "invalid_client",
            "Invalid client",
        )),
    }
}

fn token(state: &mut State, form: &HashMap<String, String>, headers: &HeaderMap) -> Answer {
    let (client_id, authenticated) = match client_auth(state, form, headers) {
        Ok(auth) => auth,
        Err(answer) => return answer,
    };
    let lifetime = state.options.access_token_lifetime;
    match form.get("grant_type").map(String::as_str) {
        Some("authorization_code") => {
            let Some(grant) = form.get("code").and_then(|c| state.codes.remove(c)) else {
                return Answer::auth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "Invalid authorization code",
                );
            };
            if grant.client_id != client_id
                || state.now - grant.issued_at > chrono::Duration::minutes(CODE_LIFETIME_MINUTES)
            {
                return Answer::auth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "Invalid authorization code",
                );
            }
            if form.get("redirect_uri") != Some(&grant.redirect_uri) {
                return Answer::auth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "Invalid redirect URI",
                );
            }
            match (&grant.challenge, form.get("code_verifier")) {
                (Some(challenge), Some(verifier)) => {
                    if URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) != *challenge {
                        return Answer::auth_error(
                            StatusCode::BAD_REQUEST,
                            "invalid_grant",
                            "code_verifier was incorrect",
                        );
                    }
                }
                (Some(_), None) => {
                    return Answer::auth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_request",
                        "code_verifier required",
                    );
                }
                (None, _) if !authenticated => {
                    return Answer::auth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_client",
                        "Invalid client",
                    );
                }
                (None, _) => {}
            }
            let access = state.new_token("BQ");
            let refresh = state.new_token("AQ");
            let now = state.now;
            state.access.insert(
                access.clone(),
                AccessGrant {
                    user_id: grant.user_id.clone(),
                    client_id: client_id.clone(),
                    expires_at: now + chrono::Duration::seconds(lifetime),
                },
            );
            state.refresh.insert(
                refresh.clone(),
                RefreshGrant {
                    user_id: grant.user_id,
                    client_id,
                    authorised_at: now,
                    scope: grant.scope.clone(),
                },
            );
            Answer::json(
                StatusCode::OK,
                &json!({"access_token": access, "token_type": "Bearer", "scope": grant.scope,
                        "expires_in": lifetime, "refresh_token": refresh}),
            )
        }
        Some("refresh_token") => {
            let Some(old) = form.get("refresh_token") else {
                return Answer::auth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "refresh_token must be supplied",
                );
            };
            let Some(grant) = state.refresh.get(old) else {
                return Answer::auth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "Invalid refresh token",
                );
            };
            if grant.client_id != client_id {
                return Answer::auth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "Invalid refresh token",
                );
            }
            // Since 2026-07-20 a refresh token ends 6 months after the original authorisation.
            if expired_authorisation(grant.authorised_at, state.now) {
                state.refresh.remove(old);
                return Answer::auth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "Refresh token revoked",
                );
            }
            let (user_id, authorised_at, scope) = (
                grant.user_id.clone(),
                grant.authorised_at,
                grant.scope.clone(),
            );
            state.refreshes += 1;
            let rotate = match state.options.refresh {
                RefreshPolicy::Rotate => true,
                RefreshPolicy::Keep => false,
                RefreshPolicy::Alternate => state.refreshes % 2 == 1,
            };
            let access = state.new_token("BQ");
            let now = state.now;
            state.access.insert(
                access.clone(),
                AccessGrant {
                    user_id: user_id.clone(),
                    client_id: client_id.clone(),
                    expires_at: now + chrono::Duration::seconds(lifetime),
                },
            );
            let mut body = json!({"access_token": access, "token_type": "Bearer", "scope": scope, "expires_in": lifetime});
            if rotate {
                // The old refresh token stops working: a client that does not save the new one is locked out.
                state.refresh.remove(old);
                let new = state.new_token("AQ");
                state.refresh.insert(
                    new.clone(),
                    RefreshGrant {
                        user_id,
                        client_id,
                        authorised_at,
                        scope,
                    },
                );
                body["refresh_token"] = json!(new);
            }
            Answer::json(StatusCode::OK, &body)
        }
        _ => Answer::auth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "grant_type must be authorization_code or refresh_token",
        ),
    }
}

/// Test control, not part of Spotify: `GET /mock/clock` reads the mock clock, `?set=<RFC 3339>` sets it
/// (scripts and the Airflow end-to-end test move time this way).
fn clock(state: &mut State, query: &HashMap<String, String>) -> Answer {
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

fn expired_authorisation(authorised_at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    authorised_at
        .checked_add_months(Months::new(6))
        .is_none_or(|end| now >= end)
}
