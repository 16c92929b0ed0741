//! The accounts service: `/authorize` (scopes, loopback or https redirects) and `/api/token`
//! (PKCE or a client secret, codes that expire, refresh tokens that end 6 months after authorisation).

use std::collections::HashMap;

use axum::http::{HeaderMap, StatusCode, header};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, Months, Utc};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::{AccessGrant, CodeGrant, RefreshGrant, RefreshPolicy, State};

use super::*;

/// An authorization code is good for this long.
pub(super) const CODE_LIFETIME_MINUTES: i64 = 10;
pub(super) const KNOWN_SCOPES: &[&str] = &[
    "user-read-recently-played",
    "user-top-read",
    "user-read-private",
    "user-read-email",
    "user-library-read",
    "playlist-read-private",
];

pub(super) fn is_loopback_redirect(uri: &url::Url) -> bool {
    uri.scheme() == "http" && matches!(uri.host(), Some(url::Host::Ipv4(ip)) if ip.is_loopback())
        || uri.scheme() == "http"
            && matches!(uri.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback())
}

pub(super) fn authorize(state: &mut State, query: &HashMap<String, String>) -> Answer {
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
pub(super) fn client_auth(
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

pub(super) fn token(
    state: &mut State,
    form: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Answer {
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

pub(super) fn expired_authorisation(authorised_at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    authorised_at
        .checked_add_months(Months::new(6))
        .is_none_or(|end| now >= end)
}
