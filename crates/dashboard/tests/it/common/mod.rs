//! The dashboard on the fixture group carried through the real pipeline: raw pages → json-converter →
//! data-upload → create-collections → gcs-export, then the `analytics` binary twice, as the DAG runs it
//! (the daily run of the whole history, and `--period 2024-10`), served on a free loopback port.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::sync::Arc;

use dashboard::AppState;
use dashboard::auth::Auth;
use dashboard::exposure::{Exposure, Network};
use dashboard::server::ServerLimits;
use earshot_tests::{exported_snapshot_with, fixture_group_config};

mod sign_in;
pub use sign_in::*;

/// The daily run's snapshot (and run id).
pub const SNAPSHOT: &str = "20241111T090000Z";
/// The recapped period.
pub const PERIOD: &str = "2024-10";

/// A dashboard being served.
pub struct Served {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// The database it reads.
    pub db: mongodb::Database,
    _dir: tempfile::TempDir,
}

pub use earshot_tests::run_binary;

fn analytics(root: &std::path::Path, db: &mongodb::Database, args: &[&str]) {
    let config = earshot_testkit::fixtures::fixtures_dir().join("group.toml");
    run_binary("analytics", root, db, &config, args);
}

/// The pipeline into a fresh database, then the dashboard on it (with a group password when given).
pub async fn serve(test: &str, password: Option<&str>) -> Served {
    serve_with(test, password, false).await
}

/// [`serve`], with every member's streaming history imported too when `history` (removed tracks,
/// artists without Spotify ids).
pub async fn serve_with(test: &str, password: Option<&str>, history: bool) -> Served {
    let (db, dir, storage) = exported_snapshot_with(test, SNAPSHOT, history).await;
    analytics(
        dir.path(),
        &db,
        &["--snapshot", SNAPSHOT, "--run", SNAPSHOT],
    );
    analytics(
        dir.path(),
        &db,
        &["--snapshot", SNAPSHOT, "--period", PERIOD],
    );
    let auth = password.map(|p| {
        Auth::new(
            &dashboard::auth::hash_password(p).unwrap(),
            "the test hash",
            false,
        )
        .unwrap()
    });
    let stores = earshot_state::Stores {
        storage,
        db: db.clone(),
        group: fixture_group_config(),
    };
    Served {
        base: serve_stores(stores, auth).await,
        db,
        _dir: dir,
    }
}

/// The dashboard on these stores, on a free loopback port: its base URL.
pub async fn serve_stores(stores: earshot_state::Stores, auth: Option<Auth>) -> String {
    serve_stores_with(stores, auth, &[], ServerLimits::default()).await
}

/// The same, believing `trusted_proxies`, within `limits`.
pub async fn serve_stores_with(
    stores: earshot_state::Stores,
    auth: Option<Auth>,
    trusted_proxies: &[Network],
    limits: ServerLimits,
) -> String {
    serve_state(stores, auth, trusted_proxies, limits).await.0
}

/// [`serve_stores_with`], also returning the state the pages share (what the metrics server reads).
pub async fn serve_state(
    stores: earshot_state::Stores,
    auth: Option<Auth>,
    trusted_proxies: &[Network],
    limits: ServerLimits,
) -> (String, Arc<AppState>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address: SocketAddr = listener.local_addr().unwrap();
    let exposure =
        Exposure::loopback(address.port(), auth.is_some()).with_trusted_proxies(trusted_proxies);
    let state = Arc::new(AppState {
        base: String::new(),
        stores,
        auth,
        exposure,
        clock: Arc::new(earshot_state::clock::SystemClock),
        spotify: None,
        listen_limiter: Default::default(),
        sign_ins: Default::default(),
    });
    tokio::spawn(dashboard::serve_with(listener, vec![state.clone()], limits));
    (format!("http://{address}"), state)
}

/// The venv's Python, with the client libraries the tests drive (scripts/requirements-test.lock:
/// liblistenbrainz, prometheus-client).
pub fn venv_python() -> std::path::PathBuf {
    std::env::var_os("EARSHOT_VENV")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| earshot_core::env::cache_dir().join("venv"))
        .join("bin/python")
}

/// The dashboard with a password on an empty database (the login form needs no data), believing
/// `trusted_proxies`, within `limits`.
pub async fn serve_empty(
    test: &str,
    auth: Option<Auth>,
    trusted_proxies: &[Network],
    limits: ServerLimits,
) -> (String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let stores = earshot_state::Stores {
        storage: earshot_core::Storage::local(dir.path()),
        db: earshot_tests::fresh_database(test).await,
        group: fixture_group_config(),
    };
    (
        serve_stores_with(stores, auth, trusted_proxies, limits).await,
        dir,
    )
}

/// Every page reachable from `start` by same-site links, with its status and body (over HTTP).
pub async fn crawl(base: &str, start: &[&str]) -> Vec<(String, reqwest::StatusCode, String)> {
    crawl_with(base, start, None).await
}

async fn crawl_with(
    base: &str,
    start: &[&str],
    cookie: Option<&str>,
) -> Vec<(String, reqwest::StatusCode, String)> {
    let http = client();
    let mut seen: std::collections::BTreeSet<String> =
        start.iter().map(|s| s.to_string()).collect();
    let mut queue: std::collections::VecDeque<String> = seen.iter().cloned().collect();
    let mut pages = Vec::new();
    while let Some(path) = queue.pop_front() {
        let mut request = http.get(format!("{base}{path}"));
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let body = response.text().await.unwrap();
        for link in body.split("href=\"").skip(1) {
            // minijinja escapes `/` and `&` in attributes.
            let href = link
                .split('"')
                .next()
                .unwrap_or_default()
                .replace("&#x2f;", "/")
                .replace("&amp;", "&");
            let page = href.starts_with('/')
                && !href.starts_with("//")
                && !href.starts_with("/static/")
                && !href.starts_with("/favicon");
            if page && seen.insert(href.clone()) {
                queue.push_back(href);
            }
        }
        pages.push((path, status, body));
    }
    pages
}

/// An HTTP client that does not follow redirects (the tests look at them).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The key of the fixtures' hostile track (`<script>alert(1)</script>`).
pub async fn hostile_track(db: &mongodb::Database) -> String {
    use mongodb::bson::{Document, doc};
    let track = db
        .collection::<Document>(earshot_core::mongo::TRACKS)
        .find_one(doc! {"track_name": "<script>alert(1)</script>"})
        .await
        .unwrap()
        .expect("the fixtures hold a track named <script>alert(1)</script>");
    track.get_str("_id").unwrap().to_string()
}

/// The login form: its CSRF cookie (`name=value`, checked HttpOnly and SameSite=Strict) and the
/// token the form carries.
pub async fn login_form(http: &reqwest::Client, base: &str) -> (String, String) {
    let response = http
        .get(format!("{base}/login?next=/status"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    let cookie = response.headers()[reqwest::header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let nonce = cookie.split(';').next().unwrap().to_string();
    let body = response.text().await.unwrap();
    let token = body
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    (nonce, token)
}

/// A dashboard serving two groups of one deployment (`--groups-dir`): the fixture groups north and
/// south through the pipeline by the binaries, each with its password (`<id> password`).
pub struct ServedGroups {
    /// `http://127.0.0.1:<port>`.
    pub site: String,
    /// North's and south's databases.
    pub dbs: [mongodb::Database; 2],
    _dir: tempfile::TempDir,
}

/// The run (and snapshot) of [`serve_groups`].
pub const GROUPS_RUN: &str = "20250101T000000Z";

fn write_group(dir: &std::path::Path, id: &str) {
    let hash = dashboard::auth::hash_password(&format!("{id} password")).unwrap();
    std::fs::write(dir.join(format!("{id}.hash")), hash).unwrap();
    let text = std::fs::read_to_string(
        earshot_testkit::fixtures::fixtures_dir()
            .join("groups")
            .join(format!("{id}.toml")),
    )
    .unwrap()
    .replace(
        "\n[[apps]]",
        &format!(
            "dashboard_password_hash_file = \"{}\"\n\n[[apps]]",
            dir.join(format!("{id}.hash")).display()
        ),
    );
    std::fs::write(dir.join(format!("{id}.toml")), text).unwrap();
}

/// North and south through the pipeline into one deployment, then `dashboard --groups-dir` on it, as
/// the binary runs (the command line parsed, `dashboard::run`), on a free loopback port.
pub async fn serve_groups(test: &str) -> ServedGroups {
    use clap::Parser as _;
    let server = earshot_testkit::mongo_server::MongoServer::shared();
    let deployment = tempfile::tempdir().unwrap();
    let root = deployment.path().join("storage");
    let groups = deployment.path().join("groups");
    std::fs::create_dir(&groups).unwrap();
    let base = server.database_name(test);
    for id in ["north", "south"] {
        write_group(&groups, id);
        let config = groups.join(format!("{id}.toml"));
        earshot_tests::Place {
            root: &root,
            database: &base,
            config: &config,
        }
        .pipeline(GROUPS_RUN)
        .await;
    }
    let mut dbs = Vec::new();
    for id in ["north", "south"] {
        let name = earshot_core::scope::group_database(&base, id);
        dbs.push(
            earshot_core::mongo::connect(server.uri(), &name)
                .await
                .unwrap(),
        );
    }
    let dbs: [mongodb::Database; 2] = dbs.try_into().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cli = dashboard::Cli::try_parse_from([
        "dashboard",
        "--groups-dir",
        groups.to_str().unwrap(),
        "--storage",
        root.to_str().unwrap(),
        "--mongodb-uri",
        server.uri(),
        "--database",
        &base,
        "--bind",
        &format!("127.0.0.1:{port}"),
    ])
    .unwrap();
    tokio::spawn(dashboard::run(cli));
    let site = format!("http://127.0.0.1:{port}");
    let http = client();
    for _ in 0..100 {
        if http.get(format!("{site}/")).send().await.is_ok() {
            return ServedGroups {
                site,
                dbs,
                _dir: deployment,
            };
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the dashboard of two groups does not listen");
}
