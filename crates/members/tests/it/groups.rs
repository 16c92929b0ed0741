//! Several groups in one deployment, each walled off from the others.
//!
//! Two fixture groups (`fixtures/groups/north.toml`, `south.toml`) share Chloé's Spotify account and
//! one app. Both run through the pipeline by the binaries, as the DAG's tasks run them, in one
//! deployment (one storage root, one MongoDB server and deployment database name):
//! - each group's stores hold only its own members, and its answers equal those of the group run
//!   alone (a single-group deployment of the same members);
//! - erasing the shared member from one group leaves the other group's stores exactly as they were,
//!   checked by the same search of every store the erase test uses.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use earshot_core::layout;
use earshot_core::scope::{GROUPS_PREFIX, group_database, group_storage};
use earshot_core::{GroupConfig, Storage, mongo};
use earshot_testkit::fixtures::fixtures_dir;
use earshot_testkit::mongo_server::MongoServer;
use earshot_tests::{Place, files_under};
use mongodb::Database;
use mongodb::bson::Bson;
use serde_json::Value;

use crate::common;
use common::{canonical, find_traces};

/// The member both groups have.
const SHARED: &str = "chloe-r";
/// The daily run's snapshot and run id.
const RUN: &str = "20250101T000000Z";

fn group_file(id: &str) -> PathBuf {
    fixtures_dir().join("groups").join(format!("{id}.toml"))
}

/// The fields that say when a step ran (the ledgers', the watermarks' and the runs'), not what it
/// computed.
const WHEN: &[&str] = &[
    earshot_core::ledger::LOADED_AT,
    mongo::WATERMARK_THROUGH,
    "stored_at", // earshot_core::mongo::AnalyticsRun::stored_at
];

/// A value without the [`WHEN`] fields, at any depth.
fn without_when(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|k, _| !WHEN.contains(&k.as_str()));
            map.values_mut().for_each(without_when);
        }
        Value::Array(items) => items.iter_mut().for_each(without_when),
        _ => {}
    }
}

/// Every collection's canonical rows, without the [`WHEN`] fields.
async fn database_rows(db: &Database) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    earshot_tests::each_document(db, |name, document| {
        let mut value = Bson::Document(document).into_relaxed_extjson();
        without_when(&mut value);
        out.entry(name.to_string())
            .or_default()
            .insert(canonical(&value));
    })
    .await;
    out
}

/// The report's members, canonical (`generated_at` aside, the report is the run's answers).
fn report_members(root: &Path) -> String {
    let path = root.join(layout::report_key(RUN, layout::REPORT_JSON));
    let report: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    canonical(&report["members"])
}

async fn connect(database: &str) -> Database {
    mongo::connect(MongoServer::shared().uri(), database)
        .await
        .unwrap()
}

/// A group's config text without `member`'s `[[members]]` entry.
fn config_without(id: &str, member: &str) -> String {
    let text = std::fs::read_to_string(group_file(id)).unwrap();
    let mut blocks = text.split("[[members]]");
    let mut out = blocks.next().unwrap().to_string();
    for block in blocks {
        if !block.contains(&format!("id = \"{member}\"")) {
            out.push_str("[[members]]");
            out.push_str(block);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_groups_in_one_deployment_are_walled_off_and_answer_as_if_alone() {
    let server = MongoServer::shared();
    let deployment = tempfile::tempdir().unwrap();
    let root = deployment.path().join("storage");
    let base = server.database_name("groups");
    let (north_file, south_file) = (group_file("north"), group_file("south"));
    let north = Place {
        root: &root,
        database: &base,
        config: &north_file,
    };
    let south = Place {
        config: &south_file,
        ..north
    };
    for (place, id) in [(&north, "north"), (&south, "south")] {
        let logs = place.pipeline(RUN).await;
        for log in &logs {
            assert!(
                log.contains(&format!("\"group\":\"{id}\"")),
                "every step logs its group: {log}"
            );
        }
    }

    // Nothing outside the groups' databases and prefixes.
    let top: Vec<String> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(top, [GROUPS_PREFIX], "only the groups' folders at the root");
    assert!(
        connect(&base)
            .await
            .list_collection_names()
            .await
            .unwrap()
            .is_empty(),
        "the deployment's database name itself holds nothing"
    );

    let (north_root, south_root) = (
        PathBuf::from(group_storage(root.to_str().unwrap(), "north").unwrap()),
        PathBuf::from(group_storage(root.to_str().unwrap(), "south").unwrap()),
    );
    let (north_db, south_db) = (
        connect(&group_database(&base, "north")).await,
        connect(&group_database(&base, "south")).await,
    );
    let north_storage = Storage::local(&north_root);
    let south_storage = Storage::local(&south_root);
    // Each group's stores name none of the other group's own members (Dev and Emi are south's only,
    // Ana and Ben north's only), and both hold the shared member.
    let north_traces = find_traces(
        &north_db,
        &north_storage,
        &north_root,
        &["dev.p", "Emi 🎧", "user=emi"],
    )
    .await;
    assert!(
        north_traces.is_empty(),
        "south's members in north:\n{}",
        north_traces.join("\n")
    );
    let south_traces =
        find_traces(&south_db, &south_storage, &south_root, &["ana.mx", "ben_k"]).await;
    assert!(
        south_traces.is_empty(),
        "north's members in south:\n{}",
        south_traces.join("\n")
    );
    for (db, storage, dir) in [
        (&north_db, &north_storage, &north_root),
        (&south_db, &south_storage, &south_root),
    ] {
        assert!(
            find_traces(db, storage, dir, &[SHARED]).await.len() > 10,
            "the shared member is in both groups"
        );
    }

    // Each group's answers equal those of the group run alone: its config without `id`, in a
    // deployment of its own (today's single-group layout).
    for (id, db, dir) in [
        ("north", &north_db, &north_root),
        ("south", &south_db, &south_root),
    ] {
        let alone_dir = deployment.path().join(format!("alone-{id}"));
        let alone_config = deployment.path().join(format!("alone-{id}.toml"));
        let text = std::fs::read_to_string(group_file(id)).unwrap();
        std::fs::write(&alone_config, text.replace(&format!("id = \"{id}\"\n"), "")).unwrap();
        assert!(GroupConfig::load(&alone_config).unwrap().id.is_none());
        let alone_db_name = server.database_name(&format!("groups_alone_{id}"));
        let alone = Place {
            root: &alone_dir,
            database: &alone_db_name,
            config: &alone_config,
        };
        alone.pipeline(RUN).await;
        assert!(
            files_under(&alone_dir)
                .keys()
                .all(|k| !k.starts_with(GROUPS_PREFIX)),
            "a config without id keeps today's layout"
        );
        let alone_db = connect(&alone_db_name).await;
        let (ours, theirs) = (database_rows(db).await, database_rows(&alone_db).await);
        assert_eq!(
            ours.keys().collect::<Vec<_>>(),
            theirs.keys().collect::<Vec<_>>(),
            "{id}: the same collections"
        );
        let differ: Vec<String> = ours
            .iter()
            .filter(|(collection, rows)| *rows != &theirs[*collection])
            .map(|(collection, rows)| {
                let d: Vec<_> = rows
                    .symmetric_difference(&theirs[collection])
                    .take(2)
                    .collect();
                format!("{collection}: {d:?}")
            })
            .collect();
        assert!(
            differ.is_empty(),
            "{id}: differs from the group run alone:\n{}",
            differ.join("\n")
        );
        assert_eq!(
            report_members(dir),
            report_members(&alone_dir),
            "{id}: report.json members"
        );
        let (ours, theirs) = (files_under(dir), files_under(&alone_dir));
        assert_eq!(
            ours.keys().collect::<Vec<_>>(),
            theirs.keys().collect::<Vec<_>>(),
            "{id}: the same storage keys"
        );
        for (key, bytes) in &ours {
            if key.ends_with(".parquet") {
                assert!(
                    bytes == &theirs[key],
                    "{id}: {key} differs from the group run alone"
                );
            }
        }
    }

    // Chloé leaves north: north's admin removes her from north's config and erases her there.
    let before_rows = database_rows(&south_db).await;
    let before_files = files_under(&south_root);
    let leaving = deployment.path().join("north-without.toml");
    std::fs::write(&leaving, config_without("north", SHARED)).unwrap();
    let north_after = Place {
        config: &leaving,
        ..north
    };
    let erased = north_after.run("members", &["erase", "--member", SHARED, "--yes"]);
    assert!(erased.contains("\"group\":\"north\""), "{erased}");
    let traces = find_traces(&north_db, &north_storage, &north_root, &[SHARED, "Chloé"]).await;
    assert!(
        traces.is_empty(),
        "north keeps traces of her:\n{}",
        traces.join("\n")
    );
    let after_rows = database_rows(&south_db).await;
    assert_eq!(
        before_rows.keys().collect::<Vec<_>>(),
        after_rows.keys().collect::<Vec<_>>()
    );
    for (collection, rows) in &before_rows {
        assert!(
            rows == &after_rows[collection],
            "south's {collection} changed by north's erase"
        );
    }
    assert!(
        files_under(&south_root) == before_files,
        "south's storage changed by north's erase"
    );
    assert!(
        find_traces(&south_db, &south_storage, &south_root, &[SHARED])
            .await
            .len()
            > 10,
        "south still holds her"
    );
    // North's next daily run works without her; south's is untouched by it.
    north_after.run("gcs-export", &["--snapshot", "20250102T000000Z"]);
    north_after.run(
        "analytics",
        &[
            "--snapshot",
            "20250102T000000Z",
            "--run",
            "20250102T000000Z",
        ],
    );
    assert!(files_under(&south_root) == before_files);
}
