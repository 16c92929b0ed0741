//! gcs-export on the fixture group: every collection's snapshot has the stable schema and every row,
//! parts and markers behave, re-runs rewrite the same bytes.

use std::collections::BTreeMap;

use earshot_core::export::{self, SUCCESS_MARKER};
use earshot_core::{Storage, mongo};
use earshot_testkit::fixtures::fact_count;
use earshot_testkit::mongo_server::MongoServer;
use gcs_export::{Sizes, export_collection, members_with_rows};
use mongodb::Database;
use mongodb::bson::{Bson, Document, doc};
use polars::prelude::*;

async fn loaded(test: &str) -> (Database, tempfile::TempDir, Storage) {
    earshot_tests::pipeline_database(test).await
}

fn read_snapshot(root: &std::path::Path, collection: &str, snapshot: &str) -> DataFrame {
    let folder = root.join(format!("exports/{collection}/snapshot={snapshot}"));
    let mut parts: Vec<_> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    parts.sort();
    let mut frames = parts.iter().map(|p| {
        ParquetReader::new(std::fs::File::open(p).unwrap())
            .finish()
            .unwrap()
    });
    let mut all = frames.next().expect("at least one part");
    for frame in frames {
        all.vstack_mut(&frame).unwrap();
    }
    all
}

/// The Parquet type a column must have, judged from the BSON values MongoDB holds for it (not from
/// the export schema): strings, integers, dates, booleans, doubles, arrays of strings, and nested
/// documents (images, written as JSON text). `None` when every value is null.
async fn type_from_data(db: &Database, collection: &str, column: &str) -> Option<DataType> {
    let mut cursor = db
        .collection::<Document>(collection)
        .find(doc! {column: {"$ne": null}})
        .await
        .unwrap();
    let mut seen: Option<DataType> = None;
    while cursor.advance().await.unwrap() {
        let document = cursor.deserialize_current().unwrap();
        let kind = match document.get(column).unwrap() {
            Bson::String(_) => DataType::String,
            Bson::Int32(_) | Bson::Int64(_) => DataType::Int64,
            Bson::Double(_) => DataType::Float64,
            Bson::Boolean(_) => DataType::Boolean,
            Bson::DateTime(_) => DataType::Datetime(TimeUnit::Milliseconds, Some(TimeZone::UTC)),
            Bson::Array(items)
                if items
                    .iter()
                    .all(|i| matches!(i, Bson::String(_) | Bson::Null)) =>
            {
                DataType::List(Box::new(DataType::String))
            }
            Bson::Array(_) | Bson::Document(_) => DataType::String,
            other => panic!("{collection}.{column}: unexpected {other:?}"),
        };
        if let Some(previous) = &seen {
            // An empty array says nothing about its items.
            if previous != &kind
                && !matches!(document.get(column), Some(Bson::Array(a)) if a.is_empty())
            {
                panic!("{collection}.{column}: both {previous:?} and {kind:?} in the data");
            }
        } else {
            seen = Some(kind);
        }
    }
    seen
}

const SIZES: Sizes = Sizes {
    batch_rows: 500,
    part_rows: 100_000,
};

#[tokio::test]
async fn every_collection_exports_with_its_schema_and_every_row() {
    let (db, dir, storage) = loaded("export_all").await;
    for collection in export::COLLECTIONS {
        let exported = export_collection(
            &db,
            &storage,
            collection,
            "20241111T090000Z",
            SIZES,
            &members(&db).await,
        )
        .await
        .unwrap();
        let count = db
            .collection::<Document>(collection)
            .count_documents(doc! {})
            .await
            .unwrap();
        assert_eq!(exported.rows, count, "{collection}");
        assert!(
            storage
                .exists(&format!(
                    "exports/{collection}/snapshot=20241111T090000Z/{SUCCESS_MARKER}"
                ))
                .await
                .unwrap()
        );
        let df = read_snapshot(dir.path(), collection, "20241111T090000Z");
        assert_eq!(df.height() as u64, count, "{collection}");
        let schema = export::schema(collection).unwrap();
        let names: Vec<&str> = df.get_column_names().iter().map(|n| n.as_str()).collect();
        assert_eq!(
            names,
            export::schema(collection)
                .unwrap()
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>(),
            "{collection}: column order (the stored ones, then the derived)"
        );
        for (name, _) in &schema {
            let column = df.column(name).unwrap();
            match type_from_data(&db, collection, name).await {
                Some(expected) => {
                    assert_eq!(column.dtype(), &expected, "{collection}.{name}")
                }
                None => assert_eq!(column.null_count(), df.height(), "{collection}.{name}"),
            }
        }
    }
    let plays = read_snapshot(dir.path(), mongo::RAW_RECENTLY_PLAYED, "20241111T090000Z");
    assert_eq!(plays.height(), fact_count("plays.total"));
    assert_eq!(
        plays.column("popularity").unwrap().null_count(),
        fact_count("plays.without_popularity"),
        "unknown stays null"
    );
    assert_eq!(
        plays.column("played_at").unwrap().dtype(),
        &DataType::Datetime(TimeUnit::Milliseconds, Some(TimeZone::UTC))
    );
    // The derived columns, computed once here: each play's day, hour and ISO weekday in the group's
    // zone (from its local time, checked here against chrono-tz directly) and its track key.
    let zone = chrono_tz::America::Los_Angeles;
    let at = plays
        .column("played_at")
        .unwrap()
        .datetime()
        .unwrap()
        .clone();
    let (days, hours, weekdays, keys) = (
        plays.column("local_day").unwrap().str().unwrap().clone(),
        plays.column("local_hour").unwrap().i64().unwrap().clone(),
        plays
            .column("local_weekday")
            .unwrap()
            .i64()
            .unwrap()
            .clone(),
        plays.column("track_key").unwrap().str().unwrap().clone(),
    );
    let (track_ids, track_names) = (
        plays.column("track_id").unwrap().str().unwrap().clone(),
        plays.column("track_name").unwrap().str().unwrap().clone(),
    );
    for i in 0..plays.height() {
        use chrono::{Datelike as _, Timelike as _};
        let local = chrono::DateTime::from_timestamp_millis(at.physical().get(i).unwrap())
            .unwrap()
            .with_timezone(&zone);
        assert_eq!(
            days.get(i),
            Some(local.format("%Y-%m-%d").to_string().as_str())
        );
        assert_eq!(hours.get(i), Some(i64::from(local.hour())));
        assert_eq!(
            weekdays.get(i),
            Some(i64::from(local.weekday().number_from_monday()))
        );
        let key = track_ids
            .get(i)
            .map(str::to_string)
            .unwrap_or_else(|| format!("local:{}", track_names.get(i).unwrap()));
        assert_eq!(keys.get(i), Some(key.as_str()));
    }
    let ids = plays.column("_id").unwrap().str().unwrap().clone();
    let edge = (0..plays.height())
        .find(|i| ids.get(*i) == Some("ana.mx|2024-11-03T09:30:00.000Z"))
        .unwrap();
    let played_at = plays.column("played_at").unwrap().get(edge).unwrap();
    assert_eq!(
        played_at,
        AnyValue::Datetime(
            1_730_626_200_000,
            TimeUnit::Milliseconds,
            Some(&TimeZone::UTC)
        )
    );
    let tracks = read_snapshot(dir.path(), mongo::TRACKS, "20241111T090000Z");
    assert_eq!(tracks.height(), fact_count("tracks.with_id"));
    assert_eq!(
        tracks.column("listeners").unwrap().dtype(),
        &DataType::List(Box::new(DataType::String))
    );
    assert_eq!(
        export::latest_complete_snapshot(&storage, mongo::TRACKS)
            .await
            .unwrap()
            .as_deref(),
        Some("20241111T090000Z")
    );
}

#[tokio::test]
async fn parts_split_and_a_rerun_rewrites_the_same_snapshot_whole() {
    let (db, dir, storage) = loaded("export_parts").await;
    let collection = mongo::RAW_RECENTLY_PLAYED;
    let small = Sizes {
        batch_rows: 300,
        part_rows: 1000,
    };
    let first = export_collection(&db, &storage, collection, "r1", small, &members(&db).await)
        .await
        .unwrap();
    assert_eq!(first.parts, fact_count("plays.total").div_ceil(1000));
    let files = |storage: Storage| async move {
        let mut out = BTreeMap::new();
        for key in storage.list("exports/").await.unwrap() {
            out.insert(key.clone(), storage.read_all(&key).await.unwrap());
        }
        out
    };
    let before = files(storage.clone()).await;
    export_collection(&db, &storage, collection, "r1", small, &members(&db).await)
        .await
        .unwrap();
    assert_eq!(
        files(storage.clone()).await,
        before,
        "a second run changes nothing"
    );
    // Fewer, larger parts: the stale ones are removed before the marker returns.
    let again = export_collection(&db, &storage, collection, "r1", SIZES, &members(&db).await)
        .await
        .unwrap();
    assert_eq!(again.parts, 1);
    let keys: Vec<String> = storage.list("exports/").await.unwrap();
    assert_eq!(
        keys,
        [
            format!("exports/{collection}/snapshot=r1/_SUCCESS"),
            format!("exports/{collection}/snapshot=r1/part-00000.parquet")
        ]
    );
    assert_eq!(
        read_snapshot(dir.path(), collection, "r1").height(),
        fact_count("plays.total")
    );
}

#[tokio::test]
async fn a_value_of_the_wrong_type_is_an_error_naming_the_document_and_field() {
    let server = MongoServer::shared();
    let db = mongo::connect(server.uri(), &server.database_name("export_bad"))
        .await
        .unwrap();
    db.collection::<Document>(mongo::MEMBERS)
        .insert_one(doc! {"_id": "ana.mx", "user_name": "Ana", "first_play": null, "last_play": null, "plays": "many", "listened_ms": 1, "unique_tracks": 1})
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::local(dir.path());
    let err = format!(
        "{:#}",
        export_collection(
            &db,
            &storage,
            mongo::MEMBERS,
            "r1",
            SIZES,
            &members(&db).await
        )
        .await
        .unwrap_err()
    );
    assert!(
        err.contains("members") && err.contains("ana.mx") && err.contains("`plays`"),
        "{err}"
    );
    assert!(
        !storage
            .exists(&format!("exports/members/snapshot=r1/{SUCCESS_MARKER}"))
            .await
            .unwrap(),
        "no marker: the snapshot is absent"
    );
    // A field the schema names but the document lacks is an error too, never a silent null.
    db.collection::<Document>(mongo::ARTISTS)
        .insert_one(doc! {"_id": "a1", "artist_name": "A", "artist_url": "u", "plays": 1, "tracks": [], "listeners": [], "first_played": mongodb::bson::DateTime::now()})
        .await
        .unwrap();
    let err = format!(
        "{:#}",
        export_collection(
            &db,
            &storage,
            mongo::ARTISTS,
            "r1",
            SIZES,
            &members(&db).await
        )
        .await
        .unwrap_err()
    );
    assert!(
        err.contains("Artists")
            && err.contains("a1")
            && err.contains("`last_played`")
            && err.contains("missing"),
        "{err}"
    );
    // An empty collection still yields a readable, typed, empty snapshot.
    let empty = export_collection(
        &db,
        &storage,
        mongo::ALBUMS,
        "r1",
        SIZES,
        &members(&db).await,
    )
    .await
    .unwrap();
    assert_eq!((empty.rows, empty.parts), (0, 1));
    let df = read_snapshot(dir.path(), mongo::ALBUMS, "r1");
    assert_eq!(df.height(), 0);
    assert_eq!(
        df.column("tracks").unwrap().dtype(),
        &DataType::List(Box::new(DataType::String))
    );
}

/// The members a run's markers list, read as `gcs-export` reads them once per run.
async fn members(db: &mongodb::Database) -> Vec<String> {
    members_with_rows(db).await.expect("reading the members")
}

/// `mongo::distinct`, which every distinct read goes through (a `$group`: the embedded server's own
/// `distinct` grew to 13.9 GiB over 1M plays): each value once, documents without the field left out,
/// the filter kept, the same values as the server's `distinct`.
#[tokio::test]
async fn distinct_values_are_read_with_a_group_as_distinct_gives_them() {
    let db = earshot_tests::fresh_database("distinct_values").await;
    let collection = db.collection::<Document>("values");
    for (n, member) in ["ana", "ben", "ana", "chloe", "ben"].iter().enumerate() {
        collection
            .insert_one(doc! {"_id": n as i32, "user_id": *member, "n": n as i32})
            .await
            .unwrap();
    }
    collection
        .insert_one(doc! {"_id": 99, "n": 99})
        .await
        .unwrap();
    let sorted = |values: Vec<Bson>| {
        let mut out: Vec<String> = values
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        out.sort();
        out
    };
    let ours = mongo::distinct(&db, "values", "user_id", doc! {})
        .await
        .unwrap();
    assert_eq!(sorted(ours), ["ana", "ben", "chloe"]);
    let servers = collection.distinct("user_id", doc! {}).await.unwrap();
    assert_eq!(sorted(servers), ["ana", "ben", "chloe"]);
    let filtered = mongo::distinct(&db, "values", "user_id", doc! {"n": {"$gte": 2}})
        .await
        .unwrap();
    assert_eq!(sorted(filtered), ["ana", "ben", "chloe"]);
    let later = mongo::distinct(&db, "values", "user_id", doc! {"n": {"$gte": 3}})
        .await
        .unwrap();
    assert_eq!(sorted(later), ["ben", "chloe"]);
    assert!(
        mongo::distinct(&db, "values", "absent", doc! {})
            .await
            .unwrap()
            .is_empty()
    );
}
