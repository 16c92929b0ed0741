//! The listen API, as ListenBrainz clients speak it: `POST /1/submit-listens` and
//! `GET /1/validate-token`, authenticated by a member's listen token (`Authorization: Token <token>`,
//! made by `members token`, [`earshot_state::listen_tokens`]).
//!
//! A submission is checked as ListenBrainz checks it ([`earshot_core::listens`]: the same limits and
//! the same `400` answers, `{"code": 400, "error": …}`), then stored verbatim under the member's raw
//! prefix (`raw/listens/user=<id>/`), as a Spotify page is; the usual steps carry it from there. A
//! `playing_now` listen is not a play: it is kept only as the member's "now playing", until the track's
//! length (or [`NOW_PLAYING_DEFAULT_S`]) has passed.
//!
//! Limits, as ListenBrainz's (brainzutils' `ratelimit`: 50 requests per token and 30 per client
//! address in a 10 s window), answered as it answers them: `429` with `X-RateLimit-Limit`,
//! `X-RateLimit-Remaining`, `X-RateLimit-Reset-In` and `X-RateLimit-Reset` on every answer. A body is
//! read up to [`BODY_LIMIT`], and one over [`MAX_LISTEN_PAYLOAD_SIZE`] is refused. Nothing is stored
//! for a member being erased or who left, and nothing while an erase is in progress (`503` with
//! `Retry-After`).
//!
//! With several groups, each group answers under its base (`/g/<id>/1/…`) and the root answers too
//! (`/1/…`): the token says which group and member a listen belongs to (some clients drop a base URL's
//! path when they add `/1/submit-listens`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use earshot_core::erasure::ErasureGuard;
use earshot_core::layout;
use earshot_core::listens::{self, ListenType};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest as _, Sha256};

use crate::app::AppState;
use crate::throttle::ClientKey;

use earshot_core::listens::MAX_LISTEN_PAYLOAD_SIZE;

/// The most bytes of a submission read: a little past [`MAX_LISTEN_PAYLOAD_SIZE`], so that a body just
/// over it gets ListenBrainz's `400` ("Payload too large"); past this, the server answers `413`.
pub const BODY_LIMIT: usize = MAX_LISTEN_PAYLOAD_SIZE + 64 * 1024;

/// Requests allowed per token in a window.
pub const PER_TOKEN: u32 = 50;
/// Requests allowed per client address in a window.
pub const PER_CLIENT: u32 = 30;
/// The rate limits' window.
pub const WINDOW: Duration = Duration::from_secs(10);
/// The most windows the limiter remembers at once; past it, new clients are refused until old windows
/// end.
pub const MAX_TRACKED: usize = 10_000;
/// How long "now playing" lasts when the client sends no track length.
pub const NOW_PLAYING_DEFAULT_S: i64 = 10 * 60;
/// The longest "now playing" kept, whatever length the client sends.
pub const NOW_PLAYING_MAX_S: i64 = 3 * 60 * 60;

/// What the rate limits count by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Counted {
    Token(String),
    Client(ClientKey),
}

/// The listen API's rate limits: a fixed window per token and per client address.
#[derive(Debug, Default)]
pub struct ListenLimiter {
    windows: Mutex<HashMap<Counted, (Instant, u32)>>,
}

/// One request's place in its window.
#[derive(Debug, Clone, Copy)]
struct Quota {
    limit: u32,
    remaining: u32,
    reset_in: Duration,
    allowed: bool,
}

impl ListenLimiter {
    fn take(&self, key: Counted, limit: u32, now: Instant) -> Quota {
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if windows.len() >= MAX_TRACKED && !windows.contains_key(&key) {
            windows.retain(|_, (started, _)| now.duration_since(*started) < WINDOW);
            if windows.len() >= MAX_TRACKED {
                return Quota {
                    limit,
                    remaining: 0,
                    reset_in: WINDOW,
                    allowed: false,
                };
            }
        }
        let entry = windows.entry(key).or_insert((now, 0));
        if now.duration_since(entry.0) >= WINDOW {
            *entry = (now, 0);
        }
        let allowed = entry.1 < limit;
        if allowed {
            entry.1 += 1;
        }
        Quota {
            limit,
            remaining: limit.saturating_sub(entry.1),
            reset_in: WINDOW.saturating_sub(now.duration_since(entry.0)),
            allowed,
        }
    }
}

/// ListenBrainz's error answer.
fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        axum::Json(json!({"code": status.as_u16(), "error": message.into()})),
    )
        .into_response()
}

fn with_quota(mut response: Response, quota: Quota, now: DateTime<Utc>) -> Response {
    let reset_in = quota.reset_in.as_secs().max(1);
    let headers = response.headers_mut();
    for (name, value) in [
        ("x-ratelimit-limit", quota.limit.to_string()),
        ("x-ratelimit-remaining", quota.remaining.to_string()),
        ("x-ratelimit-reset-in", reset_in.to_string()),
        (
            "x-ratelimit-reset",
            (now.timestamp() + reset_in as i64).to_string(),
        ),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    if !quota.allowed {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(reset_in));
    }
    response
}

/// The token of `Authorization: Token <token>` (any case), or of `?token=` where allowed.
fn token_of(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    let header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("token")
                .then(|| token.trim().to_string())
        });
    header
        .or_else(|| query.map(str::to_string))
        .filter(|t| !t.is_empty() && t.len() <= 256)
}

/// The group and member a token submits for, among `groups`.
async fn holder(
    groups: &[Arc<AppState>],
    token: &str,
) -> anyhow::Result<Option<(Arc<AppState>, String)>> {
    for state in groups {
        let members: Vec<String> = state
            .stores
            .group
            .members
            .iter()
            .map(|m| m.id.clone())
            .collect();
        if let Some(member) =
            earshot_state::listen_tokens::member_of(&state.stores.storage, &members, token).await?
        {
            return Ok(Some((state.clone(), member)));
        }
    }
    Ok(None)
}

/// `?token=` of `validate-token`.
#[derive(Debug, Deserialize)]
pub struct TokenQuery {
    token: Option<String>,
}

/// Every group the root answers for.
#[derive(Debug, Clone)]
pub struct Groups(pub Arc<Vec<Arc<AppState>>>);

/// `POST /1/submit-listens` of one group.
pub async fn submit(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    submit_to(&[state], peer, &headers, &body).await
}

/// `POST /1/submit-listens` at the root of several groups.
pub async fn submit_any(
    State(groups): State<Groups>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    submit_to(&groups.0, peer, &headers, &body).await
}

/// `GET /1/validate-token` of one group.
pub async fn validate_token(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(query): Query<TokenQuery>,
) -> Response {
    validate_in(&[state], peer, &headers, query.token.as_deref()).await
}

/// `GET /1/validate-token` at the root of several groups.
pub async fn validate_token_any(
    State(groups): State<Groups>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(query): Query<TokenQuery>,
) -> Response {
    validate_in(&groups.0, peer, &headers, query.token.as_deref()).await
}

async fn validate_in(
    groups: &[Arc<AppState>],
    peer: SocketAddr,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Response {
    let (now, quota) = match admit_client(groups, peer, headers) {
        Ok(admitted) => admitted,
        Err(refused) => return refused,
    };
    let Some(token) = token_of(headers, query) else {
        return with_quota(
            error(
                StatusCode::BAD_REQUEST,
                "You need to provide an Authorization token.",
            ),
            quota,
            now,
        );
    };
    let answer = match holder(groups, &token).await {
        Ok(Some((_, member))) => json!({
            "code": 200, "message": "Token valid.", "valid": true, "user_name": member,
        }),
        Ok(None) => json!({"code": 200, "message": "Token invalid.", "valid": false}),
        Err(err) => {
            tracing::error!(error = %format!("{err:#}"), "Could not read the listen tokens.");
            return unavailable();
        }
    };
    with_quota(axum::Json(answer).into_response(), quota, now)
}

/// A request's time and its client's place in the per-address limit (counted in the first group's
/// limiter: one server, one count per client), or the answer that refuses it.
fn admit_client(
    groups: &[Arc<AppState>],
    peer: SocketAddr,
    headers: &HeaderMap,
) -> Result<(DateTime<Utc>, Quota), Response> {
    let Some(first) = groups.first() else {
        return Err(error(StatusCode::NOT_FOUND, "Not found."));
    };
    let now = first.clock.now();
    let client = ClientKey::of(first.exposure.client(peer.ip(), headers));
    let quota = first
        .listen_limiter
        .take(Counted::Client(client), PER_CLIENT, Instant::now());
    if !quota.allowed {
        return Err(with_quota(
            error(StatusCode::TOO_MANY_REQUESTS, "Too many requests."),
            quota,
            now,
        ));
    }
    Ok((now, quota))
}

fn unavailable() -> Response {
    let mut response = error(
        StatusCode::SERVICE_UNAVAILABLE,
        "Cannot record listens at this time.",
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("30"));
    response
}

async fn submit_to(
    groups: &[Arc<AppState>],
    peer: SocketAddr,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let (now, by_client) = match admit_client(groups, peer, headers) {
        Ok(admitted) => admitted,
        Err(refused) => return refused,
    };
    let Some(token) = token_of(headers, None) else {
        return with_quota(
            error(
                StatusCode::UNAUTHORIZED,
                "You need to provide an Authorization header.",
            ),
            by_client,
            now,
        );
    };
    let (state, member) = match holder(groups, &token).await {
        Ok(Some(found)) => found,
        Ok(None) => {
            return with_quota(
                error(StatusCode::UNAUTHORIZED, "Invalid authorization token."),
                by_client,
                now,
            );
        }
        Err(err) => {
            tracing::error!(error = %format!("{err:#}"), "Could not read the listen tokens.");
            return unavailable();
        }
    };
    let quota = state.listen_limiter.take(
        Counted::Token(earshot_state::sessions::key_of(&token)),
        PER_TOKEN,
        Instant::now(),
    );
    if !quota.allowed {
        return with_quota(
            error(StatusCode::TOO_MANY_REQUESTS, "Too many requests."),
            quota,
            now,
        );
    }
    let submission = match listens::parse_submission(body, now.timestamp()) {
        Ok(submission) => submission,
        Err(refused) => {
            return with_quota(error(StatusCode::BAD_REQUEST, refused.0), quota, now);
        }
    };
    let stored = match submission.listen_type {
        ListenType::PlayingNow => {
            store_now_playing(&state, &member, &submission.listens[0], now).await
        }
        ListenType::Single | ListenType::Import => {
            store_submission(&state, &member, body, now).await
        }
    };
    match stored {
        Ok(()) => with_quota(
            axum::Json(json!({"status": "ok"})).into_response(),
            quota,
            now,
        ),
        Err(err) => {
            tracing::warn!(member = %member, error = %format!("{err:#}"), "A listen submission was not stored.");
            with_quota(unavailable(), quota, now)
        }
    }
}

/// Store a submission verbatim, unless the member is being erased (the erase guard, with their token
/// as the witness: the erase removes it, the API never writes it).
async fn store_submission(
    state: &AppState,
    member: &str,
    body: &[u8],
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let storage = &state.stores.storage;
    let guard = ErasureGuard::begin(storage, "the listen API").await?;
    let witness = layout::listen_token_key(member);
    if guard.member_erased(member, &witness).await? {
        anyhow::bail!("`{member}` is being erased or left the group");
    }
    let digest = earshot_state::sessions::hex(&Sha256::digest(body)[..8]);
    let key = layout::listen_submission_key(member, now, &digest);
    storage.write(&key, Bytes::copy_from_slice(body)).await?;
    if guard.being_erased(member).await? {
        storage.delete(&key).await?;
        anyhow::bail!("`{member}` was erased while their listens were stored: withdrawn");
    }
    Ok(())
}

/// What a member's client says is playing now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NowPlaying {
    /// The member.
    pub member: String,
    /// The credited artist, as sent.
    pub artist_name: String,
    /// The title, as sent.
    pub track_name: String,
    /// The release, when sent.
    pub release_name: Option<String>,
    /// When it was reported.
    pub since: DateTime<Utc>,
    /// When it stops being "now".
    pub until: DateTime<Utc>,
}

async fn store_now_playing(
    state: &AppState,
    member: &str,
    listen: &listens::Listen,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let storage = &state.stores.storage;
    let guard = ErasureGuard::begin(storage, "the listen API").await?;
    if guard
        .member_erased(member, &layout::listen_token_key(member))
        .await?
    {
        anyhow::bail!("`{member}` is being erased or left the group");
    }
    let lasts = listen
        .duration_ms
        .map_or(NOW_PLAYING_DEFAULT_S, |ms| (ms / 1000) as i64)
        .clamp(1, NOW_PLAYING_MAX_S);
    let playing = NowPlaying {
        member: member.to_string(),
        artist_name: listen.artist_name.clone(),
        track_name: listen.track_name.clone(),
        release_name: listen.release_name.clone(),
        since: now,
        until: now + chrono::Duration::seconds(lasts),
    };
    let key = layout::now_playing_key(member);
    storage
        .write(&key, Bytes::from(serde_json::to_vec(&playing)?))
        .await?;
    if guard.being_erased(member).await? {
        storage.delete(&key).await?;
        anyhow::bail!("`{member}` was erased while their now playing was stored: withdrawn");
    }
    Ok(())
}

/// What `member` is playing now, if their client said so and it has not expired.
pub async fn now_playing(
    storage: &earshot_core::Storage,
    member: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<Option<NowPlaying>> {
    match storage.read_all(&layout::now_playing_key(member)).await {
        Ok(bytes) => {
            let playing: NowPlaying = serde_json::from_slice(&bytes)?;
            Ok((playing.until > now).then_some(playing))
        }
        Err(earshot_core::storage::StorageError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limiter_counts_a_window_then_starts_a_new_one() {
        let limiter = ListenLimiter::default();
        let start = Instant::now();
        let key = || Counted::Token("t".into());
        for i in 0..PER_TOKEN {
            let quota = limiter.take(key(), PER_TOKEN, start);
            assert!(quota.allowed, "request {i}");
            assert_eq!(quota.remaining, PER_TOKEN - i - 1);
        }
        let refused = limiter.take(key(), PER_TOKEN, start + Duration::from_secs(1));
        assert!(!refused.allowed);
        assert_eq!(refused.remaining, 0);
        assert_eq!(refused.reset_in, WINDOW - Duration::from_secs(1));
        assert!(limiter.take(key(), PER_TOKEN, start + WINDOW).allowed);
    }

    #[test]
    fn a_token_is_read_from_the_header_in_any_case_or_the_query() {
        let mut headers = HeaderMap::new();
        assert_eq!(token_of(&headers, None), None);
        assert_eq!(token_of(&headers, Some("abc")).as_deref(), Some("abc"));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("token  abc "),
        );
        assert_eq!(token_of(&headers, None).as_deref(), Some("abc"));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer abc"),
        );
        assert_eq!(token_of(&headers, None), None);
        let long = format!("Token {}", "x".repeat(300));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_str(&long).unwrap());
        assert_eq!(token_of(&headers, None), None, "an overlong token is none");
    }
}
