//! The mock Spotify, driven over real HTTP the way Spotify's clients drive Spotify: it must speak the
//! real formats, status codes and headers, or tests built on it prove nothing.

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use earshot_core::spotify::{
    ApiError, AuthError, PrivateUser, RecentlyPlayedPage, TokenResponse, TopTracksPage,
};
use earshot_testkit::fixtures::{Listening, MemberListening};
use earshot_testkit::spotify::{
    DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, Endpoint, Fault, FaultRule, MockOptions, MockSpotify,
    Shape,
};
use sha2::{Digest, Sha256};

#[path = "mock_spotify/data.rs"]
mod data;

const VERIFIER: &str = "a-pkce-verifier-of-at-least-43-characters-0123456789abcdef";

fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn authorize_url(mock: &MockSpotify, redirect: &str, state: &str) -> String {
    let mut url = url::Url::parse(&format!("{}/authorize", mock.base_url())).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", DEFAULT_CLIENT_ID)
        .append_pair("response_type", "code")
        .append_pair("redirect_uri", redirect)
        .append_pair("state", state)
        .append_pair("scope", "user-read-recently-played user-top-read")
        .append_pair("code_challenge_method", "S256")
        .append_pair("code_challenge", &challenge(VERIFIER));
    url.to_string()
}

async fn exchange(
    mock: &MockSpotify,
    code: &str,
    redirect: &str,
    verifier: &str,
) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/api/token", mock.base_url()))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect),
            ("client_id", DEFAULT_CLIENT_ID),
            ("code_verifier", verifier),
        ])
        .send()
        .await
        .unwrap()
}

async fn refresh(mock: &MockSpotify, refresh_token: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/api/token", mock.base_url()))
        .basic_auth(DEFAULT_CLIENT_ID, Some(DEFAULT_CLIENT_SECRET))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ])
        .send()
        .await
        .unwrap()
}

async fn get(mock: &MockSpotify, token: &str, path: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(format!("{}{path}", mock.base_url()))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

fn ms(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

#[tokio::test]
async fn authorization_code_with_pkce_connects_a_member() {
    let mock = MockSpotify::start_fixture_group().await.unwrap();
    let redirect = "http://127.0.0.1:43123/callback";
    let back = mock
        .browser_authorize(&authorize_url(&mock, redirect, "st4te"), "ben_k")
        .await
        .unwrap();
    assert!(back.as_str().starts_with(redirect), "{back}");
    let pairs: std::collections::HashMap<_, _> = back.query_pairs().into_owned().collect();
    assert_eq!(pairs["state"], "st4te");
    let code = &pairs["code"];

    let response = exchange(&mock, code, redirect, VERIFIER).await;
    assert_eq!(response.status(), 200);
    let token: TokenResponse = response.json().await.unwrap();
    assert_eq!(token.token_type, "Bearer");
    assert_eq!(token.expires_in, 3600);
    assert_eq!(
        token.scope.as_deref(),
        Some("user-read-recently-played user-top-read")
    );
    assert!(token.refresh_token.is_some());

    let me_body = get(&mock, &token.access_token, "/v1/me")
        .await
        .bytes()
        .await
        .unwrap();

    let me: PrivateUser = serde_json::from_slice(&me_body).unwrap();
    assert_eq!(me.id, "ben_k");
    assert_eq!(me.display_name.as_deref(), Some("Ben"));
    assert_eq!(
        (me.email, me.country, me.product),
        (None, None, None),
        "removed from /me in 2026"
    );
    // A trailing slash reaches the same endpoint, as on Spotify: `/v1/me/` and the data endpoints.
    let slashed_body = get(&mock, &token.access_token, "/v1/me/")
        .await
        .bytes()
        .await
        .unwrap();
    let slashed: PrivateUser = serde_json::from_slice(&slashed_body).unwrap();
    assert_eq!(slashed.id, "ben_k");
    let page_body = get(
        &mock,
        &token.access_token,
        "/v1/me/player/recently-played/?limit=5",
    )
    .await
    .bytes()
    .await
    .unwrap();
    let page: RecentlyPlayedPage = serde_json::from_slice(&page_body).unwrap();
    assert_eq!(page.items.len(), 5);
    assert_eq!(
        get(&mock, &token.access_token, "/v1/me/top/tracks/")
            .await
            .status(),
        200
    );

    // A code works once.
    let again = exchange(&mock, code, redirect, VERIFIER).await;
    assert_eq!(again.status(), 400);
    assert_eq!(
        again.json::<AuthError>().await.unwrap().error,
        "invalid_grant"
    );
}

#[tokio::test]
async fn a_wrong_pkce_verifier_is_refused() {
    let mock = MockSpotify::start_fixture_group().await.unwrap();
    let redirect = "http://127.0.0.1:43124/callback";
    let back = mock
        .browser_authorize(&authorize_url(&mock, redirect, "s"), "ana.mx")
        .await
        .unwrap();
    let code = back
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let response = exchange(
        &mock,
        &code,
        redirect,
        "some-other-verifier-of-enough-length-000000000",
    )
    .await;
    assert_eq!(response.status(), 400);
    let error: AuthError = response.json().await.unwrap();
    assert_eq!(error.error, "invalid_grant");
    assert_eq!(
        error.error_description.as_deref(),
        Some("code_verifier was incorrect")
    );
}

#[tokio::test]
async fn redirects_must_be_https_or_a_loopback_ip_literal() {
    let mock = MockSpotify::start_fixture_group().await.unwrap();
    for refused in [
        "http://localhost:8080/callback",
        "http://example.com/callback",
    ] {
        let err = mock
            .browser_authorize(&authorize_url(&mock, refused, "s"), "ana.mx")
            .await
            .unwrap_err();
        assert!(err.to_string().contains("400"), "{refused}: {err}");
    }
    for accepted in ["http://[::1]:9/cb", "https://earshot.example/callback"] {
        let back = mock
            .browser_authorize(&authorize_url(&mock, accepted, "s"), "ana.mx")
            .await
            .unwrap();
        assert!(
            back.query_pairs().any(|(k, _)| k == "code"),
            "{accepted}: {back}"
        );
    }
    mock.deny_next_authorization();
    let back = mock
        .browser_authorize(
            &authorize_url(&mock, "http://127.0.0.1:1/cb", "keep-me"),
            "ana.mx",
        )
        .await
        .unwrap();
    let pairs: std::collections::HashMap<_, _> = back.query_pairs().into_owned().collect();
    assert_eq!(
        pairs.get("error").map(String::as_str),
        Some("access_denied")
    );
    assert_eq!(pairs.get("state").map(String::as_str), Some("keep-me"));
    assert!(!pairs.contains_key("code"));
}

#[tokio::test]
async fn refresh_rotates_then_omits_and_a_rotated_token_stops_working() {
    let mock = MockSpotify::start_fixture_group().await.unwrap();
    let (_, first) = mock
        .grant("chloe-r", DEFAULT_CLIENT_ID, mock.now())
        .unwrap();
    let rotated: TokenResponse = refresh(&mock, &first).await.json().await.unwrap();
    let second = rotated.refresh_token.expect("the first refresh rotates");
    assert_ne!(second, first);
    let stale = refresh(&mock, &first).await;
    assert_eq!(stale.status(), 400);
    assert_eq!(
        stale.json::<AuthError>().await.unwrap().error,
        "invalid_grant"
    );
    let kept: TokenResponse = refresh(&mock, &second).await.json().await.unwrap();
    assert_eq!(
        kept.refresh_token, None,
        "the next refresh omits the refresh token"
    );
    let me = get(&mock, &kept.access_token, "/v1/me").await;
    assert_eq!(me.status(), 200);
    assert_eq!(
        refresh(&mock, &second).await.status(),
        200,
        "an omitted rotation keeps the old token valid"
    );
}

#[tokio::test]
async fn refresh_tokens_end_six_months_after_the_original_authorisation() {
    let mock = MockSpotify::start_fixture_group().await.unwrap();
    let now = mock.now();
    let (_, recent) = mock
        .grant(
            "dev.p",
            DEFAULT_CLIENT_ID,
            now - chrono::Duration::days(170),
        )
        .unwrap();
    assert_eq!(refresh(&mock, &recent).await.status(), 200);
    let (_, old) = mock
        .grant(
            "dev.p",
            DEFAULT_CLIENT_ID,
            now - chrono::Duration::days(185),
        )
        .unwrap();
    let response = refresh(&mock, &old).await;
    assert_eq!(response.status(), 400);
    assert_eq!(
        response.json::<AuthError>().await.unwrap().error,
        "invalid_grant"
    );
}

#[tokio::test]
async fn access_tokens_expire_by_the_mock_clock() {
    let mock = MockSpotify::start_fixture_group().await.unwrap();
    let (access, _) = mock.grant("emi", DEFAULT_CLIENT_ID, mock.now()).unwrap();
    assert_eq!(get(&mock, &access, "/v1/me").await.status(), 200);
    mock.advance(chrono::Duration::seconds(3600));
    let response = get(&mock, &access, "/v1/me").await;
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.json::<ApiError>().await.unwrap().error.message,
        "The access token expired"
    );
    assert_eq!(get(&mock, "not-a-token", "/v1/me").await.status(), 401);
}
