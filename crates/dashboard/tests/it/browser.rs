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

mod friends;

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
