//! The dashboard in a real browser: headless Chromium (Debian's `chromium`) driven through ChromeDriver
//! over the W3C WebDriver protocol, against the dashboard on the fixture group through the real pipeline.
//!
//! - every page linked from the group page loads with no console error (CSP violations included), and
//!   every link on those pages answers (no broken link);
//! - the hostile track name shows as text, and no script element exists;
//! - the period selector works without JavaScript;
//! - login works, and a wrong password is refused;
//! - screenshots of the group, member and recap pages are written to
//!   `$CARGO_TARGET_TMPDIR/dashboard-screenshots/`.

use crate::common;

use std::collections::{BTreeSet, VecDeque};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use common::{PERIOD, client, hostile_track, serve, serve_with};
use earshot_core::env;
use serde_json::{Value, json};

/// A ChromeDriver process and one browser session.
struct Browser {
    http: reqwest::Client,
    driver: String,
    session: String,
    child: Child,
    /// Chromium's profile, removed after the session ends.
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    /// End the session (ChromeDriver then quits Chromium), even when the test failed, then stop the
    /// driver. A plain blocking request: drop cannot wait on the async client.
    fn drop(&mut self) {
        use std::io::{Read as _, Write as _};
        let address = self.driver.trim_start_matches("http://").to_string();
        if let Ok(mut stream) = std::net::TcpStream::connect(&address) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            let request = format!(
                "DELETE /session/{} HTTP/1.1\r\nHost: {address}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                self.session
            );
            if stream.write_all(request.as_bytes()).is_ok() {
                let _ = stream.read_to_end(&mut Vec::new());
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tool(var: &str, default: &str) -> PathBuf {
    let path = std::env::var_os(var).map_or_else(|| PathBuf::from(default), PathBuf::from);
    assert!(
        path.is_file(),
        "{} is missing: scripts/test.sh installs Debian's chromium and chromium-driver (or set {var})",
        path.display()
    );
    path
}

impl Browser {
    async fn start() -> Browser {
        let driver_bin = tool(env::EARSHOT_CHROMEDRIVER, "/usr/bin/chromedriver");
        let chromium = tool(env::EARSHOT_CHROMIUM, "/usr/bin/chromium");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(driver_bin)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting chromedriver");
        let http = reqwest::Client::new();
        let driver = format!("http://127.0.0.1:{port}");
        let mut ready = false;
        for _ in 0..100 {
            if let Ok(r) = http.get(format!("{driver}/status")).send().await
                && let Ok(v) = r.json::<Value>().await
                && v["value"]["ready"] == true
            {
                ready = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(ready, "chromedriver did not start");
        let profile = tempfile::tempdir().unwrap();
        // The flags the machine notes give: no sandbox as root, and no background connections (the
        // network is closed; Chromium would log failures of its own).
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:loggingPrefs": {"browser": "ALL"},
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                         "--disable-background-networking", "--disable-component-update", "--disable-sync",
                         "--disable-dev-shm-usage", "--window-size=1280,2000",
                         format!("--user-data-dir={}", profile.path().display())],
            },
        }}});
        let created: Value = http
            .post(format!("{driver}/session"))
            .json(&capabilities)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let session = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {created}"))
            .to_string();
        Browser {
            http,
            driver,
            session,
            child,
            _profile: profile,
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{path}", self.driver, self.session);
        let mut request = self.http.request(method, url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer: Value = request.send().await.unwrap().json().await.unwrap();
        if answer["value"].get("error").is_some() {
            panic!("WebDriver {path}: {answer}");
        }
        answer["value"].clone()
    }

    async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({"url": url})))
            .await;
    }

    async fn url(&self) -> String {
        self.call(reqwest::Method::GET, "/url", None)
            .await
            .as_str()
            .unwrap()
            .to_string()
    }

    async fn find_all(&self, css: &str) -> Vec<String> {
        let found = self
            .call(
                reqwest::Method::POST,
                "/elements",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        found
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                e.as_object()
                    .and_then(|o| o.values().next())
                    .and_then(Value::as_str)
                    .unwrap()
                    .to_string()
            })
            .collect()
    }

    /// The first element matching `css`, waiting up to 10 s for it: after a click that submits a form,
    /// Chromium may answer before the next page is in place.
    async fn find(&self, css: &str) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let all = self.find_all(css).await;
            if let Some(first) = all.first() {
                return first.clone();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no `{css}` on {}",
                self.url().await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn text(&self, element: &str) -> String {
        self.call(
            reqwest::Method::GET,
            &format!("/element/{element}/text"),
            None,
        )
        .await
        .as_str()
        .unwrap()
        .to_string()
    }

    async fn property(&self, element: &str, name: &str) -> Value {
        self.call(
            reqwest::Method::GET,
            &format!("/element/{element}/property/{name}"),
            None,
        )
        .await
    }

    async fn type_into(&self, css: &str, text: &str) {
        let element = self.find(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{element}/value"),
            Some(json!({"text": text})),
        )
        .await;
    }

    async fn click(&self, css: &str) {
        let element = self.find(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{element}/click"),
            Some(json!({})),
        )
        .await;
    }

    /// The URL once it ends with `suffix` (a click's navigation may still be under way), within 10 s.
    async fn wait_for_url(&self, suffix: &str) -> String {
        let mut url = self.url().await;
        for _ in 0..100 {
            if url.ends_with(suffix) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            url = self.url().await;
        }
        url
    }

    /// Every absolute link of the page.
    async fn links(&self) -> Vec<String> {
        let mut out = Vec::new();
        for a in self.find_all("a[href]").await {
            if let Some(href) = self.property(&a, "href").await.as_str() {
                out.push(href.to_string());
            }
        }
        out
    }

    /// The browser console since the last call (ChromeDriver's log endpoint).
    async fn console(&self) -> Vec<Value> {
        self.call(
            reqwest::Method::POST,
            "/se/log",
            Some(json!({"type": "browser"})),
        )
        .await
        .as_array()
        .cloned()
        .unwrap_or_default()
    }

    async fn screenshot(&self, name: &str) -> PathBuf {
        let data = self
            .call(reqwest::Method::GET, "/screenshot", None)
            .await
            .as_str()
            .unwrap()
            .to_string();
        let png = base64::engine::general_purpose::STANDARD
            .decode(data)
            .unwrap();
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard-screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }
}

/// Console entries that are errors or warnings (a CSP violation is an error).
fn problems(entries: &[Value]) -> Vec<String> {
    entries
        .iter()
        .filter(|e| matches!(e["level"].as_str(), Some("SEVERE" | "WARNING")))
        .map(|e| e["message"].to_string())
        .collect()
}

#[tokio::test]
async fn every_page_from_the_group_page_loads_cleanly_in_chromium() {
    // With the members' streaming histories imported: removed tracks, artists without Spotify ids.
    let served = serve_with("dashboard_browser", None, true).await;
    let base = served.base.clone();
    let browser = Browser::start().await;

    // The group page, then every page it links to, in the browser.
    browser.goto(&format!("{base}/")).await;
    let heading = browser.text(&browser.find("h1").await).await;
    assert_eq!(heading, "fixture-group");
    let nav = browser.text(&browser.find("nav").await).await;
    assert!(nav.contains("Emi 🎧") && nav.contains("Chloé"), "{nav}");
    assert!(problems(&browser.console().await).is_empty());
    let shot = browser.screenshot("group").await;
    eprintln!("screenshot: {}", shot.display());
    let first: BTreeSet<String> = browser
        .links()
        .await
        .into_iter()
        .filter(|l| l.starts_with(&base))
        .collect();
    assert!(
        first.len() > 20,
        "the group page links its members, pairs and tracks: {first:?}"
    );
    let mut second: BTreeSet<String> = BTreeSet::new();
    let mut queue: VecDeque<&String> = first.iter().collect();
    while let Some(link) = queue.pop_front() {
        browser.goto(link).await;
        let landed = browser.url().await;
        assert!(landed.starts_with(&base), "{link} went to {landed}");
        let title: Vec<String> = browser.find_all("h1").await;
        let h1 = browser.text(&title[0]).await;
        assert!(
            !h1.contains("Not found") && !h1.contains("No such") && !h1.contains("went wrong"),
            "{link}: {h1}"
        );
        let issues = problems(&browser.console().await);
        assert!(issues.is_empty(), "{link}: console {issues:?}");
        assert!(
            browser.find_all("script").await.is_empty(),
            "{link}: a script element"
        );
        second.extend(
            browser
                .links()
                .await
                .into_iter()
                .filter(|l| l.starts_with(&base)),
        );
    }
    // Every link on those pages answers (checked over HTTP: there are hundreds).
    let http = client();
    for link in second.difference(&first) {
        let status = http.get(link).send().await.unwrap().status();
        assert!(
            status.is_success() || status.is_redirection(),
            "broken link {link}: {status}"
        );
    }

    // An imported track Spotify removed, and a local file: their pages load, and name every artist,
    // linking none to a page that cannot exist.
    let local: mongodb::bson::Document = served
        .db
        .collection("analytics_member_tracks")
        .find_one(mongodb::bson::doc! {"track_key": {"$regex": "^local:"}})
        .await
        .unwrap()
        .expect("a local file among the plays");
    let local = local.get_str("track_key").unwrap().to_string();
    let removed = earshot_testkit::fixtures::removed_track_id(0);
    for key in [removed.as_str(), local.as_str()] {
        let link = format!("{base}/track/{}", dashboard::urls::segment(key));
        browser.goto(&link).await;
        let h1 = browser.text(&browser.find("h1").await).await;
        assert!(
            !h1.contains("No such") && !h1.contains("Not found"),
            "{link}: {h1}"
        );
        assert!(problems(&browser.console().await).is_empty(), "{link}");
        for href in browser
            .links()
            .await
            .into_iter()
            .filter(|l| l.starts_with(&base))
        {
            assert!(!href.ends_with("/artist/"), "{link} links {href}");
            let status = http.get(&href).send().await.unwrap().status();
            assert!(
                status.is_success() || status.is_redirection(),
                "{link} links {href}: {status}"
            );
        }
    }

    // The hostile track name is text.
    let hostile = hostile_track(&served.db).await;
    browser.goto(&format!("{base}/track/{hostile}")).await;
    let h1 = browser.text(&browser.find("h1").await).await;
    assert_eq!(h1, "Kōji & The Waves - <script>alert");
    assert!(browser.find_all("script").await.is_empty());
    assert!(problems(&browser.console().await).is_empty());

    // The member and recap pages, and the period selector (a plain GET form: no JavaScript).
    browser.goto(&format!("{base}/member/emi")).await;
    assert_eq!(browser.text(&browser.find("h1").await).await, "Emi 🎧");
    browser.screenshot("member").await;
    let option = browser.find(&format!("option[value='{PERIOD}']")).await;
    browser
        .call(
            reqwest::Method::POST,
            &format!("/element/{option}/click"),
            Some(json!({})),
        )
        .await;
    browser.click("form.period button").await;
    let url = browser
        .wait_for_url(&format!("/member/emi?period={PERIOD}"))
        .await;
    assert!(
        url.ends_with(&format!("/member/emi?period={PERIOD}")),
        "{url}"
    );
    let muted = browser.text(&browser.find("main p.muted").await).await;
    assert!(muted.starts_with("October 2024"), "{muted}");
    browser.goto(&format!("{base}/recap")).await;
    assert!(
        browser
            .url()
            .await
            .ends_with(&format!("/recap?period={PERIOD}"))
    );
    let cards = browser.find_all("section.card").await;
    assert_eq!(cards.len(), 5, "a recap card per member");
    // October's podcasts and audiobooks: minutes per friend, and the podcasts friends share.
    assert_eq!(
        browser.find_all("table.spoken").await.len(),
        2,
        "the recap's spoken tables"
    );
    let recap = browser.text(&browser.find("main").await).await;
    assert!(
        recap.contains("Podcasts friends share") && recap.contains("Night Shift Radio"),
        "{recap}"
    );
    browser.screenshot("recap").await;
    assert!(problems(&browser.console().await).is_empty());

    // The group page's and Dev's spoken sections; Dev's own show has markup in its name, shown as text.
    browser.goto(&format!("{base}/")).await;
    let group = browser.text(&browser.find("main").await).await;
    for wanted in [
        "Podcasts and audiobooks",
        "The Long Listen",
        "Deep Cuts Weekly",
    ] {
        assert!(group.contains(wanted), "the group page names {wanted}");
    }
    browser.goto(&format!("{base}/member/dev.p")).await;
    assert_eq!(browser.find_all("table.spoken").await.len(), 2);
    let dev = browser.text(&browser.find("main").await).await;
    assert!(
        dev.contains("<i>Loud</i> & \"Clear\""),
        "the show's name, as text: {dev}"
    );
    assert!(
        browser.find_all("main i").await.is_empty(),
        "no element from a show's name"
    );
    assert!(problems(&browser.console().await).is_empty());
}

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
            earshot_testkit::mongo::MongoServer::shared().uri(),
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
