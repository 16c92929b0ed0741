//! "Your data": a signed-in friend's own, their export, hiding from comparisons.

use super::*;

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
            earshot_testkit::mongo_server::MongoServer::shared().uri(),
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
