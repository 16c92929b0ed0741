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

#[tokio::test]
async fn recently_played_follows_spotifys_cursor_rules() {
    let listening = Listening::fixture_group().unwrap();
    let mock = MockSpotify::start(&listening, MockOptions::default())
        .await
        .unwrap();
    let member = listening.member("dev.p").unwrap();
    let times: Vec<DateTime<Utc>> = member
        .plays
        .iter()
        .map(MemberListening::played_at)
        .collect();
    // Stand at the member's 300th play (a play is visible from its `played_at` on).
    let now = times[299];
    mock.set_now(now);
    let visible: Vec<i64> = times
        .iter()
        .filter(|t| **t <= now)
        .map(|t| ms(*t))
        .collect();
    let newest_50: Vec<i64> = visible.iter().rev().take(50).copied().collect();
    let (token, _) = mock.grant("dev.p", DEFAULT_CLIENT_ID, now).unwrap();
    let path = "/v1/me/player/recently-played";

    for bad in ["limit=0", "limit=51", "limit=x", "after=1&before=2"] {
        let response = get(&mock, &token, &format!("{path}?{bad}")).await;
        assert_eq!(response.status(), 400, "{bad}");
        assert_eq!(response.json::<ApiError>().await.unwrap().error.status, 400);
    }

    // Default limit 20, newest first, cursors in unix ms.
    let page_body = get(&mock, &token, path).await.bytes().await.unwrap();
    let page: RecentlyPlayedPage = serde_json::from_slice(&page_body).unwrap();
    assert_eq!(page.limit, 20);
    assert_eq!(page.items.len(), 20);
    let got: Vec<i64> = page.items.iter().map(|p| ms(p.played_at)).collect();
    assert_eq!(got, newest_50[..20]);
    let cursors = page.cursors.clone().unwrap();
    assert_eq!(cursors.after_ms(), Some(newest_50[0]));
    assert_eq!(cursors.before_ms(), Some(newest_50[19]));

    // Following `next` walks back through the reachable plays only: exactly the newest 50.
    let mut walked = got.clone();
    let mut next = page.next.clone();
    while let Some(url) = next {
        let page_body = reqwest::Client::new()
            .get(&url)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let page: RecentlyPlayedPage = serde_json::from_slice(&page_body).unwrap();
        walked.extend(page.items.iter().map(|p| ms(p.played_at)));
        next = page.next;
    }
    assert_eq!(walked, newest_50, "only the newest 50 plays are reachable");

    // `after` is exclusive and returns the newest plays after it.
    let after = newest_50[10];
    let page_body = get(&mock, &token, &format!("{path}?limit=50&after={after}"))
        .await
        .bytes()
        .await
        .unwrap();
    let page: RecentlyPlayedPage = serde_json::from_slice(&page_body).unwrap();
    assert_eq!(
        page.items
            .iter()
            .map(|p| ms(p.played_at))
            .collect::<Vec<_>>(),
        newest_50[..10]
    );

    // Nothing new: empty items, null cursors, null next.
    let page_body = get(
        &mock,
        &token,
        &format!("{path}?limit=50&after={}", newest_50[0]),
    )
    .await
    .bytes()
    .await
    .unwrap();
    let page: RecentlyPlayedPage = serde_json::from_slice(&page_body).unwrap();
    assert!(page.items.is_empty());
    assert_eq!(page.cursors, None);
    assert_eq!(page.next, None);

    // Plays appear as the clock passes them.
    mock.set_now(times[300]);
    let page_body = get(
        &mock,
        &token,
        &format!("{path}?limit=50&after={}", newest_50[0]),
    )
    .await
    .bytes()
    .await
    .unwrap();
    let page: RecentlyPlayedPage = serde_json::from_slice(&page_body).unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(ms(page.items[0].played_at), ms(times[300]));
}

#[tokio::test]
async fn top_items_page_by_offset_in_both_shapes() {
    let listening = Listening::fixture_group().unwrap();
    for shape in [Shape::DevMode, Shape::Full] {
        let mock = MockSpotify::start(
            &listening,
            MockOptions {
                shape,
                ..MockOptions::default()
            },
        )
        .await
        .unwrap();
        let (token, _) = mock.grant("ana.mx", DEFAULT_CLIENT_ID, mock.now()).unwrap();
        let expected = &listening.member("ana.mx").unwrap().top_tracks["long_term"];
        let page_body = get(
            &mock,
            &token,
            "/v1/me/top/tracks?time_range=long_term&limit=20&offset=40",
        )
        .await
        .bytes()
        .await
        .unwrap();
        let page: TopTracksPage = serde_json::from_slice(&page_body).unwrap();
        assert_eq!(page.total as usize, expected.len());
        assert_eq!(page.offset, 40);
        assert_eq!(page.items.len(), expected.len() - 40);
        assert_eq!(page.items[0].id.as_deref(), expected[40]["id"].as_str());
        assert_eq!(page.next, None);
        assert!(page.previous.unwrap().contains("offset=20"));
        let popularity = page.items.iter().filter(|t| t.popularity.is_some()).count();
        match shape {
            Shape::DevMode => assert_eq!(popularity, 0, "development mode serves no popularity"),
            Shape::Full => assert!(
                popularity > 0,
                "full shapes keep popularity where the fixture has it"
            ),
        }
        let response = get(&mock, &token, "/v1/me/top/tracks?time_range=forever").await;
        assert_eq!(response.status(), 400);
        let artists = get(&mock, &token, "/v1/me/top/artists?limit=50")
            .await
            .text()
            .await
            .unwrap();
        assert_eq!(artists.contains("\"followers\""), shape == Shape::Full);
    }
}

#[tokio::test]
async fn scripted_faults_look_like_spotifys() {
    let mock = MockSpotify::start_fixture_group().await.unwrap();
    let (ana, _) = mock.grant("ana.mx", DEFAULT_CLIENT_ID, mock.now()).unwrap();
    let (ben, _) = mock.grant("ben_k", DEFAULT_CLIENT_ID, mock.now()).unwrap();
    let path = "/v1/me/player/recently-played?limit=50";

    mock.push_fault(
        FaultRule::new(
            Endpoint::RecentlyPlayed,
            Fault::RateLimited {
                retry_after: 72_000,
                quota: true,
            },
            1,
        )
        .for_member("ana.mx"),
    );
    // Another member is unaffected by ana's fault.
    assert_eq!(get(&mock, &ben, path).await.status(), 200);
    let limited = get(&mock, &ana, path).await;
    assert_eq!(limited.status(), 429);
    assert_eq!(limited.headers()["retry-after"], "72000");
    let body: ApiError = limited.json().await.unwrap();
    assert_eq!(body.error.reason.as_deref(), Some("QUOTA_EXCEEDED"));
    assert_eq!(
        get(&mock, &ana, path).await.status(),
        200,
        "a fault is spent after its count"
    );

    mock.push_fault(FaultRule::new(
        Endpoint::RecentlyPlayed,
        Fault::Status(503),
        2,
    ));
    for _ in 0..2 {
        let response = get(&mock, &ana, path).await;
        assert_eq!(response.status(), 503);
        assert_eq!(response.json::<ApiError>().await.unwrap().error.status, 503);
    }

    mock.push_fault(FaultRule::new(
        Endpoint::RecentlyPlayed,
        Fault::Truncated,
        1,
    ));
    let truncated = get(&mock, &ana, path).await;
    assert_eq!(truncated.status(), 200);
    let text = truncated.text().await.unwrap();
    assert!(
        serde_json::from_str::<RecentlyPlayedPage>(&text).is_err(),
        "a truncated body is not valid JSON"
    );

    mock.push_fault(FaultRule::new(Endpoint::Me, Fault::ExpiredToken, 1));
    assert_eq!(get(&mock, &ana, "/v1/me").await.status(), 401);

    mock.push_fault(FaultRule::new(
        Endpoint::Me,
        Fault::Slow(Duration::from_millis(300)),
        1,
    ));
    let started = Instant::now();
    assert_eq!(get(&mock, &ana, "/v1/me").await.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(300));

    let log = mock.requests();
    assert_eq!(log.iter().filter(|r| r.status == 429).count(), 1);
    assert!(log.iter().all(|r| r.endpoint != Endpoint::Other));
}

#[tokio::test]
async fn a_development_mode_app_serves_only_its_allowlisted_users() {
    let mock = MockSpotify::start_fixture_group().await.unwrap();
    mock.register_client("small-app", "small-secret", Some(&["ana.mx"]));
    let (ana, _) = mock.grant("ana.mx", "small-app", mock.now()).unwrap();
    let (emi, _) = mock.grant("emi", "small-app", mock.now()).unwrap();
    assert_eq!(get(&mock, &ana, "/v1/me").await.status(), 200);
    let refused = get(&mock, &emi, "/v1/me").await;
    assert_eq!(refused.status(), 403);
    assert_eq!(
        refused.json::<ApiError>().await.unwrap().error.message,
        "User not registered in the Developer Dashboard"
    );
}
