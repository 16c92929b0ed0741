//! A fetch in flight while a member is erased.

use super::*;

/// A fetch held in flight (the mock answers the member's recently played slowly) while the member is
/// erased; the fetch then finishes, and the whole pipeline runs on: no trace of the member anywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_in_flight_during_an_erase_leaves_no_trace_after_the_pipeline() {
    use data_fetcher::fetch::{Fetcher, MemberResult, What};
    use earshot_spotify::api::{App, Budget, Endpoints, Spotify};
    use earshot_testkit::spotify::{
        DEFAULT_CLIENT_ID, Endpoint, Fault, FaultRule, MockOptions, MockSpotify,
    };
    use std::sync::Arc;
    use std::time::Duration;

    let p = pipeline("members_erase_fetch", None).await;
    p.export_and_analyse("20250101T000000Z");
    let track = distinctive_track(&p.db, MEMBER).await;
    // The member connects through the real sign-in against the mock Spotify.
    let listening = earshot_testkit::fixtures::Listening::fixture_group().unwrap();
    let mock = Arc::new(
        MockSpotify::start(&listening, MockOptions::default())
            .await
            .unwrap(),
    );
    let clock = Arc::new(earshot_tests::MockClock(Arc::clone(&mock)));
    let spotify = || {
        let endpoints = Endpoints {
            api: mock.base_url(),
            accounts: mock.base_url(),
        };
        Spotify::new(
            endpoints,
            clock.clone(),
            Budget::new(Duration::from_secs(60)),
        )
        .unwrap()
    };
    let key = earshot_spotify::tokens::TokenKey::from_base64(
        &earshot_spotify::tokens::TokenKey::generate_base64().unwrap(),
    )
    .unwrap();
    let tokens = earshot_spotify::tokens::TokenStore::Storage(p.storage.clone(), key);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let redirect = data_fetcher::terminal_connect::Redirect::Listen(
        listener,
        format!("http://127.0.0.1:{port}/callback"),
    );
    let (tx, rx) = tokio::sync::oneshot::channel::<String>();
    let (auth_spotify, app) = (spotify(), App::new(DEFAULT_CLIENT_ID));
    let connect = data_fetcher::terminal_connect::connect_member(
        &auth_spotify,
        &app,
        &p.group,
        &p.storage,
        &tokens,
        redirect,
        Duration::from_secs(20),
        |url| tx.send(url.to_string()).unwrap(),
        || unreachable!("the listener gets the callback"),
    );
    let browser = async {
        let url = rx.await.unwrap();
        let back = mock.browser_authorize(&url, MEMBER).await.unwrap();
        reqwest::get(back.as_str()).await.unwrap().status().as_u16()
    };
    let (connected, status) = tokio::join!(connect, browser);
    connected.unwrap();
    assert_eq!(status, 200);

    // The fetch starts; the member's recently played answers in 3 s.
    mock.push_fault(
        FaultRule::new(
            Endpoint::RecentlyPlayed,
            Fault::Slow(Duration::from_secs(3)),
            1,
        )
        .for_member(MEMBER),
    );
    let fetcher = Fetcher {
        spotify: spotify(),
        storage: p.storage.clone(),
        tokens,
        group: p.group.clone(),
        concurrency: 2,
    };
    let fetch = tokio::spawn(async move { fetcher.run(What::All, &[]).await.unwrap() });
    tokio::time::sleep(Duration::from_millis(800)).await;
    // Meanwhile the admin takes the member out of the config and erases them.
    std::fs::write(&p.config, group_toml(Some(MEMBER))).unwrap();
    let p = Pipeline {
        group: GroupConfig::load(&p.config).unwrap(),
        ..p
    };
    assert!(
        !fetch.is_finished(),
        "the fetch is still in flight when the erase begins"
    );
    let erased = earshot_rights::erase::erase(&p.stores(), MEMBER)
        .await
        .unwrap();
    assert!(erased.found);
    let report = fetch.await.unwrap();
    let (_, result) = report.members.iter().find(|(m, _)| m == MEMBER).unwrap();
    assert!(matches!(result, MemberResult::Erased), "{report:?}");

    // The pipeline runs on, as the DAG runs it.
    for kind in ["recently-played", "top-tracks", "top-artists"] {
        p.run("json-converter", &[kind]);
    }
    p.run("data-upload", &["all"]);
    p.run("create-collections", &["all"]);
    p.export_and_analyse("20250102T000000Z");
    let traces = find_traces(&p, &[MEMBER, NAME, track.as_str()]).await;
    assert!(traces.is_empty(), "traces left:\n{}", traces.join("\n"));
    // And the next hourly fetch, on the config without them, never asks for them again.
    let before = mock.requests().len();
    let fetcher = Fetcher {
        spotify: spotify(),
        storage: p.storage.clone(),
        tokens: earshot_spotify::tokens::TokenStore::Storage(
            p.storage.clone(),
            earshot_spotify::tokens::TokenKey::from_base64(
                &earshot_spotify::tokens::TokenKey::generate_base64().unwrap(),
            )
            .unwrap(),
        ),
        group: p.group.clone(),
        concurrency: 2,
    };
    let report = fetcher.run(What::All, &[]).await.unwrap();
    assert!(report.members.is_empty(), "{report:?}");
    assert_eq!(mock.requests().len(), before);
}
