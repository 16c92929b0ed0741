//! The data endpoints: cursors, top items, faults, and the development-mode allowlist.

use super::*;

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
