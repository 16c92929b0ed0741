//! Failures: an unreachable server, a run cut short, changed content, reloads and crashes.

use super::*;

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
        OPTIONS,
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
        OPTIONS,
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
        ..LoadOptions::default()
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
