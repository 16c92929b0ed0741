//! One dashboard serving two groups of one deployment (`--groups-dir`), each under `/g/<id>/` with its
//! own password: the fixture groups north and south (`fixtures/groups/`), which share Chloé, through
//! the pipeline by the binaries. Signed in to north, a crawl of every page it links finds no name, id
//! or track only south has; north's session cookie is refused on south's pages; the root names no
//! group.

use crate::common;

use std::collections::{BTreeSet, VecDeque};

use common::{client, login_form, serve_groups};
use dashboard::auth::SESSION_COOKIE;
use earshot_core::mongo;
use futures::TryStreamExt as _;
use mongodb::bson::{Document, doc};
use reqwest::StatusCode;
use reqwest::header::{LOCATION, SET_COOKIE};

/// Every track id and artist id in a group's plays and top tracks.
async fn ids(db: &mongodb::Database) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for collection in [mongo::RAW_RECENTLY_PLAYED, mongo::RAW_TOP_TRACKS] {
        let rows: Vec<Document> = db
            .collection::<Document>(collection)
            .find(doc! {})
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        for row in rows {
            if let Ok(id) = row.get_str("track_id") {
                out.insert(id.to_string());
            }
            if let Ok(artists) = row.get_array("artist_ids") {
                out.extend(
                    artists
                        .iter()
                        .filter_map(|a| a.as_str())
                        .map(str::to_string),
                );
            }
        }
    }
    out
}

/// Sign in to the group at `group_url` (`http://…/g/<id>`): its session cookie (`name=value`).
async fn sign_in(http: &reqwest::Client, group_url: &str, password: &str) -> String {
    let (nonce, token) = login_form(http, group_url).await;
    let response = http
        .post(format!("{group_url}/login"))
        .header("cookie", nonce)
        .form(&[("password", password), ("csrf", &token)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "signed in");
    let session = response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| {
            c.starts_with(&format!("{SESSION_COOKIE}="))
                && !c.starts_with(&format!("{SESSION_COOKIE}=;"))
        })
        .expect("a session cookie");
    let path = group_url
        .split_once("/g/")
        .map(|(_, id)| format!("Path=/g/{id};"))
        .unwrap();
    assert!(
        session.contains(&path),
        "the session is the group's only: {session}"
    );
    session.split(';').next().unwrap().to_string()
}

/// `path` of the site, asked for with a session cookie (`name=value`).
async fn get_as(http: &reqwest::Client, site: &str, cookie: &str, path: &str) -> reqwest::Response {
    http.get(format!("{site}{path}"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
}

/// A page with the entities the templates escape with decoded (`&#x2f;` is `/`).
fn decoded(body: &str) -> String {
    [
        ("&#x2f;", "/"),
        ("&#x27;", "'"),
        ("&#x3d;", "="),
        ("&quot;", "\""),
        ("&lt;", "<"),
        ("&gt;", ">"),
        ("&amp;", "&"),
    ]
    .iter()
    .fold(body.to_string(), |text, (entity, c)| {
        text.replace(entity, c)
    })
}

/// Every `href="…"` and `action="…"` of a page (decoded).
fn links(body: &str) -> Vec<String> {
    let mut out = Vec::new();
    for attribute in ["href=\"", "action=\""] {
        for piece in body.split(attribute).skip(1) {
            out.push(piece.split('"').next().unwrap().to_string());
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_group_sees_only_its_own_pages() {
    let served = serve_groups("dashboard_groups").await;
    let (north_db, south_db) = (&served.dbs[0], &served.dbs[1]);
    let north_ids = ids(north_db).await;
    let south_only: BTreeSet<String> = ids(south_db)
        .await
        .difference(&north_ids)
        .cloned()
        .collect();
    // The fixture friends' tastes overlap: few tracks are south's alone, but some are.
    assert!(
        !south_only.is_empty(),
        "south has a track or artist of its own"
    );
    // South's own members, by id and by name as a page shows them.
    let mut needles: Vec<String> = vec![
        "dev.p".into(),
        "Emi 🎧".into(),
        ">Dev<".into(),
        "/member/emi".into(),
    ];
    needles.extend(south_only);

    let site = served.site.clone();
    let http = client();

    // The root and anything outside the groups' paths: 404, naming no group.
    for path in ["/", "/member/ana.mx", "/g/", "/g/west", "/status"] {
        let response = http.get(format!("{site}{path}")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        let body = response.text().await.unwrap();
        assert!(
            !body.contains("north") && !body.contains("south"),
            "{path}: {body}"
        );
    }
    // The health check, open without a session: every group's at the root, each group's under it;
    // it names no group.
    for path in ["/healthz", "/g/north/healthz", "/g/south/healthz"] {
        let response = http.get(format!("{site}{path}")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(
            response.text().await.unwrap(),
            r#"{"status":"ok","mongodb":"ok"}"#,
            "{path}"
        );
    }
    // A typed address with a slash leads to the group's page.
    let response = http.get(format!("{site}/g/north/")).send().await.unwrap();
    assert_eq!(response.headers()[LOCATION], "/g/north");
    // Signed out, a group's pages lead to its own sign-in.
    let response = http
        .get(format!("{site}/g/north/status"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()[LOCATION],
        "/g/north/login?next=%2Fg%2Fnorth%2Fstatus"
    );

    let north = sign_in(&http, &format!("{site}/g/north"), "north password").await;
    // North's password does not open south.
    let (nonce, token) = login_form(&http, &format!("{site}/g/south")).await;
    let wrong = http
        .post(format!("{site}/g/south/login"))
        .header("cookie", nonce)
        .form(&[("password", "north password"), ("csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    // North's session is refused on south's pages.
    for path in ["/g/south", "/g/south/member/chloe-r", "/g/south/status"] {
        let response = get_as(&http, &site, &north, path).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{path}");
        assert!(
            response.headers()[LOCATION]
                .to_str()
                .unwrap()
                .starts_with("/g/south/login"),
            "{path}"
        );
    }

    // The crawl: every page north's pages link to, none naming what only south has.
    let mut queue = VecDeque::from(["/g/north".to_string()]);
    let mut seen = BTreeSet::from(["/g/north".to_string()]);
    let mut pages = 0;
    while let Some(path) = queue.pop_front() {
        let response = get_as(&http, &site, &north, &path).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let body = decoded(&response.text().await.unwrap());
        pages += 1;
        for needle in &needles {
            assert!(
                !body.contains(needle.as_str()),
                "{path} names south's `{needle}`"
            );
        }
        for link in links(&body) {
            if link.starts_with("https://open.spotify.com/") {
                continue; // Spotify's own page of a track or artist
            }
            assert!(
                link.starts_with("/g/north/")
                    || link == "/g/north"
                    || link.starts_with("/g/north?"),
                "{path} links outside north: {link}"
            );
            let page = !link.starts_with("/g/north/static/")
                && !link.starts_with("/g/north/favicon")
                && !link.starts_with("/g/north/logout");
            if page && seen.insert(link.clone()) && seen.len() < 400 {
                queue.push_back(link);
            }
        }
    }
    assert!(pages > 30, "the crawl reached north's pages: {pages}");
    assert!(
        seen.iter().any(|p| p.contains("/member/chloe-r")),
        "the shared member's page is north's too"
    );

    // South, signed in with its own password, shows its own members.
    let south = sign_in(&http, &format!("{site}/g/south"), "south password").await;
    let body = get_as(&http, &site, &south, "/g/south")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        body.contains("Emi 🎧") && body.contains("/g/south/member/dev.p"),
        "south's page"
    );
    assert!(
        !body.contains("ana.mx") && !body.contains("ben_k"),
        "south's page names north's members"
    );
}
