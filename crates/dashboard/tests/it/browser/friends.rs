//! Signing in, two groups in one browser, and a friend's own sign-in and erase, in Chromium.

use super::*;

#[tokio::test]
async fn login_in_chromium() {
    let served = serve("dashboard_browser_login", Some("correct horse battery")).await;
    let base = served.base.clone();
    let browser = Browser::start().await;
    browser.goto(&format!("{base}/member/ana.mx")).await;
    assert!(
        browser.url().await.contains("/login?next="),
        "sent to the login form"
    );
    browser.type_into("#password", "not it").await;
    browser.click("button[type=submit]").await;
    let error = browser.text(&browser.find("p.error").await).await;
    assert_eq!(error, "That is not the group's password.");
    assert!(browser.wait_for_url("/login").await.ends_with("/login"));
    // The refusal's 401 is the only thing in the console.
    let issues = problems(&browser.console().await);
    assert!(issues.iter().all(|m| m.contains("401")), "{issues:?}");
    browser
        .type_into("#password", "correct horse battery")
        .await;
    browser.click("button[type=submit]").await;
    assert_eq!(
        browser.wait_for_url("/member/ana.mx").await,
        format!("{base}/member/ana.mx")
    );
    assert_eq!(browser.text(&browser.find("h1").await).await, "Ana");
    assert!(problems(&browser.console().await).is_empty());
    browser.click("form.inline button").await;
    let url = browser.wait_for_url("/login").await;
    assert!(url.ends_with("/login"), "signed out: {url}");
}

/// Two groups in one dashboard, in one browser: signed in to north, south's pages still ask for
/// south's password (north's cookie is north's path only); signed in to both, each group's pages open
/// with its own session, and signing out of north leaves south signed in.
#[tokio::test]
async fn two_groups_in_one_browser_each_need_their_own_password() {
    let served = common::serve_groups("dashboard_browser_groups").await;
    let site = served.site.clone();
    let browser = Browser::start().await;
    browser
        .goto(&format!("{site}/g/north/member/chloe-r"))
        .await;
    assert!(browser.url().await.contains("/g/north/login?next="));
    browser.type_into("#password", "north password").await;
    browser.click("button[type=submit]").await;
    browser.wait_for_url("/g/north/member/chloe-r").await;
    assert_eq!(browser.text(&browser.find("h1").await).await, "Chloé");
    // Every link of north's page stays in north (or goes to Spotify).
    for link in browser.links().await {
        assert!(
            link.starts_with(&format!("{site}/g/north"))
                || link.starts_with("https://open.spotify.com/"),
            "{link}"
        );
    }
    // South's page of the same friend: south's sign-in, and north's password does not open it.
    browser
        .goto(&format!("{site}/g/south/member/chloe-r"))
        .await;
    assert!(
        browser.url().await.contains("/g/south/login?next="),
        "south asks for its own password"
    );
    browser.type_into("#password", "north password").await;
    browser.click("button[type=submit]").await;
    let error = browser.text(&browser.find("p.error").await).await;
    assert_eq!(error, "That is not the group's password.");
    browser.type_into("#password", "south password").await;
    browser.click("button[type=submit]").await;
    browser.wait_for_url("/g/south/member/chloe-r").await;
    assert_eq!(browser.text(&browser.find("h1").await).await, "Chloé");
    // Both sessions live side by side; signing out of north ends north's only.
    browser.goto(&format!("{site}/g/north")).await;
    assert_eq!(browser.url().await, format!("{site}/g/north"));
    browser.click("form.inline button").await;
    assert!(
        browser
            .wait_for_url("/g/north/login")
            .await
            .ends_with("/g/north/login")
    );
    browser.goto(&format!("{site}/g/south")).await;
    assert_eq!(
        browser.url().await,
        format!("{site}/g/south"),
        "still signed in to south"
    );
    browser.goto(&format!("{site}/g/north")).await;
    assert!(
        browser.url().await.contains("/g/north/login"),
        "signed out of north"
    );
    let issues = problems(&browser.console().await);
    assert!(
        issues
            .iter()
            .all(|m| m.contains("401") || m.contains("404")),
        "{issues:?}"
    );
}

/// A listed friend signs in with Spotify in Chromium (the mock's consent, the dashboard's callback)
/// and lands on "Your data", connected; hides from comparisons there; then erases themselves: a wrong
/// id erases nothing, the right one leaves a page of what was removed and signs them out. Their old
/// session is refused, `members list` says "left on <date>", and after the pipeline runs again
/// (fetch, convert, upload, build, export, analytics) no store holds anything of theirs but the
/// departure that keeps them out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_friend_signs_in_with_spotify_then_erases_themselves_in_chromium() {
    use earshot_testkit::fixtures::fixtures_dir;
    const SNAPSHOT: &str = common::SNAPSHOT;
    const MEMBER: &str = "chloe-r";
    let (db, dir, storage) =
        earshot_tests::exported_snapshot_with("dashboard_browser_erase_me", SNAPSHOT, false).await;
    let root = dir.path();
    let config = fixtures_dir().join("group.toml");
    common::run_binary("analytics", root, &db, &config, &["--snapshot", SNAPSHOT]);
    let group = earshot_tests::fixture_group_config();
    let (base, mock, tokens, key) =
        common::serve_sign_in_on(storage.clone(), db.clone(), group.clone()).await;
    // Another friend is connected too, so that the fetch after the erase has someone to fetch.
    common::signed_in_as(&base, &mock, "ana.mx").await;

    let browser = Browser::start().await;
    browser.goto(&format!("{base}/status")).await;
    assert!(
        browser.url().await.contains("/login?next="),
        "sent to the login form"
    );
    mock.login_as(MEMBER);
    browser.click("a[href$=\"/connect\"]").await;
    assert_eq!(browser.wait_for_url("/me").await, format!("{base}/me"));
    assert_eq!(
        browser.text(&browser.find("h1").await).await,
        "Your data, Chloé"
    );
    assert!(tokens.load(MEMBER).await.unwrap().is_some(), "connected");
    assert!(problems(&browser.console().await).is_empty());

    browser
        .click("form[action$=\"/me/comparisons\"] button")
        .await;
    assert!(browser.wait_for_url("/me").await.ends_with("/me"));
    let main = browser.text(&browser.find("main").await).await;
    assert!(main.contains("hidden from comparisons"), "{main}");
    assert!(
        earshot_core::consent::hides(&storage, MEMBER)
            .await
            .unwrap()
    );

    browser.type_into("input[name=confirm]", "chloe").await;
    browser.click("form[action$=\"/me/erase\"] button").await;
    let refused = browser.text(&browser.find("p.error").await).await;
    assert!(refused.contains("Nothing was erased"), "{refused}");
    assert!(
        tokens.load(MEMBER).await.unwrap().is_some(),
        "a wrong id erases nothing"
    );

    browser.type_into("input[name=confirm]", MEMBER).await;
    browser.click("form[action$=\"/me/erase\"] button").await;
    let mut heading = String::new();
    for _ in 0..600 {
        heading = browser.text(&browser.find("h1").await).await;
        if heading == "You have left the group" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(heading, "You have left the group");
    let page = browser.text(&browser.find("main").await).await;
    assert!(
        page.contains("plays") && page.contains("spotify.com/account/apps"),
        "{page}"
    );

    // Signed out, and the session is gone.
    browser.goto(&format!("{base}/me")).await;
    assert!(
        browser.url().await.contains("/login"),
        "{}",
        browser.url().await
    );
    let sessions = db
        .collection::<mongodb::bson::Document>(earshot_core::mongo::DASHBOARD_SESSIONS)
        .count_documents(earshot_state::sessions::of_member(MEMBER))
        .await
        .unwrap();
    assert_eq!(sessions, 0);
    let stores = earshot_state::Stores {
        storage: storage.clone(),
        db: db.clone(),
        group: group.clone(),
    };
    let now = mock.now();
    let rows = earshot_state::roster::list(&stores, now).await.unwrap();
    let row = rows
        .iter()
        .find(|r| r.member == MEMBER)
        .expect("still listed");
    assert!(row.authorisation.starts_with("left on "), "{row:?}");

    // The pipeline runs on: nothing of theirs comes back.
    let fetch = std::process::Command::new(earshot_tests::binary("data-fetcher"))
        .args(["fetch", "--what", "recently-played"])
        .env("EARSHOT_STORAGE", root)
        .env("EARSHOT_GROUP_CONFIG", &config)
        .env(
            "MONGODB_URI",
            earshot_testkit::mongo_server::MongoServer::shared().uri(),
        )
        .env("EARSHOT_DATABASE", db.name())
        .env("EARSHOT_TOKEN_KEY", &key)
        .env("EARSHOT_NOW", now.to_rfc3339())
        .env(env::SPOTIFY_API_BASE, mock.base_url())
        .env(env::SPOTIFY_ACCOUNTS_BASE, mock.base_url())
        .env(
            env::SPOTIFY_CLIENT_ID,
            earshot_testkit::spotify::DEFAULT_CLIENT_ID,
        )
        .env("EARSHOT_LOG", "info")
        .output()
        .unwrap();
    assert!(
        fetch.status.success(),
        "{}",
        String::from_utf8_lossy(&fetch.stderr)
    );
    assert!(
        String::from_utf8_lossy(&fetch.stderr).contains("left the group"),
        "the fetch says why it skips them"
    );
    for (program, args) in [
        ("json-converter", vec!["recently-played"]),
        ("data-upload", vec!["all"]),
        ("create-collections", vec!["all"]),
        ("gcs-export", vec!["--snapshot", "20250101T000000Z"]),
        ("analytics", vec!["--snapshot", "20250101T000000Z"]),
    ] {
        common::run_binary(program, root, &db, &config, &args);
    }
    let mut traces = Vec::new();
    for (path, bytes) in earshot_tests::files_under(root) {
        let kept = path.starts_with("state/left/");
        if !kept && String::from_utf8_lossy(&bytes).contains(MEMBER) {
            traces.push(path);
        }
    }
    earshot_tests::each_document(&db, |collection, document| {
        if document.to_string().contains(MEMBER) {
            traces.push(format!("{collection}: {document}"));
        }
    })
    .await;
    assert!(traces.is_empty(), "traces of {MEMBER}: {traces:?}");
    assert!(
        !earshot_rights::erase::holds_anything(&stores, MEMBER)
            .await
            .unwrap(),
        "a store still holds {MEMBER}"
    );
    assert!(
        earshot_core::erasure::has_left(&storage, MEMBER)
            .await
            .unwrap()
    );
}
