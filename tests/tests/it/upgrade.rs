//! `scripts/upgrade.sh`, the one migration: stores an earlier build wrote (plays and converted files
//! without the local day, hour and weekday the converter now writes) come to the current shape, equal
//! to what this build's pipeline writes, and a second run changes no stored row. Today's readers
//! refuse the older shape, naming the field, instead of reading around it.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use clap::ValueEnum as _;
use earshot_core::layout::RawKind;
use earshot_core::mongo;
use earshot_core::records::{LOCAL_DAY, LOCAL_DAY_NUMBER, LOCAL_HOUR, LOCAL_WEEKDAY, LocalTime};
use earshot_testkit::fixtures::fixtures_dir;
use earshot_testkit::mongo_server::MongoServer;
use mongodb::bson::{Bson, Document, doc};

/// The local-time fields an earlier build did not write.
const NEW_FIELDS: [&str; 4] = [LOCAL_DAY, LOCAL_HOUR, LOCAL_WEEKDAY, LOCAL_DAY_NUMBER];

/// The collections compared: the plays and what is built from them.
const COMPARED: [&str; 8] = [
    mongo::RAW_RECENTLY_PLAYED,
    mongo::RAW_SPOKEN,
    mongo::RAW_TOP_TRACKS,
    mongo::TRACKS,
    mongo::ALBUMS,
    mongo::ARTISTS,
    mongo::ARTIST_TRACK_LINK,
    mongo::MEMBERS,
];

async fn dump(db: &mongodb::Database) -> BTreeMap<String, Vec<Document>> {
    let mut all = BTreeMap::new();
    for name in COMPARED {
        let mut docs: Vec<Document> = Vec::new();
        let mut cursor = db
            .collection::<Document>(name)
            .find(doc! {})
            .sort(doc! {"_id": 1})
            .await
            .unwrap();
        while cursor.advance().await.unwrap() {
            docs.push(cursor.deserialize_current().unwrap());
        }
        all.insert(name.to_string(), docs);
    }
    all
}

/// Every converted file rewritten without the new fields, as an earlier build wrote it.
fn strip_converted(dir: &Path) -> usize {
    let mut stripped = 0;
    for (key, bytes) in earshot_tests::files_under(&dir.join("converted")) {
        let text = String::from_utf8(bytes).unwrap();
        let mut out = String::new();
        for line in text.lines() {
            let mut record: serde_json::Value = serde_json::from_str(line).unwrap();
            if let Some(object) = record.as_object_mut() {
                for field in NEW_FIELDS {
                    stripped += usize::from(object.remove(field).is_some());
                }
            }
            out.push_str(&record.to_string());
            out.push('\n');
        }
        std::fs::write(dir.join("converted").join(key), out).unwrap();
    }
    stripped
}

/// `command` on the test's stores, as the DAG's tasks run: its output.
fn on_stores(command: &mut Command, root: &Path, db: &mongodb::Database) -> std::process::Output {
    use earshot_core::env;
    command
        .env(env::EARSHOT_STORAGE, root)
        .env(env::EARSHOT_GROUP_CONFIG, fixtures_dir().join("group.toml"))
        .env(env::MONGODB_URI, MongoServer::shared().uri())
        .env(env::EARSHOT_DATABASE, db.name())
        .env(env::EARSHOT_LOG, "warn")
        .output()
        .unwrap()
}

#[tokio::test]
async fn the_upgrade_brings_an_earlier_builds_stores_to_the_current_shape() {
    let fixture = earshot_tests::Fixture {
        history: true,
        listens: true,
    };
    let (db, dir, _storage) = earshot_tests::pipeline_database_of("upgrade", fixture).await;
    let current = dump(&db).await;
    let plays = current[mongo::RAW_RECENTLY_PLAYED].len();
    assert!(plays > 1000 && !current[mongo::RAW_SPOKEN].is_empty());

    // An earlier build's stores: no local day, hour or weekday on any play or converted record.
    assert!(strip_converted(dir.path()) >= 4 * plays);
    for collection in [mongo::RAW_RECENTLY_PLAYED, mongo::RAW_SPOKEN] {
        let unset: Document = NEW_FIELDS
            .iter()
            .map(|f| (f.to_string(), Bson::String(String::new())))
            .collect();
        db.collection::<Document>(collection)
            .update_many(doc! {}, doc! {"$unset": unset})
            .await
            .unwrap();
    }
    // Today's export refuses them, naming the field, rather than reading around it.
    let refused = on_stores(
        &mut Command::new(earshot_tests::binary("gcs-export")),
        dir.path(),
        &db,
    );
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && stderr.contains("local_day"),
        "{stderr}"
    );

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/upgrade.sh");
    let bin_dir = earshot_tests::binary("json-converter")
        .parent()
        .unwrap()
        .to_path_buf();
    for program in [
        "data-upload",
        "create-collections",
        "gcs-export",
        "analytics",
    ] {
        earshot_tests::binary(program);
    }
    let upgrade = || {
        let out = on_stores(
            Command::new("bash")
                .arg(&script)
                .env(earshot_core::env::EARSHOT_BIN_DIR, &bin_dir),
            dir.path(),
            &db,
        );
        assert!(
            out.status.success(),
            "scripts/upgrade.sh: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    upgrade();

    // Every play carries the local time the converter computes from its instant.
    let zone = earshot_tests::fixture_group_config().zone().unwrap();
    let upgraded = dump(&db).await;
    for play in &upgraded[mongo::RAW_RECENTLY_PLAYED] {
        let at = chrono::DateTime::from_timestamp_millis(
            play.get_datetime("played_at").unwrap().timestamp_millis(),
        )
        .unwrap();
        let local = LocalTime::of(at, zone);
        assert_eq!(
            play.get_str(LOCAL_DAY),
            Ok(local.local_day.as_str()),
            "{play}"
        );
        assert_eq!(
            play.get_i32(LOCAL_HOUR),
            Ok(i32::from(local.local_hour)),
            "{play}"
        );
        assert_eq!(
            play.get_i32(LOCAL_WEEKDAY),
            Ok(i32::from(local.local_weekday)),
            "{play}"
        );
        assert_eq!(
            play.get_i64(LOCAL_DAY_NUMBER),
            Ok(local.local_day_number),
            "{play}"
        );
    }
    // The rows and the derived collections are what this build's pipeline writes.
    for (collection, documents) in &current {
        assert_eq!(upgraded[collection].len(), documents.len(), "{collection}");
        assert!(
            upgraded[collection] == *documents,
            "{collection} differs from this build's pipeline"
        );
    }
    // The fresh snapshot reads, and the analysis ran on it.
    let runs = db
        .collection::<Document>(mongo::ANALYTICS_RUNS)
        .count_documents(doc! {})
        .await
        .unwrap();
    assert_eq!(runs, 1);

    // A second run changes no stored row.
    upgrade();
    let again = dump(&db).await;
    assert!(again == upgraded, "a second upgrade changed stored rows");
}

/// The script converts every kind the converter knows.
#[test]
fn the_upgrade_converts_every_kind() {
    let script = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/upgrade.sh"),
    )
    .unwrap();
    let listed: Vec<&str> = script
        .lines()
        .find_map(|l| l.strip_prefix("KINDS=("))
        .and_then(|l| l.strip_suffix(')'))
        .expect("KINDS=(…) in scripts/upgrade.sh")
        .split_whitespace()
        .collect();
    let kinds: Vec<String> = RawKind::ALL
        .iter()
        .map(|k| k.to_possible_value().unwrap().get_name().to_string())
        .collect();
    assert_eq!(listed, kinds);
}
