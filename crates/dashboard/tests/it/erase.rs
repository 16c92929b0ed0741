//! After `members erase`, no dashboard page names the member: the dashboard stores nothing of its own
//! (sessions are signed cookies), and every store it reads has been cleared and recomputed.

use crate::common;

use common::{SNAPSHOT, crawl, run_binary, serve_stores};
use earshot_core::GroupConfig;
use earshot_testkit::fixtures::fixtures_dir;
use earshot_tests::exported_snapshot;
use reqwest::StatusCode;

#[tokio::test]
async fn after_an_erase_no_page_names_the_member() {
    let (db, dir, storage) = exported_snapshot("dashboard_erase", SNAPSHOT).await;
    let root = dir.path();
    let fixtures = fixtures_dir().join("group.toml");
    run_binary(
        "analytics",
        root,
        &db,
        &fixtures,
        &["--snapshot", SNAPSHOT, "--run", SNAPSHOT],
    );
    run_binary(
        "analytics",
        root,
        &db,
        &fixtures,
        &["--snapshot", SNAPSHOT, "--period", "2024-10"],
    );

    // Before: her pages and her name are there (what the search below must no longer find).
    let before = serve_stores(
        earshot_state::Stores {
            storage: storage.clone(),
            db: db.clone(),
            group: GroupConfig::load(&fixtures).unwrap(),
        },
        None,
    )
    .await;
    let pages = crawl(&before, &["/", "/status"]).await;
    assert!(
        pages
            .iter()
            .any(|(_, _, body)| body.contains("Chloé") && body.contains("chloe-r"))
    );

    // Chloé leaves the group: her entry goes from the config, then she is erased, and the daily export
    // and analytics run again (and the month's recap), as the DAG and the group would.
    let config = std::fs::read_to_string(&fixtures).unwrap();
    let entry = "[[members]]\nid = \"chloe-r\"\ndisplay_name = \"Chloé\"\n\n";
    assert!(config.contains(entry), "the fixture config lists Chloé");
    let without = root.join("group-without-chloe.toml");
    std::fs::write(&without, config.replace(entry, "")).unwrap();
    run_binary(
        "members",
        root,
        &db,
        &without,
        &["erase", "--member", "chloe-r", "--yes"],
    );
    let next = "20241112T090000Z";
    run_binary("gcs-export", root, &db, &without, &["--snapshot", next]);
    run_binary(
        "analytics",
        root,
        &db,
        &without,
        &["--snapshot", next, "--run", next],
    );
    run_binary(
        "analytics",
        root,
        &db,
        &without,
        &["--snapshot", next, "--period", "2024-10"],
    );

    let base = serve_stores(
        earshot_state::Stores {
            storage,
            db: db.clone(),
            group: GroupConfig::load(&without).unwrap(),
        },
        None,
    )
    .await;
    let pages = crawl(&base, &["/", "/recap", "/status", "/?period=2024-10"]).await;
    assert!(
        pages.len() > 50,
        "the crawl reached the member, pair, track and artist pages: {}",
        pages.len()
    );
    for (path, status, body) in &pages {
        assert!(
            status.is_success() || status.is_redirection(),
            "{path}: {status}"
        );
        for trace in ["chloe-r", "Chloé", "Chlo&#x27;", "Chlo\\u00e9"] {
            assert!(!body.contains(trace), "{path} still shows `{trace}`");
        }
    }
    let gone = reqwest::get(format!("{base}/member/chloe-r"))
        .await
        .unwrap();
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
}
