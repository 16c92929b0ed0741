//! The listen API against a real ListenBrainz client library (liblistenbrainz, installed from PyPI by
//! scripts/test.sh), and its limits and guards over plain HTTP.

use std::process::Command;

use axum::body::Bytes;
use chrono::Utc;
use dashboard::server::ServerLimits;
use earshot_core::listens::MAX_LISTEN_PAYLOAD_SIZE;
use earshot_core::{Storage, layout};
use earshot_state::listen_tokens;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{client, serve_empty, venv_python as python};

async fn objects(storage: &Storage, prefix: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for key in storage.list(prefix).await.unwrap() {
        let text = String::from_utf8(storage.read_all(&key).await.unwrap().to_vec()).unwrap();
        out.push((key, text));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listenbrainz_client_submits_a_member_s_listens_with_their_token() {
    let (base, dir) = serve_empty("listen_api_client", None, &[], ServerLimits::default()).await;
    let storage = Storage::local(dir.path());
    let now = Utc::now();
    let token = listen_tokens::create(&storage, "dev.p", now).await.unwrap();

    let output = Command::new(python())
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/it/listenbrainz/client.py"
        ))
        .args([&base, &token, &now.timestamp().to_string()])
        .output()
        .expect("running the ListenBrainz client (scripts/test.sh installs liblistenbrainz)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let out: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(out["valid"], "accepted");
    assert_eq!(out["invalid"], "refused");
    for call in ["single", "import", "playing_now"] {
        assert_eq!(out[call], json!({"status": "ok"}), "{call}");
    }
    assert_eq!(out["old"]["status"], 400);
    assert!(
        out["old"]["message"].as_str().unwrap().contains("too low"),
        "{out}"
    );
    assert_eq!(out["bad_token"]["status"], 401, "{out}");

    // Two submissions stored verbatim under the member's raw prefix; the playing-now one is not a play.
    let stored = objects(&storage, &layout::listens_raw_prefix("dev.p")).await;
    assert_eq!(stored.len(), 2, "{stored:?}");
    let holding = |needle: &str| -> Value {
        let (_, text) = stored
            .iter()
            .find(|(_, text)| text.contains(needle))
            .unwrap_or_else(|| panic!("no stored submission holds {needle:?}"));
        serde_json::from_str(text).unwrap()
    };
    let single = holding("Some Resolve");
    assert_eq!(single["listen_type"], "single");
    assert_eq!(
        single["payload"][0]["track_metadata"]["additional_info"]["isrc"], "NO-RKS-22-00010",
        "stored as sent"
    );
    let import = holding("Track 0");
    assert_eq!(import["payload"].as_array().unwrap().len(), 3);
    assert!(
        objects(&storage, "raw/listens/")
            .await
            .iter()
            .all(|(k, _)| k.contains("user=dev.p/"))
    );

    let playing = dashboard::pages::listen_api::now_playing(&storage, "dev.p", Utc::now())
        .await
        .unwrap();
    let playing = playing.expect("now playing");
    assert_eq!(playing.track_name, "Now");
    assert_eq!((playing.until - playing.since).num_seconds(), 200);
    assert!(
        dashboard::pages::listen_api::now_playing(&storage, "dev.p", playing.until)
            .await
            .unwrap()
            .is_none(),
        "it expires"
    );

    // The usual steps carry the listens into the member's answers: convert, upload, build, export,
    // analytics, then the member's page.
    let db = earshot_tests::fresh_database("listen_api_pipeline").await;
    let config = earshot_testkit::fixtures::fixtures_dir().join("group.toml");
    let run = |program: &str, args: &[&str]| {
        earshot_tests::run_binary(program, dir.path(), &db, &config, args);
    };
    run("json-converter", &["listens"]);
    run("data-upload", &["recently-played"]);
    run("create-collections", &["recently-played"]);
    run("gcs-export", &["--snapshot", "20300101T000000Z"]);
    run("analytics", &["--snapshot", "20300101T000000Z"]);
    let plays = db.collection::<mongodb::bson::Document>(earshot_core::mongo::RAW_RECENTLY_PLAYED);
    assert_eq!(
        plays
            .count_documents(mongodb::bson::doc! {"user_id": "dev.p", "source": "listenbrainz"})
            .await
            .unwrap(),
        4,
        "the single and the three imported listens; playing now is not a play"
    );
    let single = plays
        .find_one(mongodb::bson::doc! {"track_name": "Some Resolve"})
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        single.get_str("recording_key").unwrap(),
        "isrc:NORKS2200010"
    );
    assert_eq!(single.get_i64("duration_ms").unwrap(), 402_390);
    // Running the steps again changes nothing.
    run("json-converter", &["listens"]);
    run("data-upload", &["recently-played"]);
    assert_eq!(
        plays
            .count_documents(mongodb::bson::doc! {"user_id": "dev.p"})
            .await
            .unwrap(),
        4
    );
    let stores = earshot_state::Stores {
        storage: storage.clone(),
        db: db.clone(),
        group: earshot_tests::fixture_group_config(),
    };
    let base = crate::common::serve_stores(stores, None).await;
    let page = client()
        .get(format!("{base}/member/dev.p"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("Some Resolve"),
        "the listen is among Dev's tracks"
    );
    assert!(
        html.contains("ListenBrainz scrobbles (4)"),
        "the page says where the plays came from"
    );
    // The recording has no Spotify id: a page of its own, under its ISRC, with no Spotify link.
    // (The template escapes `/` in attributes as `&#x2f;`.)
    let unescaped = html.replace("&#x2f;", "/");
    assert!(
        unescaped.contains("/track/isrc%3ANORKS2200010")
            || unescaped.contains("/track/isrc:NORKS2200010"),
        "linked by its key"
    );
    let track = client()
        .get(format!("{base}/track/isrc:NORKS2200010"))
        .send()
        .await
        .unwrap();
    assert_eq!(track.status(), StatusCode::OK);
    let track = track.text().await.unwrap();
    assert!(
        track.contains("Profound Mysteries II") && !track.contains("Open in Spotify"),
        "{track}"
    );
}

#[tokio::test]
async fn the_api_answers_as_listenbrainz_does_and_holds_to_its_limits_and_the_erase() {
    let (base, dir) = serve_empty("listen_api_limits", None, &[], ServerLimits::default()).await;
    let storage = Storage::local(dir.path());
    let token = listen_tokens::create(&storage, "emi", Utc::now())
        .await
        .unwrap();
    let http = client();
    let submit = |body: Vec<u8>, token: Option<&str>| {
        let mut request = http.post(format!("{base}/1/submit-listens")).body(body);
        if let Some(token) = token {
            request = request.header("Authorization", format!("Token {token}"));
        }
        request.send()
    };
    let listen = |at: i64| {
        serde_json::to_vec(&json!({"listen_type": "single", "payload": [
            {"listened_at": at, "track_metadata": {"artist_name": "A", "track_name": "T"}}
        ]}))
        .unwrap()
    };
    let now = Utc::now().timestamp();

    // No header: 401 with ListenBrainz's error JSON.
    let response = submit(listen(now), None).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], 401);

    // A body past the payload limit: 400, "Payload too large", nothing stored.
    let huge = vec![b' '; MAX_LISTEN_PAYLOAD_SIZE + 1];
    let response = submit(huge, Some(&token)).await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("Payload too large"),
        "{body}"
    );

    // While the member is being erased: 503, and nothing stored.
    storage
        .write(&layout::erasure_key("emi"), Bytes::from_static(b"{}"))
        .await
        .unwrap();
    let response = submit(listen(now), Some(&token)).await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers().contains_key("retry-after"));
    storage.delete(&layout::erasure_key("emi")).await.unwrap();
    assert!(
        storage
            .list(&layout::listens_raw_prefix("emi"))
            .await
            .unwrap()
            .is_empty()
    );

    // Accepted, with the rate limit's headers.
    let response = submit(listen(now), Some(&token)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let remaining: u32 = response.headers()["x-ratelimit-remaining"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(remaining < dashboard::pages::listen_api::PER_TOKEN);
    assert_eq!(
        storage
            .list(&layout::listens_raw_prefix("emi"))
            .await
            .unwrap()
            .len(),
        1
    );

    // One client's 30 requests in 10 s, then 429 with Retry-After.
    let mut refused = None;
    for _ in 0..=dashboard::pages::listen_api::PER_CLIENT {
        let response = http
            .get(format!("{base}/1/validate-token?token={token}"))
            .send()
            .await
            .unwrap();
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            refused = Some(response);
            break;
        }
    }
    let refused = refused.expect("the per-client limit refuses");
    assert!(refused.headers().contains_key("retry-after"));
    assert_eq!(refused.headers()["x-ratelimit-remaining"], "0");
}

/// `GET /1/validate-token` as a client asks it: whether the token is valid, and whose.
async fn validated(base: &str, token: &str) -> Value {
    client()
        .get(format!("{base}/1/validate-token"))
        .header("authorization", format!("Token {token}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_friend_makes_their_listen_token_on_your_data_shown_once() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::local(dir.path());
    let db = earshot_tests::fresh_database("listen_token_your_data").await;
    let (base, mock, _tokens, _key) =
        crate::common::serve_sign_in_on(storage.clone(), db, earshot_tests::fixture_group_config())
            .await;
    let ana = crate::common::signed_in_as(&base, &mock, "ana.mx").await;
    let forged =
        crate::common::post_form(&base, "/me/listen-token", &ana, &[("csrf", "forged")]).await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert!(
        listen_tokens::read(&storage, "ana.mx")
            .await
            .unwrap()
            .is_none()
    );

    let csrf = crate::common::form_token(&base, &ana).await;
    let token_on = |html: &str| -> String {
        html.split("Your new listen token: <code>")
            .nth(1)
            .and_then(|rest| rest.split("</code>").next())
            .expect("the new token on the answer")
            .to_string()
    };
    let made = crate::common::post_form(&base, "/me/listen-token", &ana, &[("csrf", &csrf)]).await;
    assert_eq!(made.status(), StatusCode::OK);
    assert_eq!(made.headers()["cache-control"], "no-store");
    let first = token_on(&made.text().await.unwrap());
    let answer = validated(&base, &first).await;
    assert_eq!(
        (answer["valid"].clone(), answer["user_name"].clone()),
        (json!(true), json!("ana.mx"))
    );
    // Only its hash is kept, and the page never shows it again.
    let stored = listen_tokens::read(&storage, "ana.mx")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.token_sha256, earshot_state::sessions::key_of(&first));
    let again = crate::common::get_with(&base, "/me", &ana)
        .await
        .text()
        .await
        .unwrap();
    assert!(!again.contains(&first) && again.contains("You have a listen token"));
    for (key, bytes) in earshot_tests::files_under(dir.path()) {
        assert!(
            !String::from_utf8_lossy(&bytes).contains(&first),
            "the token is stored nowhere: {key}"
        );
    }

    // A new one replaces it; revoking ends it.
    let second = token_on(
        &crate::common::post_form(&base, "/me/listen-token", &ana, &[("csrf", &csrf)])
            .await
            .text()
            .await
            .unwrap(),
    );
    assert_ne!(first, second);
    assert_eq!(validated(&base, &first).await["valid"], false);
    assert_eq!(validated(&base, &second).await["valid"], true);
    let revoked = crate::common::post_form(
        &base,
        "/me/listen-token",
        &ana,
        &[("csrf", &csrf), ("revoke", "yes")],
    )
    .await;
    assert_eq!(revoked.status(), StatusCode::SEE_OTHER);
    assert_eq!(validated(&base, &second).await["valid"], false);
}
