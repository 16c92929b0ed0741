//! Sign in with Spotify: a listed friend is connected, anyone else refused.

use super::*;

/// A dashboard with a group password and "Sign in with Spotify" against the mock Spotify, on an empty
/// database, for `group`: its base URL, the mock, the storage, the token store and the database.
async fn serve_sign_in(
    test: &str,
    group: earshot_core::GroupConfig,
) -> (
    String,
    std::sync::Arc<earshot_testkit::spotify::MockSpotify>,
    earshot_core::Storage,
    earshot_spotify::tokens::TokenStore,
    mongodb::Database,
    tempfile::TempDir,
) {
    let dir = tempfile::tempdir().unwrap();
    let storage = earshot_core::Storage::local(dir.path());
    let db = earshot_tests::fresh_database(test).await;
    let (base, mock, tokens, _key) =
        common::serve_sign_in_on(storage.clone(), db.clone(), group).await;
    (base, mock, storage, tokens, db, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listed_friend_signs_in_with_spotify_and_is_connected() {
    let group = earshot_tests::fixture_group_config();
    let (base, mock, storage, tokens, db, _dir) = serve_sign_in("dashboard_spotify", group).await;
    let (status, _, body) = get(&base, "/login").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body.contains("href=\"&#x2f;connect\">Sign in with Spotify"),
        "{body}"
    );
    assert!(tokens.load("ana.mx").await.unwrap().is_none());

    let back = common::spotify_consent(&base, &mock, "ana.mx").await;
    assert!(
        back.starts_with(&format!("{base}/connect/callback?")),
        "{back}"
    );
    let landed = client().get(&back).send().await.unwrap();
    assert_eq!(landed.status(), StatusCode::SEE_OTHER);
    assert_eq!(landed.headers()[LOCATION], "/me", "to their own page");
    let session = common::session_of(&landed).expect("a session of the friend's own");
    let page = common::get_with(&base, "/status", &session).await;
    assert_eq!(page.status(), StatusCode::OK, "signed in");
    // The grant is where `data-fetcher` reads it, and it opens the friend's listening.
    let grant = tokens
        .load("ana.mx")
        .await
        .unwrap()
        .expect("the grant is stored");
    let state = earshot_state::fetch_state::load(&storage, "ana.mx")
        .await
        .unwrap()
        .expect("the member's fetch state");
    assert_eq!(state.client_id, earshot_testkit::spotify::DEFAULT_CLIENT_ID);
    let played = reqwest::Client::new()
        .get(format!(
            "{}/v1/me/player/recently-played?limit=50",
            mock.base_url()
        ))
        .bearer_auth(&grant.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(played.status(), StatusCode::OK);
    // Six months on, Spotify has ended the authorisation: the friend reconnects themselves
    // (`/connect?as=<id>`, the "Reconnect" link of their page), and the grant is new.
    let mut ended = state.clone();
    ended.authorised_at = mock.now() - chrono::Duration::days(190);
    ended.needs_reauth = Some("invalid_grant: Refresh token revoked".into());
    earshot_state::fetch_state::save(&storage, &ended)
        .await
        .unwrap();
    let start = client()
        .get(format!("{base}/connect?as=ana.mx"))
        .send()
        .await
        .unwrap();
    assert_eq!(start.status(), StatusCode::SEE_OTHER);
    let again = mock
        .browser_authorize(start.headers()[LOCATION].to_str().unwrap(), "ana.mx")
        .await
        .unwrap();
    assert_eq!(
        client().get(again.as_str()).send().await.unwrap().status(),
        StatusCode::SEE_OTHER
    );
    let renewed = earshot_state::fetch_state::load(&storage, "ana.mx")
        .await
        .unwrap()
        .unwrap();
    assert!(renewed.needs_reauth.is_none(), "{renewed:?}");
    assert!(renewed.authorised_at > ended.authorised_at + chrono::Duration::days(180));
    let regrant = tokens.load("ana.mx").await.unwrap().unwrap();
    assert_ne!(regrant.refresh_token, grant.refresh_token, "a new grant");
    // The session belongs to the member, and its id is stored only as a hash.
    let sessions = earshot_state::sessions::SessionStore::new(&db, None);
    assert_eq!(
        sessions.end_member("ana.mx").await.unwrap(),
        2,
        "both sign-ins"
    );
    let page = common::get_with(&base, "/status", &session).await;
    assert_eq!(
        page.status(),
        StatusCode::SEE_OTHER,
        "ended with the member's sessions"
    );
    // The same callback again (a replayed `state`) is refused and opens nothing.
    let replayed = client().get(&back).send().await.unwrap();
    assert_eq!(replayed.status(), StatusCode::BAD_REQUEST);
    assert!(replayed.headers().get(SET_COOKIE).is_none());
    // So is a made-up state, and one that has waited too long.
    let forged = back.replace("state=", "state=x");
    assert_eq!(
        client().get(&forged).send().await.unwrap().status(),
        StatusCode::BAD_REQUEST
    );
    let late = common::spotify_consent(&base, &mock, "ana.mx").await;
    db.collection::<mongodb::bson::Document>(earshot_core::mongo::DASHBOARD_SIGN_INS)
        .update_many(
            mongodb::bson::doc! {},
            mongodb::bson::doc! {"$set": {"expires_at": mongodb::bson::DateTime::from_millis(0)}},
        )
        .await
        .unwrap();
    let expired = client().get(&late).send().await.unwrap();
    assert_eq!(expired.status(), StatusCode::BAD_REQUEST);
    assert!(expired.headers().get(SET_COOKIE).is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_the_group_does_not_list_is_refused_and_nothing_is_stored() {
    let mut group = earshot_tests::fixture_group_config();
    group.members.retain(|m| m.id != "ben_k");
    let (base, mock, storage, tokens, _db, _dir) =
        serve_sign_in("dashboard_spotify_no", group).await;
    let back = common::spotify_consent(&base, &mock, "ben_k").await;
    let refused = client().get(&back).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(refused.headers().get(SET_COOKIE).is_none());
    let body = refused.text().await.unwrap();
    assert!(body.contains("not one of the group"), "{body}");
    assert!(tokens.load("ben_k").await.unwrap().is_none());
    assert!(
        earshot_state::fetch_state::load(&storage, "ben_k")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        storage.list("").await.unwrap().is_empty(),
        "nothing stored at all"
    );
}
