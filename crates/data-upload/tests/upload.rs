//! data-upload against the MongoDB-wire dev server (or `EARSHOT_TEST_MONGODB_URI`), on the fixture
//! group converted by json-converter.

use bytes::Bytes;
use earshot_core::layout::{self, RawKind};
use earshot_core::mongo::connect;
use earshot_testkit::fixtures::{fact, fact_count, fixture_member_ids};
use earshot_testkit::mongo_server::MongoServer;
use earshot_upload::{LoadOptions, Upserter, load_storage};
use mongodb::bson::{Bson, Document, doc};

use earshot_tests::converted_storage;

#[path = "upload/failures.rs"]
mod failures;

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
            ..LoadOptions::default()
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
            ..LoadOptions::default()
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
        LoadOptions::default(),
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
        LoadOptions::default(),
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
            ..LoadOptions::default()
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
