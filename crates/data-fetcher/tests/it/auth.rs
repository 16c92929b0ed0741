//! `data-fetcher auth` against the mock Spotify, driven like a browser.

use crate::common;

use common::Harness;
use earshot_state::fetch_state;
use earshot_testkit::fixtures::{GeneratorConfig, generate};
use earshot_testkit::spotify::{DEFAULT_CLIENT_ID, MockOptions};

/// No state of any member in storage: a refused sign-in leaves nothing.
async fn assert_nothing_stored(h: &Harness) {
    assert!(
        h.storage
            .list(earshot_core::layout::STATE)
            .await
            .unwrap()
            .is_empty(),
        "nothing stored"
    );
}

#[tokio::test]
async fn a_member_connects_and_tokens_are_stored_encrypted() {
    let h = Harness::new().await;
    let connected = h.connect("ana.mx").await;
    assert_eq!(connected.member, "ana.mx");
    assert_eq!(connected.display_name, "Ana", "the group config's name");
    assert_eq!(connected.authorised_at, h.mock.now());
    assert_eq!(connected.client_id, DEFAULT_CLIENT_ID);

    let tokens = h
        .store
        .load("ana.mx")
        .await
        .unwrap()
        .expect("tokens stored");
    let record =
        std::fs::read_to_string(h.dir.path().join(earshot_core::layout::token_key("ana.mx")))
            .unwrap();
    assert!(
        !record.contains(&tokens.access_token) && !record.contains(&tokens.refresh_token),
        "no token in clear"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(h.dir.path().join(earshot_core::layout::token_key("ana.mx")))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(
        fetch_state::load(&h.storage, "ana.mx")
            .await
            .unwrap()
            .unwrap(),
        connected
    );
    // The scopes asked for, and nothing more.
    assert_eq!(tokens.scope, "user-read-recently-played user-top-read");
}

#[tokio::test]
async fn a_callback_with_a_wrong_or_missing_state_is_refused_and_nothing_is_stored() {
    let h = Harness::new().await;
    let wrong = h
        .connect_with("ben_k", DEFAULT_CLIENT_ID, |mut url| {
            let pairs: Vec<(String, String)> = url
                .query_pairs()
                .into_owned()
                .map(|(k, v)| {
                    if k == "state" {
                        (k, "forged".into())
                    } else {
                        (k, v)
                    }
                })
                .collect();
            url.query_pairs_mut().clear().extend_pairs(pairs);
            url
        })
        .await
        .unwrap_err()
        .to_string();
    assert!(
        wrong.contains("state") && wrong.contains("nothing stored"),
        "{wrong}"
    );
    let missing = h
        .connect_with("ben_k", DEFAULT_CLIENT_ID, |mut url| {
            let pairs: Vec<(String, String)> = url
                .query_pairs()
                .into_owned()
                .filter(|(k, _)| k != "state")
                .collect();
            url.query_pairs_mut().clear().extend_pairs(pairs);
            url
        })
        .await
        .unwrap_err()
        .to_string();
    assert!(missing.contains("no `state`"), "{missing}");
    assert_nothing_stored(&h).await;
}

#[tokio::test]
async fn an_account_the_group_config_does_not_list_is_refused_and_nothing_is_stored() {
    let mut h = Harness::new().await;
    h.group.members.retain(|m| m.id != "ben_k");
    let err = h
        .connect_with("ben_k", DEFAULT_CLIENT_ID, |u| u)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`ben_k`")
            && err.contains("[[members]]")
            && err.contains("nothing was stored"),
        "{err}"
    );
    assert!(
        fetch_state::load(&h.storage, "ben_k")
            .await
            .unwrap()
            .is_none()
    );
    assert!(h.store.load("ben_k").await.unwrap().is_none(), "no tokens");
    assert_nothing_stored(&h).await;
}

#[tokio::test]
async fn a_sixth_member_of_a_development_mode_app_is_refused() {
    let listening = generate(&GeneratorConfig::synthetic(6, 2, 8));
    let h = Harness::with(listening, MockOptions::default()).await;
    let ids: Vec<String> = h
        .listening
        .members
        .iter()
        .map(|m| m.id().to_string())
        .collect();
    let everyone: Vec<&str> = ids.iter().map(String::as_str).collect();
    h.mock
        .register_client("group-app", "group-secret", Some(&everyone));
    for id in &ids[..5] {
        h.connect_with(id, "group-app", |u| u).await.unwrap();
    }
    let err = h
        .connect_with(&ids[5], "group-app", |u| u)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("at most 5") && err.contains(&ids[5]) && err.contains("[[apps]]"),
        "{err}"
    );
    assert!(
        fetch_state::load(&h.storage, &ids[5])
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        h.store.load(&ids[5]).await.unwrap().is_none(),
        "no tokens kept for the refused member"
    );
    // Re-connecting one of the five is fine.
    h.connect_with(&ids[0], "group-app", |u| u).await.unwrap();
}

#[tokio::test]
async fn the_mongodb_token_store_round_trips_encrypted() {
    let server = earshot_testkit::mongo_server::MongoServer::shared();
    let db = earshot_core::mongo::connect(server.uri(), &server.database_name("tokens"))
        .await
        .unwrap();
    let h = Harness::new().await;
    let store = earshot_spotify::tokens::TokenStore::Mongo(db.clone(), h.key.clone());
    let tokens = earshot_spotify::tokens::Tokens {
        access_token: "BQ-access".into(),
        expires_at: chrono::Utc::now(),
        refresh_token: "AQ-refresh".into(),
        client_id: "c".into(),
        scope: "user-top-read".into(),
    };
    store.save("emi", &tokens).await.unwrap();
    assert_eq!(store.load("emi").await.unwrap(), Some(tokens));
    let raw = db
        .collection::<mongodb::bson::Document>(earshot_core::mongo::FETCHER_TOKENS)
        .find_one(mongodb::bson::doc! {"_id": "emi"})
        .await
        .unwrap()
        .unwrap();
    assert!(!raw.to_string().contains("BQ-access") && !raw.to_string().contains("AQ-refresh"));
    assert_eq!(store.load("nobody").await.unwrap(), None);
}
