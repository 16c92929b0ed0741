//! data-upload against the MongoDB-wire dev server (or `EARSHOT_TEST_MONGODB_URI`), on the fixture
//! group converted by json-converter.

use bytes::Bytes;
use earshot_core::layout::{self, RawKind};
use earshot_testkit::fixtures::{fact, fact_count, fixture_member_ids};
use earshot_testkit::mongo::MongoServer;
use earshot_upload::{LoadOptions, Upserter, connect, load_storage};
use mongodb::bson::{Bson, Document, doc};

use earshot_tests::converted_storage;

async fn database(test: &str) -> mongodb::Database {
    let server = MongoServer::shared();
    connect(server.uri(), &server.database_name(test))
        .await
        .unwrap()
}

#[tokio::test]
async fn a_second_upload_inserts_nothing_and_modifies_nothing() {
    let (_dir, storage) = converted_storage().await;
    let db = database("upload_twice").await;
    let total = fact_count("plays.total") as u64;
    let first = load_storage(
        &db,
        &storage,
        RawKind::RecentlyPlayed,
        &layout::converted_prefix(RawKind::RecentlyPlayed),
        LoadOptions {
            batch_size: 200,
            reload: false,
            match_tolerance_ms: earshot_upload::DEFAULT_MATCH_TOLERANCE_MS,
        },
    )
    .await
    .unwrap();
    assert_eq!(
        (
            first.counts.read,
            first.counts.inserted,
            first.counts.modified
        ),
        (total, total, 0)
    );
    // Every file again (the ledger would skip them all): the same records change nothing.
    let second = load_storage(
        &db,
        &storage,
        RawKind::RecentlyPlayed,
        &layout::converted_prefix(RawKind::RecentlyPlayed),
        LoadOptions {
            batch_size: 200,
            reload: true,
            match_tolerance_ms: earshot_upload::DEFAULT_MATCH_TOLERANCE_MS,
        },
    )
    .await
    .unwrap();
    assert_eq!(
        (
            second.counts.read,
            second.counts.inserted,
            second.counts.modified,
            second.counts.unchanged
        ),
        (total, 0, 0, total)
    );
    let plays = db.collection::<Document>(RawKind::RecentlyPlayed.collection());
    assert_eq!(plays.count_documents(doc! {}).await.unwrap(), total);
    for member in fixture_member_ids() {
        let n = plays
            .count_documents(doc! {"user_id": &member})
            .await
            .unwrap();
        assert_eq!(n, fact_count(&format!("plays.{member}")) as u64, "{member}");
    }
    // Times are BSON dates; the local string sits beside them.
    let edge = plays
        .find_one(doc! {"_id": "ana.mx|2024-11-03T09:30:00.000Z"})
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(edge.get("played_at"), Some(Bson::DateTime(_))));
    assert_eq!(
        edge.get_str("played_at_local").unwrap(),
        "2024-11-03 01:30:00 PST"
    );
    // The indexes the queries need exist.
    let names = plays.list_index_names().await.unwrap();
    for index in ["user_played_at", "track_id", "artist_ids"] {
        assert!(names.iter().any(|n| n == index), "{index} in {names:?}");
    }
}

#[tokio::test]
async fn top_items_keep_one_row_per_member_range_day_and_rank() {
    let (_dir, storage) = converted_storage().await;
    let db = database("upload_top").await;
    let report = load_storage(
        &db,
        &storage,
        RawKind::TopTracks,
        &layout::converted_prefix(RawKind::TopTracks),
        LoadOptions {
            batch_size: 1000,
            reload: false,
            match_tolerance_ms: earshot_upload::DEFAULT_MATCH_TOLERANCE_MS,
        },
    )
    .await
    .unwrap();
    let rows = db.collection::<Document>(RawKind::TopTracks.collection());
    let ranked = fact_count("top_tracks.rows") as u64;
    assert_eq!(
        (report.counts.read, report.counts.inserted),
        (ranked, ranked)
    );
    assert_eq!(rows.count_documents(doc! {}).await.unwrap(), ranked);
    // The original kept one document per member; now every (range, rank) of each member survives,
    // ranks 1..n without a hole, under the `_id` core's formula gives.
    for member in fixture_member_ids() {
        for range in ["short_term", "medium_term", "long_term"] {
            let mut cursor = rows
                .find(doc! {"user_id": &member, "time_range": range})
                .sort(doc! {"rank": 1})
                .await
                .unwrap();
            let mut rank = 0;
            while cursor.advance().await.unwrap() {
                let row = cursor.deserialize_current().unwrap();
                rank += 1;
                assert_eq!(
                    row.get_i64("rank")
                        .unwrap_or_else(|_| row.get_i32("rank").unwrap().into()),
                    rank
                );
                let day = chrono::NaiveDate::parse_from_str(
                    row.get_str("date_data_fetched").unwrap(),
                    "%Y-%m-%d",
                )
                .unwrap();
                assert_eq!(
                    row.get_str("_id").unwrap(),
                    earshot_core::mongo::top_item_id(
                        &member,
                        range.parse().unwrap(),
                        day,
                        rank as u32
                    )
                );
            }
            assert!(rank > 0, "{member} {range}: no rows");
        }
    }
    let first = rows
        .find_one(doc! {"user_id": "ana.mx", "time_range": "long_term", "rank": 1})
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        format!(
            "{} [{}]",
            first.get_str("track_name").unwrap(),
            first.get_str("track_id").unwrap()
        ),
        fact("top_tracks.ana.mx.long_term.1")
    );
    let artists = load_storage(
        &db,
        &storage,
        RawKind::TopArtists,
        &layout::converted_prefix(RawKind::TopArtists),
        LoadOptions {
            batch_size: 1000,
            reload: false,
            match_tolerance_ms: earshot_upload::DEFAULT_MATCH_TOLERANCE_MS,
        },
    )
    .await
    .unwrap();
    let ranked = fact_count("top_artists.rows") as u64;
    assert_eq!(
        (artists.counts.read, artists.counts.inserted),
        (ranked, ranked)
    );
    assert_eq!(
        db.collection::<Document>(RawKind::TopArtists.collection())
            .count_documents(doc! {})
            .await
            .unwrap(),
        ranked
    );
}

#[tokio::test]
async fn a_bad_file_is_rejected_whole_and_the_rest_loads() {
    let (_dir, storage) = converted_storage().await;
    let keys = storage
        .list(&format!(
            "{}user=emi/",
            layout::converted_prefix(RawKind::RecentlyPlayed)
        ))
        .await
        .unwrap();
    let victim = &keys[0];
    let text = String::from_utf8(storage.read_all(victim).await.unwrap().to_vec()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut broken = lines.clone();
    broken[1] = r#"{"_id":"emi|x","user_id":"emi"}"#;
    storage
        .write(victim, Bytes::from(broken.join("\n") + "\n"))
        .await
        .unwrap();
    let db = database("upload_bad").await;
    let report = load_storage(
        &db,
        &storage,
        RawKind::RecentlyPlayed,
        &layout::converted_prefix(RawKind::RecentlyPlayed),
        LoadOptions {
            batch_size: 100,
            reload: false,
            match_tolerance_ms: earshot_upload::DEFAULT_MATCH_TOLERANCE_MS,
        },
    )
    .await
    .unwrap();
    assert_eq!(report.failed, 1);
    let total = fact_count("plays.total") as u64;
    assert_eq!(
        report.counts.inserted,
        total - lines.len() as u64,
        "the bad file's good lines were not loaded either"
    );
    let plays = db.collection::<Document>(RawKind::RecentlyPlayed.collection());
    assert_eq!(
        plays
            .count_documents(doc! {"user_id": "emi", "_id": "emi|x"})
            .await
            .unwrap(),
        0
    );
}

#[tokio::test]
async fn an_unreachable_server_is_a_clear_error_without_the_password() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let uri = format!("mongodb://earshot:hunter2@127.0.0.1:{closed}/?serverSelectionTimeoutMS=500");
    let err = format!("{:#}", connect(&uri, "earshot").await.unwrap_err());
    assert!(
        err.contains("cannot reach MongoDB") && err.contains(&format!("127.0.0.1:{closed}")),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "the password leaked: {err}");
}

/// `uri` with the client's `appName`, so that a fail point can name this test's client alone.
fn scoped_uri(uri: &str, app: &str) -> String {
    let separator = if uri.contains('?') { '&' } else { '?' };
    let base = if uri.contains('?') || uri.trim_end_matches('/').matches('/').count() > 2 {
        uri.to_string()
    } else {
        format!("{}/", uri.trim_end_matches('/'))
    };
    format!("{base}{separator}appName={app}")
}

/// Make the server drop the connection of the client named `app` on its `update` after `skip` good
/// ones (MongoDB's `failCommand` fail point, as MongoDB's own tests set it). The fail point names the
/// client's `appName`, so on a shared MongoDB (`EARSHOT_TEST_MONGODB_URI`, started with
/// `--setParameter enableTestCommands=1`) no other test's commands fail; the dev server gets a server of
/// its own per test besides. A server without the fail point fails the test: it cannot check this.
async fn fail_updates(admin: &mongodb::Database, skip: i32, app: &str) {
    admin
        .run_command(doc! {
            "configureFailPoint": "failCommand",
            "mode": {"skip": skip},
            "data": {"failCommands": ["update"], "closeConnection": true, "appName": app},
        })
        .await
        .unwrap_or_else(|err| {
            panic!(
                "the failCommand fail point is needed (MongoDB: start mongod with `--setParameter \
                 enableTestCommands=1`): {err}"
            )
        });
}

/// MongoDB fails mid-run (the connection drops after three batches, through the `failCommand` fail
/// point as MongoDB's own tests set it): the run errors; the re-run completes the load with no
/// duplicates. A fail point is server-wide, so this test gets a dev server of its own.
#[tokio::test]
async fn a_failure_mid_run_is_finished_by_the_next_run() {
    let (_dir, storage) = converted_storage().await;
    let server = MongoServer::start().unwrap();
    let db = connect(&scoped_uri(server.uri(), "upload_midrun"), "upload_midrun")
        .await
        .unwrap();
    let admin = db.client().database("admin");
    fail_updates(&admin, 3, "upload_midrun").await;
    let failed = load_storage(
        &db,
        &storage,
        RawKind::RecentlyPlayed,
        &layout::converted_prefix(RawKind::RecentlyPlayed),
        LoadOptions {
            batch_size: 100,
            reload: false,
            match_tolerance_ms: earshot_upload::DEFAULT_MATCH_TOLERANCE_MS,
        },
    )
    .await;
    admin
        .run_command(doc! {"configureFailPoint": "failCommand", "mode": "off"})
        .await
        .unwrap();
    // The fourth `update` fails: a batch of plays, or the ledger entry written after one.
    let err = format!("{:#}", failed.unwrap_err());
    assert!(
        err.contains("rawdata_recentlyplayed") || err.contains(earshot_core::mongo::UPLOAD_LEDGER),
        "{err}"
    );
    let plays = db.collection::<Document>(RawKind::RecentlyPlayed.collection());
    let partial = plays.count_documents(doc! {}).await.unwrap();
    assert!(
        partial > 0 && partial % 100 == 0 && partial < fact_count("plays.total") as u64,
        "whole batches of 100 went in before the failure: {partial}"
    );
    let rerun = load_storage(
        &db,
        &storage,
        RawKind::RecentlyPlayed,
        &layout::converted_prefix(RawKind::RecentlyPlayed),
        LoadOptions {
            batch_size: 100,
            reload: false,
            match_tolerance_ms: earshot_upload::DEFAULT_MATCH_TOLERANCE_MS,
        },
    )
    .await
    .unwrap();
    let total = fact_count("plays.total") as u64;
    assert_eq!(rerun.counts.inserted, total - partial);
    assert_eq!(
        plays.count_documents(doc! {}).await.unwrap(),
        total,
        "no duplicates"
    );
}

#[tokio::test]
async fn upserting_changed_content_counts_a_modification() {
    let db = database("upload_modify").await;
    let mut upserter = Upserter::new(db.clone(), "scratch", 10);
    upserter.push(doc! {"_id": "a", "v": 1}).await.unwrap();
    upserter.flush().await.unwrap();
    let mut again = Upserter::new(db.clone(), "scratch", 10);
    again.push(doc! {"_id": "a", "v": 2}).await.unwrap();
    again.push(doc! {"_id": "b", "v": 1}).await.unwrap();
    again.flush().await.unwrap();
    assert_eq!(
        (
            again.counts.inserted,
            again.counts.modified,
            again.counts.unchanged
        ),
        (1, 1, 0)
    );
}

const OPTIONS: LoadOptions = LoadOptions {
    batch_size: 100,
    reload: false,
    match_tolerance_ms: earshot_upload::DEFAULT_MATCH_TOLERANCE_MS,
};

/// Issue #11: a file is loaded once. The ledger lists every file after its load; a second run reads
/// none of them; `--reload` reads them all again and changes nothing.
#[tokio::test]
async fn a_file_is_loaded_once_and_reload_loads_it_again() {
    let (_dir, storage) = converted_storage().await;
    let db = database("upload_ledger").await;
    let prefix = layout::converted_prefix(RawKind::RecentlyPlayed);
    let files = storage.list(&prefix).await.unwrap().len();
    let total = fact_count("plays.total") as u64;
    let first = load_storage(&db, &storage, RawKind::RecentlyPlayed, &prefix, OPTIONS)
        .await
        .unwrap();
    assert_eq!(
        (first.files, first.skipped, first.counts.inserted),
        (files, 0, total)
    );
    let ledger = db.collection::<Document>(earshot_core::mongo::UPLOAD_LEDGER);
    assert_eq!(ledger.count_documents(doc! {}).await.unwrap(), files as u64);
    let entry = ledger.find_one(doc! {}).await.unwrap().unwrap();
    let key = entry.get_str("_id").unwrap();
    let records = entry.get_i64("records").unwrap() as u64;
    assert_eq!(
        records,
        storage
            .read_all(key)
            .await
            .unwrap()
            .iter()
            .filter(|b| **b == b'\n')
            .count() as u64,
        "the entry counts its file's records"
    );
    assert_eq!(
        entry
            .get_document("keys")
            .unwrap()
            .get_array("_id")
            .unwrap()
            .len() as u64,
        records,
        "and names each play"
    );
    assert!(entry.get_datetime("loaded_at").is_ok());

    let second = load_storage(&db, &storage, RawKind::RecentlyPlayed, &prefix, OPTIONS)
        .await
        .unwrap();
    assert_eq!(
        (second.files, second.skipped, second.counts.read),
        (0, files, 0)
    );

    let reload = LoadOptions {
        reload: true,
        ..OPTIONS
    };
    let again = load_storage(&db, &storage, RawKind::RecentlyPlayed, &prefix, reload)
        .await
        .unwrap();
    assert_eq!(
        (
            again.files,
            again.counts.inserted,
            again.counts.modified,
            again.counts.unchanged
        ),
        (files, 0, 0, total)
    );
    assert_eq!(ledger.count_documents(doc! {}).await.unwrap(), files as u64);
}

/// Issue #11: a crash after a file's upserts but before its ledger entry (the ledger write fails, as a
/// lost connection would make it) leaves the file unlisted; the next run loads it again, which
/// duplicates nothing, and lists it. A fail point is server-wide: a dev server of its own.
#[tokio::test]
async fn a_crash_before_the_ledger_entry_is_finished_by_the_next_run() {
    let (_dir, storage) = converted_storage().await;
    let server = MongoServer::start().unwrap();
    let db = connect(
        &scoped_uri(server.uri(), "upload_ledger_crash"),
        "upload_ledger_crash",
    )
    .await
    .unwrap();
    let prefix = layout::converted_prefix(RawKind::RecentlyPlayed);
    let files = storage.list(&prefix).await.unwrap().len();
    let admin = db.client().database("admin");
    // One batch holds every play: the first `update` (the plays' upserts) succeeds, the second (the
    // ledger's) loses its connection.
    fail_updates(&admin, 1, "upload_ledger_crash").await;
    let one_batch = LoadOptions {
        batch_size: 100_000,
        reload: false,
        match_tolerance_ms: earshot_upload::DEFAULT_MATCH_TOLERANCE_MS,
    };
    let crashed = load_storage(&db, &storage, RawKind::RecentlyPlayed, &prefix, one_batch).await;
    admin
        .run_command(doc! {"configureFailPoint": "failCommand", "mode": "off"})
        .await
        .unwrap();
    let err = format!("{:#}", crashed.unwrap_err());
    assert!(err.contains(earshot_core::mongo::UPLOAD_LEDGER), "{err}");
    let plays = db.collection::<Document>(RawKind::RecentlyPlayed.collection());
    let ledger = db.collection::<Document>(earshot_core::mongo::UPLOAD_LEDGER);
    let total = fact_count("plays.total") as u64;
    assert_eq!(
        plays.count_documents(doc! {}).await.unwrap(),
        total,
        "the upserts were made"
    );
    assert_eq!(
        ledger.count_documents(doc! {}).await.unwrap(),
        0,
        "no file is listed"
    );

    let rerun = load_storage(&db, &storage, RawKind::RecentlyPlayed, &prefix, one_batch)
        .await
        .unwrap();
    assert_eq!(
        (
            rerun.files,
            rerun.counts.inserted,
            rerun.counts.modified,
            rerun.counts.unchanged
        ),
        (files, 0, 0, total),
        "loaded again, nothing duplicated or changed"
    );
    assert_eq!(plays.count_documents(doc! {}).await.unwrap(), total);
    assert_eq!(ledger.count_documents(doc! {}).await.unwrap(), files as u64);
}
