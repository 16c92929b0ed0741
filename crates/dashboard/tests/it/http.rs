//! The dashboard over HTTP: every page's status code and headers, escaping, the recap's answers, and the
//! group password (login, CSRF, wrong passwords, the rate limit, sessions).

use crate::common;

use common::{PERIOD, SNAPSHOT, client, hostile_track, login_form, serve};
use dashboard::CONTENT_SECURITY_POLICY;
use earshot_testkit::fixtures::fact;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_SECURITY_POLICY as CSP, LOCATION, RETRY_AFTER, SET_COOKIE};

async fn get(base: &str, path: &str) -> (StatusCode, reqwest::header::HeaderMap, String) {
    let response = client().get(format!("{base}{path}")).send().await.unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    (status, headers, response.text().await.unwrap())
}

#[tokio::test]
async fn pages_answer_with_the_right_status_headers_and_escaping() {
    let served = serve("dashboard_http", None).await;
    let base = served.base.as_str();
    let hostile = hostile_track(&served.db).await;
    let ok_pages = [
        "/".to_string(),
        format!("/?period={PERIOD}"),
        "/member/ana.mx".into(),
        format!("/member/emi?period={PERIOD}"),
        "/pair/ana.mx/ben_k".into(),
        format!("/track/{hostile}"),
        "/artist/QMypDlT7lOVaHS0dG1BoEK".into(),
        format!("/recap?period={PERIOD}"),
        "/status".into(),
    ];
    for path in &ok_pages {
        let (status, headers, body) = get(base, path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        assert_eq!(headers[CSP], CONTENT_SECURITY_POLICY, "{path}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert!(
            headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "{path}"
        );
        assert!(
            !body.contains("<script"),
            "{path}: no script, and no unescaped name"
        );
        assert!(!body.contains(" style="), "{path}: no inline style");
        // Each page says what it shows: the status its heading, a period page its period selected,
        // every other page the run it reads.
        let shows = if path == "/status" {
            "<h1>Status</h1>".to_string()
        } else if path.contains("period=") {
            format!("<option value=\"{PERIOD}\" selected>")
        } else {
            SNAPSHOT.to_string()
        };
        assert!(body.contains(&shows), "{path} does not show `{shows}`");
    }
    // The hostile name is text on its track page and in Ana's pages.
    let (_, _, track) = get(base, &format!("/track/{hostile}")).await;
    // The page names it by artist and cleaned name (`… - <script>alert`, the converter's
    // artist_song_name): escaped, it is text.
    assert!(
        track.contains("<h1>Kōji &amp; The Waves - &lt;script&gt;alert</h1>"),
        "{track}"
    );
    // Names with emoji and accents arrive as they are (the browser draws them).
    let (_, _, group) = get(base, "/").await;
    assert!(group.contains("Emi 🎧") && group.contains("Chloé"));
    assert!(group.contains("<svg"), "charts are inline SVG");
    assert!(group.contains("Taste match"));

    for (path, status) in [
        ("/member/nobody", StatusCode::NOT_FOUND),
        ("/pair/ana.mx/nobody", StatusCode::NOT_FOUND),
        ("/pair/ana.mx/ana.mx", StatusCode::NOT_FOUND),
        ("/track/no-such-track", StatusCode::NOT_FOUND),
        ("/artist/no-such-artist", StatusCode::NOT_FOUND),
        ("/no/such/page", StatusCode::NOT_FOUND),
        ("/?period=2024-13", StatusCode::BAD_REQUEST),
        (
            "/member/ana.mx?period=last-tuesday",
            StatusCode::BAD_REQUEST,
        ),
        ("/recap?period=20244", StatusCode::BAD_REQUEST),
        ("/?period=2023", StatusCode::NOT_FOUND),
        ("/recap?period=2024-09", StatusCode::NOT_FOUND),
    ] {
        let (got, headers, body) = get(base, path).await;
        assert_eq!(got, status, "{path}: {body}");
        assert_eq!(headers[CSP], CONTENT_SECURITY_POLICY, "{path}");
        assert!(body.contains("<h1>"), "{path}: an error page for people");
    }
    let (_, _, bad) = get(base, "/?period=2024-13").await;
    assert!(bad.contains("`2024-13` is not a period"), "{bad}");
    let (_, _, missing) = get(base, "/recap?period=2024-09").await;
    assert!(
        missing.contains("analytics --period 2024-09"),
        "says what to run: {missing}"
    );

    // A pair is one page whichever way round it is asked for.
    let (status, headers, _) = get(base, "/pair/ben_k/ana.mx").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[LOCATION], "/pair/ana.mx/ben_k");
    // The recap without a period goes to the newest one recapped.
    let (status, headers, _) = get(base, "/recap").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[LOCATION], format!("/recap?period={PERIOD}"));
    // Without a password there is nothing to sign in to.
    let (status, headers, _) = get(base, "/login").await;
    assert_eq!(
        (status, &headers[LOCATION]),
        (StatusCode::SEE_OTHER, &"/".parse().unwrap())
    );
    let (status, headers, css) = get(base, "/static/style.css").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
    assert!(css.contains("figure.chart"));

    // A track whose artist has no Spotify id (imported, not enriched, or removed from Spotify) names
    // the artist without linking to an artist page that cannot exist.
    use mongodb::bson::{Bson, Document, doc};
    served
        .db
        .collection::<Document>(earshot_core::mongo::TRACKS)
        .update_one(
            doc! {"_id": &hostile},
            doc! {"$set": {"artist_ids": [Bson::Null]}},
        )
        .await
        .unwrap();
    let (status, _, track) = get(base, &format!("/track/{hostile}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(track.contains("Kōji &amp; The Waves"), "{track}");
    assert!(
        !track.contains("href=\"&#x2f;artist&#x2f;\"") && !track.contains("href=\"/artist/\""),
        "{track}"
    );
}

/// The recap page shows what fixtures/facts.py computed independently for October 2024.
#[tokio::test]
async fn the_recap_page_shows_the_months_answers() {
    let served = serve("dashboard_recap", None).await;
    let (status, _, page) = get(&served.base, &format!("/recap?period={PERIOD}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("October 2024"));
    // e.g. "… busiest 2024-10-22 (30); top listener of 35" for Ana.
    let ana = fact("recap.2024-10.ana.mx");
    let busiest = ana.split("busiest ").nth(1).unwrap();
    let (day, rest) = busiest.split_once(" (").unwrap();
    let plays = rest.split(')').next().unwrap();
    assert!(
        page.contains(&format!("{day} ({plays} plays)")),
        "Ana's busiest day {day}: {page}"
    );
    let streak = ana
        .split("streak ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap();
    assert!(page.contains(&format!("{streak} days in a row")));
    let closest = fact("recap.2024-10.closest");
    let score = closest.split(": ").nth(1).unwrap();
    let rounded = format!("{:.1}", score.parse::<f64>().unwrap());
    assert!(
        page.contains(&format!("Ana &amp; Ben</a>: {rounded} out of 100")),
        "closest pair {closest}"
    );
    assert!(page.contains("Minutes listened, October 2024"));
}

#[tokio::test]
async fn a_group_password_guards_every_page() {
    let served = serve("dashboard_login", Some("correct horse battery")).await;
    let base = served.base.as_str();
    let http = client();
    // Signed out: every page sends you to the login form, and says where you were going.
    let (status, headers, _) = get(base, "/member/ana.mx?period=2024-10").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        headers[LOCATION],
        "/login?next=%2Fmember%2Fana.mx%3Fperiod%3D2024-10"
    );
    let (status, _, _) = get(base, "/static/style.css").await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the login form's stylesheet is open"
    );

    let form = || login_form(&http, base);
    let post = |cookie: String, fields: Vec<(&'static str, String)>| {
        let http = http.clone();
        async move {
            http.post(format!("{base}/login"))
                .header("cookie", cookie)
                .form(&fields)
                .send()
                .await
                .unwrap()
        }
    };
    // No CSRF token (or another form's): refused before the password is looked at.
    let (nonce, token) = form().await;
    let (_, other_token) = form().await;
    let refused = post(
        nonce.clone(),
        vec![
            ("password", "correct horse battery".into()),
            ("csrf", other_token),
        ],
    )
    .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let refused = post(
        String::new(),
        vec![
            ("password", "correct horse battery".into()),
            ("csrf", token.clone()),
        ],
    )
    .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);

    // A wrong password is refused. The two refusals above counted nowhere (a post without a valid
    // CSRF pair never reaches the throttle): five wrong passwords in a minute lock the address out for
    // the rest of it.
    for attempt in 1..=5 {
        let (nonce, token) = form().await;
        let wrong = post(
            nonce,
            vec![("password", format!("wrong {attempt}")), ("csrf", token)],
        )
        .await;
        assert_eq!(
            wrong.status(),
            StatusCode::UNAUTHORIZED,
            "attempt {attempt}"
        );
        assert!(
            wrong
                .headers()
                .get_all(SET_COOKIE)
                .iter()
                .all(|c| !c.to_str().unwrap().starts_with("earshot_session="))
        );
        assert!(wrong.text().await.unwrap().contains("not the group"));
    }
    let (nonce, token) = form().await;
    let limited = post(
        nonce,
        vec![
            ("password", "correct horse battery".into()),
            ("csrf", token),
        ],
    )
    .await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = limited.headers()[RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
}

#[tokio::test]
async fn the_right_password_opens_a_session() {
    let served = serve("dashboard_session", Some("correct horse battery")).await;
    let base = served.base.as_str();
    let http = client();
    let (nonce, token) = login_form(&http, base).await;
    let signed_in = http
        .post(format!("{base}/login"))
        .header("cookie", nonce)
        .form(&[
            ("password", "correct horse battery"),
            ("csrf", &token),
            ("next", "//evil.example/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        signed_in.headers()[LOCATION],
        "/",
        "only a path of this site is followed"
    );
    let session = signed_in
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|c| c.to_str().unwrap().to_string())
        .find(|c| c.starts_with("earshot_session="))
        .expect("a session cookie");
    assert!(
        session.contains("HttpOnly")
            && session.contains("SameSite=Strict")
            && session.contains("Max-Age=")
    );
    let cookie = session.split(';').next().unwrap().to_string();
    let page = http
        .get(format!("{base}/member/emi"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("Sign out"));
    // A forged or altered cookie is not a session (the id is random; the server knows its hash).
    let (name, value) = cookie.split_once('=').unwrap();
    let mut altered: Vec<char> = value.chars().collect();
    altered[0] = if altered[0] == 'A' { 'B' } else { 'A' };
    let forged = format!("{name}={}", altered.into_iter().collect::<String>());
    let page = http
        .get(format!("{base}/"))
        .header("cookie", forged)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::SEE_OTHER);
    // Signing out (the page's form, with its token) clears the cookie.
    let out = common::sign_out(base, &cookie).await;
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert!(
        out.headers()[SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
}

#[test]
fn only_loopback_without_a_password() {
    let err = dashboard::check_bind("0.0.0.0:8080".parse().unwrap(), false).unwrap_err();
    assert!(
        err.to_string().contains("EARSHOT_DASHBOARD_PASSWORD_HASH"),
        "{err}"
    );
    dashboard::check_bind("0.0.0.0:8080".parse().unwrap(), true).unwrap();
    dashboard::check_bind("127.0.0.1:8080".parse().unwrap(), false).unwrap();
    dashboard::check_bind("[::1]:8080".parse().unwrap(), false).unwrap();
}

/// The binary refuses a public address without a password, naming the variable, before touching any store.
#[test]
fn the_binary_refuses_a_public_address_without_a_password() {
    let out = std::process::Command::new(earshot_tests::binary("dashboard"))
        .args(["--bind", "0.0.0.0:0"])
        .env_remove("EARSHOT_DASHBOARD_PASSWORD_HASH")
        .env("MONGODB_URI", "mongodb://127.0.0.1:1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("refusing to listen on 0.0.0.0:0 without a group password"),
        "{stderr}"
    );

    let hashed = std::process::Command::new(earshot_tests::binary("dashboard"))
        .arg("hash-password")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write as _;
            child.stdin.take().unwrap().write_all(b"hunter2\n")?;
            child.wait_with_output()
        })
        .unwrap();
    assert!(hashed.status.success());
    let hash = String::from_utf8(hashed.stdout).unwrap();
    assert!(
        hash.starts_with("$argon2id$") && !hash.contains("hunter2"),
        "{hash}"
    );
}

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

/// Every entry of a zip with its bytes.
fn zip_entries(bytes: &[u8]) -> std::collections::BTreeMap<String, Vec<u8>> {
    use std::io::Read as _;
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let mut out = std::collections::BTreeMap::new();
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).unwrap();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        out.insert(entry.name().unwrap().to_string(), data);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn your_data_is_the_signed_in_friends_own_and_their_export_is_members_export() {
    let (db, dir, storage) =
        earshot_tests::exported_snapshot_with("dashboard_your_data", SNAPSHOT, false).await;
    let group = earshot_tests::fixture_group_config();
    let (base, mock, _tokens, _key) =
        common::serve_sign_in_on(storage.clone(), db.clone(), group).await;
    let ana = common::signed_in_as(&base, &mock, "ana.mx").await;
    let page = common::get_with(&base, "/me", &ana).await;
    assert_eq!(page.status(), StatusCode::OK);
    let body = page.text().await.unwrap();
    let plays = fact("plays.ana.mx");
    assert!(
        body.contains("Your data, Ana") && body.contains("ana.mx"),
        "{body}"
    );
    assert!(body.contains(&format!("{plays} plays")), "{plays}: {body}");
    assert!(
        body.contains("Reconnect") && body.contains("connect?as=ana.mx"),
        "{body}"
    );
    for other in ["ben_k", "Ben", "chloe-r", "dev.p"] {
        assert!(
            !body.contains(&format!(">{other}<")),
            "{other} on Ana's page"
        );
    }
    // No path names another friend's data: an id changes nothing, or finds nothing.
    let with_id = common::get_with(&base, "/me?member=ben_k", &ana)
        .await
        .text()
        .await
        .unwrap();
    assert!(with_id.contains("Your data, Ana"));
    let nested = common::get_with(&base, "/me/ben_k", &ana).await;
    assert_eq!(nested.status(), StatusCode::NOT_FOUND);
    // The zip is `members export`'s, entry for entry.
    let zip = common::get_with(&base, "/me/export.zip", &ana).await;
    assert_eq!(zip.status(), StatusCode::OK);
    assert_eq!(zip.headers()["content-type"], "application/zip");
    let downloaded = zip_entries(&zip.bytes().await.unwrap());
    let config = earshot_testkit::fixtures::fixtures_dir().join("group.toml");
    let out = dir.path().join("ana.zip");
    let status = std::process::Command::new(earshot_tests::binary("members"))
        .args([
            "export",
            "--member",
            "ana.mx",
            "--output",
            out.to_str().unwrap(),
        ])
        .env("EARSHOT_STORAGE", dir.path())
        .env("EARSHOT_GROUP_CONFIG", &config)
        .env(
            "MONGODB_URI",
            earshot_testkit::mongo::MongoServer::shared().uri(),
        )
        .env("EARSHOT_DATABASE", db.name())
        .status()
        .unwrap();
    assert!(status.success());
    let exported = zip_entries(&std::fs::read(&out).unwrap());
    assert_eq!(
        downloaded.keys().collect::<Vec<_>>(),
        exported.keys().collect::<Vec<_>>()
    );
    assert!(downloaded.len() > 4, "{:?}", downloaded.keys());
    for (name, bytes) in &exported {
        if name == "member.json" {
            // The same but for when each archive was made.
            let without_time = |b: &[u8]| {
                let mut v: serde_json::Value = serde_json::from_slice(b).unwrap();
                assert!(v["exported_at"].is_string(), "{v}");
                v.as_object_mut().unwrap().remove("exported_at");
                v
            };
            assert_eq!(without_time(&downloaded[name]), without_time(bytes));
        } else {
            assert!(downloaded[name] == *bytes, "{name} differs");
        }
    }
    // ListenBrainz listens: one JSON object a line, every one Ana's.
    let listens = common::get_with(&base, "/me/listens.jsonl", &ana).await;
    assert_eq!(listens.status(), StatusCode::OK);
    let text = listens.text().await.unwrap();
    assert!(text.lines().count() > 10);
    for line in text.lines() {
        let listen: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(listen["listened_at"].is_i64(), "{line}");
    }
    // A guest of the group password has no "Your data".
    let (nonce, token) = login_form(&client(), &base).await;
    let guest = client()
        .post(format!("{base}/login"))
        .header("cookie", nonce)
        .form(&[("password", "the group password"), ("csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    let guest = common::session_of(&guest).expect("a guest session");
    for path in ["/me", "/me/export.zip", "/me/listens.jsonl"] {
        let refused = client()
            .get(format!("{base}{path}"))
            .header("cookie", &guest)
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), StatusCode::FORBIDDEN, "{path}");
    }
    let group_page = common::get_with(&base, "/status", &guest).await;
    assert_eq!(
        group_page.status(),
        StatusCode::OK,
        "the guest sees the group pages"
    );
}

/// The pair pages a page links to that name `member` (links decoded as the crawl decodes them).
fn pairs_naming(body: &str, member: &str) -> Vec<String> {
    let body = body.replace("&#x2f;", "/");
    body.split("/pair/")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap_or_default().to_string())
        .filter(|pair| pair.split(['/', '?']).any(|id| id == member))
        .collect()
}

/// A member's plays in the scheduled run the dashboard shows (`analytics_member_summary`).
async fn summary_plays(db: &mongodb::Database, run: &str, member: &str) -> i64 {
    let row = db
        .collection::<mongodb::bson::Document>("analytics_member_summary")
        .find_one(mongodb::bson::doc! {"run": run, "user_id": member})
        .await
        .unwrap()
        .expect("the member's summary");
    match row.get("plays") {
        Some(mongodb::bson::Bson::Int32(n)) => i64::from(*n),
        Some(mongodb::bson::Bson::Int64(n)) => *n,
        other => panic!("plays: {other:?}"),
    }
}

/// "Hide me from comparisons": Ana hides, and at once no page Ben sees links a pair with her (her pair
/// with Ben is `404`); after the next analytics run, no stored comparison names her, the recap's
/// closest pair is another, and the group's totals still count her plays. A post without the page's
/// token changes nothing. Shown again, her pair with Ben opens again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_friend_who_hides_from_comparisons_is_in_no_pair_another_friend_sees() {
    let (db, dir, storage) =
        earshot_tests::exported_snapshot_with("dashboard_hide_me", SNAPSHOT, false).await;
    let config = earshot_testkit::fixtures::fixtures_dir().join("group.toml");
    common::run_binary(
        "analytics",
        dir.path(),
        &db,
        &config,
        &["--snapshot", SNAPSHOT, "--run", "before"],
    );
    common::run_binary(
        "analytics",
        dir.path(),
        &db,
        &config,
        &["--snapshot", SNAPSHOT, "--period", PERIOD],
    );
    let group = earshot_tests::fixture_group_config();
    let (base, mock, _tokens, _key) =
        common::serve_sign_in_on(storage.clone(), db.clone(), group).await;
    let ana = common::signed_in_as(&base, &mock, "ana.mx").await;
    let ben = common::signed_in_as(&base, &mock, "ben_k").await;
    assert_eq!(
        common::get_with(&base, "/pair/ana.mx/ben_k", &ben)
            .await
            .status(),
        StatusCode::OK
    );
    let before: Vec<String> = common::crawl_as(&base, &["/"], &ben)
        .await
        .iter()
        .flat_map(|(_, _, body)| pairs_naming(body, "ana.mx"))
        .collect();
    assert!(
        !before.is_empty(),
        "Ben's pages link pairs with Ana before she hides"
    );

    let forged = common::post_form(
        &base,
        "/me/comparisons",
        &ana,
        &[("csrf", "forged"), ("hide", "yes")],
    )
    .await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert!(
        !earshot_core::consent::hides(&storage, "ana.mx")
            .await
            .unwrap()
    );
    let token = common::form_token(&base, &ana).await;
    let hidden = common::post_form(
        &base,
        "/me/comparisons",
        &ana,
        &[("csrf", &token), ("hide", "yes")],
    )
    .await;
    assert_eq!(hidden.status(), StatusCode::SEE_OTHER);
    assert!(
        earshot_core::consent::hides(&storage, "ana.mx")
            .await
            .unwrap()
    );
    let own = common::get_with(&base, "/me", &ana)
        .await
        .text()
        .await
        .unwrap();
    assert!(own.contains("hidden from comparisons"), "{own}");

    // At once: the stored run still holds her pairs, and no page shows them.
    assert_eq!(
        common::get_with(&base, "/pair/ana.mx/ben_k", &ben)
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    let check = |pages: Vec<(String, StatusCode, String)>| {
        assert!(pages.len() > 5, "a crawl of the group's pages");
        for (path, status, body) in pages {
            assert!(
                status.is_success() || status.is_redirection(),
                "{path}: {status}"
            );
            let named = pairs_naming(&body, "ana.mx");
            assert!(named.is_empty(), "{path} links pairs with Ana: {named:?}");
        }
    };
    check(
        common::crawl_as(
            &base,
            &["/", "/member/ben_k", "/recap?period=2024-10"],
            &ben,
        )
        .await,
    );

    // The next run stores no comparison naming her; the totals still count her.
    common::run_binary(
        "analytics",
        dir.path(),
        &db,
        &config,
        &["--snapshot", SNAPSHOT, "--run", "after"],
    );
    common::run_binary(
        "analytics",
        dir.path(),
        &db,
        &config,
        &["--snapshot", SNAPSHOT, "--period", PERIOD],
    );
    for table in earshot_metrics::tables() {
        let columns: Vec<&str> = table.comparison_columns().collect();
        if columns.is_empty() {
            continue;
        }
        let naming: Vec<mongodb::bson::Document> = columns
            .iter()
            .map(|c| mongodb::bson::doc! {*c: "ana.mx"})
            .collect();
        let found = db
            .collection::<mongodb::bson::Document>(&format!("analytics_{}", table.name))
            .count_documents(mongodb::bson::doc! {"run": "after", "$or": &naming})
            .await
            .unwrap();
        let earlier = db
            .collection::<mongodb::bson::Document>(&format!("analytics_{}", table.name))
            .count_documents(mongodb::bson::doc! {"run": "before", "$or": naming})
            .await
            .unwrap();
        assert_eq!(found, 0, "{}: {found} rows compare Ana", table.name);
        if table.name == "taste_match" {
            assert!(earlier > 0, "the run before compared her");
        }
    }
    let closest = db
        .collection::<mongodb::bson::Document>("analytics_recap_group")
        .find_one(mongodb::bson::doc! {"run": "after"})
        .await
        .unwrap()
        .unwrap();
    for side in ["closest_a", "closest_b"] {
        assert_ne!(closest.get_str(side).ok(), Some("ana.mx"), "{closest:?}");
    }
    assert_eq!(
        summary_plays(&db, "after", "ana.mx").await,
        summary_plays(&db, "before", "ana.mx").await,
        "the group's totals still count her"
    );
    check(
        common::crawl_as(
            &base,
            &["/", "/member/ben_k", "/recap?period=2024-10"],
            &ben,
        )
        .await,
    );

    // She shows again.
    let shown = common::post_form(
        &base,
        "/me/comparisons",
        &ana,
        &[("csrf", &token), ("hide", "no")],
    )
    .await;
    assert_eq!(shown.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        common::get_with(&base, "/pair/ana.mx/ben_k", &ben)
            .await
            .status(),
        StatusCode::OK
    );
}
