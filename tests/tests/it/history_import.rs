//! The Extended Streaming History import through the real pipeline (import → json-converter →
//! data-upload → create-collections) on the real test server: the counts `fixtures/facts.py` computes
//! with its own code, one play where the history and the API overlap (in either order), a re-import
//! that changes nothing, a `kill -9` in the middle, and no device field in any store.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::Utc;
use data_fetcher::import::import;
use earshot_core::layout::{self, RawKind};
use earshot_core::records::PlaySource;
use earshot_core::{Storage, mongo};
use earshot_state::import_progress::ImportState;
use earshot_testkit::fixtures::{
    HISTORY_DEVICE_FIELDS, HISTORY_PLATFORM, HistoryShape, Listening, fact_count,
    fixture_member_ids, fixtures_dir, history_dir, history_ip_addr, streaming_history,
};
use earshot_tests::{binary, converted_storage, fixture_group_config, fresh_database};
use mongodb::Database;
use mongodb::bson::{Document, doc};

mod resume;

fn export_of(member: &str) -> Vec<PathBuf> {
    vec![history_dir(&fixtures_dir(), member)]
}

async fn import_everyone(storage: &Storage) -> BTreeMap<String, ImportState> {
    let group = fixture_group_config();
    let mut states = BTreeMap::new();
    for member in fixture_member_ids() {
        let report = import(storage, &group, &member, &export_of(&member), Utc::now())
            .await
            .expect("importing");
        states.insert(member, report.state);
    }
    states
}

async fn convert_history(storage: &Storage) {
    let converter =
        json_converter::Converter::new(RawKind::StreamingHistory, fixture_group_config()).unwrap();
    let summary = json_converter::convert_storage(
        storage,
        &converter,
        &layout::raw_prefix(RawKind::StreamingHistory),
        false,
        false,
    )
    .await
    .expect("converting the history");
    assert!(summary.failed.is_empty(), "{:?}", summary.failed);
}

async fn upload(db: &Database, storage: &Storage, kind: RawKind) -> earshot_upload::Report {
    earshot_upload::load_storage(
        db,
        storage,
        kind,
        &layout::converted_prefix(kind),
        earshot_upload::LoadOptions::default(),
    )
    .await
    .expect("uploading")
}

async fn plays_of(db: &Database, member: &str, filter: Document) -> u64 {
    let mut filter = filter;
    filter.insert("user_id", member);
    db.collection::<Document>(mongo::RAW_RECENTLY_PLAYED)
        .count_documents(filter)
        .await
        .unwrap()
}

#[tokio::test]
async fn the_import_counts_what_facts_py_counts() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::local(dir.path());
    let states = import_everyone(&storage).await;
    let mut reasons: BTreeMap<String, u64> = BTreeMap::new();
    for (member, state) in &states {
        let fact = |name: &str| fact_count(&format!("history.{member}.{name}")) as u64;
        assert_eq!(state.plays, fact("kept"), "{member}: plays");
        assert_eq!(state.repeated, fact("repeated"), "{member}: repeated");
        assert_eq!(state.tracks, fact("tracks"), "{member}: tracks");
        assert_eq!(
            state.set_aside.values().sum::<u64>(),
            fact("set_aside"),
            "{member}: set aside"
        );
        assert!(state.first_play < state.last_play);
        assert_eq!(
            state.spoken,
            fact_count(&format!("spoken.{member}.plays")) as u64,
            "{member}: spoken plays"
        );
        for (reason, n) in &state.set_aside {
            *reasons.entry(reason.clone()).or_default() += n;
        }
    }
    for reason in ["episode", "audiobook", "no_track_uri", "incognito", "short"] {
        assert_eq!(
            reasons.get(reason).copied().unwrap_or(0),
            fact_count(&format!("history.set_aside.{reason}")) as u64,
            "{reason}"
        );
        assert!(reasons[reason] > 0, "the fixtures hold {reason} entries");
    }
    // The converter writes exactly the plays kept.
    convert_history(&storage).await;
    let mut ids = std::collections::HashSet::new();
    for key in storage
        .list(&layout::converted_prefix(RawKind::StreamingHistory))
        .await
        .unwrap()
    {
        let text = String::from_utf8(storage.read_all(&key).await.unwrap().to_vec()).unwrap();
        for line in text.lines() {
            let record: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(record["source"], "history");
            assert!(record["ms_played"].as_u64().unwrap() >= 30_000);
            ids.insert(record["_id"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(ids.len(), fact_count("history.kept"));
}

/// Loads the API plays and the history in `order`, then checks every member's plays.
async fn one_play_per_overlap(test: &str, history_first: bool) {
    let (_dir, storage) = converted_storage().await;
    import_everyone(&storage).await;
    convert_history(&storage).await;
    let db = fresh_database(test).await;
    let order = if history_first {
        [RawKind::StreamingHistory, RawKind::RecentlyPlayed]
    } else {
        [RawKind::RecentlyPlayed, RawKind::StreamingHistory]
    };
    let mut merged = 0;
    for kind in order {
        merged += upload(&db, &storage, kind).await.merged;
    }
    let mut expected_merged = 0;
    for member in fixture_member_ids() {
        let total = plays_of(&db, &member, doc! {}).await;
        assert_eq!(
            total,
            fact_count(&format!("plays_with_history.{member}")) as u64,
            "{member}: plays once both are loaded (history first: {history_first})"
        );
        let member_merged = fact_count(&format!("history.{member}.merged")) as u64;
        // Each merged play is the API's record, carrying the history's ms_played.
        let api_with_ms = plays_of(
            &db,
            &member,
            doc! {"source": PlaySource::Api.as_str(), "ms_played": {"$type": "number"}},
        )
        .await;
        assert_eq!(
            api_with_ms, member_merged,
            "{member}: API plays with ms_played"
        );
        assert_eq!(
            plays_of(&db, &member, doc! {"source": PlaySource::Api.as_str()}).await,
            fact_count(&format!("plays.{member}")) as u64,
            "{member}: every API play is kept"
        );
        expected_merged += member_merged;
    }
    assert!(expected_merged > 0, "the fixtures overlap");
    assert_eq!(merged, expected_merged);
    // Loading everything again changes nothing.
    for kind in order {
        let again = earshot_upload::load_storage(
            &db,
            &storage,
            kind,
            &layout::converted_prefix(kind),
            earshot_upload::LoadOptions {
                reload: true,
                ..earshot_upload::LoadOptions::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(
            (again.counts.inserted, again.counts.modified),
            (0, 0),
            "{kind:?} loaded again"
        );
    }
    // The derived collections take plays whose artists are not known yet.
    earshot_collections::build_with(
        &db,
        earshot_core::layout::Target::All,
        &fixture_group_config(),
        earshot_collections::BuildOptions {
            margin: Duration::ZERO,
            ..earshot_collections::BuildOptions::default()
        },
    )
    .await
    .expect("building with imported plays");
    for member in fixture_member_ids() {
        let doc = db
            .collection::<Document>(mongo::MEMBERS)
            .find_one(doc! {"_id": &member})
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            doc.get_i32("plays")
                .map(i64::from)
                .or(doc.get_i64("plays"))
                .unwrap() as usize,
            fact_count(&format!("plays_with_history.{member}")),
            "{member}: members.plays counts imported plays"
        );
    }
}

#[tokio::test]
async fn api_plays_then_history_are_one_play() {
    one_play_per_overlap("history_after_api", false).await;
}

#[tokio::test]
async fn history_then_api_plays_are_one_play() {
    one_play_per_overlap("history_before_api", true).await;
}

#[tokio::test]
async fn importing_again_or_a_later_export_adds_only_what_is_new() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::local(dir.path());
    let group = fixture_group_config();
    let member = fixture_member_ids().remove(0);
    // An earlier export: its first files only.
    let mut files: Vec<PathBuf> = std::fs::read_dir(history_dir(&fixtures_dir(), &member))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 3, "{files:?}");
    let first = import(&storage, &group, &member, &files[..2], Utc::now())
        .await
        .unwrap();
    assert_eq!(first.files_new, 2);
    assert!(first.state.plays < fact_count(&format!("history.{member}.kept")) as u64);
    // The whole export, later: only the rest is new, and the totals are the whole export's.
    let whole = import(&storage, &group, &member, &export_of(&member), Utc::now())
        .await
        .unwrap();
    assert_eq!(whole.files_new, files.len() - 2);
    assert_eq!(
        whole.state.plays,
        fact_count(&format!("history.{member}.kept")) as u64
    );
    // The same export again: nothing new, the same totals.
    let again = import(&storage, &group, &member, &export_of(&member), Utc::now())
        .await
        .unwrap();
    assert_eq!(again.files_new, 0);
    assert_eq!(
        ImportState {
            updated_at: None,
            ..again.state.clone()
        },
        ImportState {
            updated_at: None,
            ..whole.state.clone()
        }
    );
    let stored = storage
        .list(&layout::history_prefix(&member))
        .await
        .unwrap();
    assert_eq!(stored.len(), files.len());
    // A file that is not an export is refused, naming it.
    let bad = dir.path().join("Streaming_History_Audio_2024_9.json");
    std::fs::write(&bad, r#"[{"ts": "2024-01-01T00:00:00Z"}]"#).unwrap();
    let error = import(&storage, &group, &member, &[bad.clone()], Utc::now())
        .await
        .unwrap_err();
    let message = format!("{error:#}");
    assert!(
        message.contains(&bad.display().to_string()) && message.contains("ms_played"),
        "{message}"
    );
    // An unknown member is refused.
    let error = import(&storage, &group, "nobody", &export_of(&member), Utc::now())
        .await
        .unwrap_err();
    assert!(format!("{error:#}").contains("nobody"));
}
