//! A member's data rights, on the fixture group carried through the whole pipeline (fetch pages and an
//! imported streaming history → convert → upload → collections → Parquet export → analytics with its
//! report and charts), against the test MongoDB server and a storage folder:
//! - an export holds exactly the member's plays (the fixture facts' count) and no other member's data;
//! - an erase leaves no trace of the member in any store, and the other members' results equal those
//!   of a pipeline run without that member from the start.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::Utc;
use earshot_core::layout::{self, RawKind, Target};
use earshot_core::{GroupConfig, Storage, mongo};
use earshot_state::Stores;
use earshot_testkit::fixtures::{fact_count, fixtures_dir, history_dir, write_raw_pages};
use earshot_testkit::mongo::MongoServer;
use earshot_tests::{binary, fresh_database};
use futures::TryStreamExt as _;
use mongodb::Database;
use mongodb::bson::{Document, doc};
use serde_json::Value;

use crate::common;
use common::{canonical, rows};

/// The member the tests export and erase: a distinctive id and display name.
const MEMBER: &str = "chloe-r";
const NAME: &str = "Chloé";

/// The fixture group's config text without `without`'s `[[members]]` entry.
fn group_toml(without: Option<&str>) -> String {
    let text = std::fs::read_to_string(fixtures_dir().join("group.toml")).unwrap();
    let mut blocks = text.split("[[members]]");
    let mut out = blocks.next().unwrap().to_string();
    for block in blocks {
        if without.is_none_or(|m| !block.contains(&format!("id = \"{m}\""))) {
            out.push_str("[[members]]");
            out.push_str(block);
        }
    }
    out
}

struct Pipeline {
    _dir: tempfile::TempDir,
    root: PathBuf,
    storage: Storage,
    db: Database,
    group: GroupConfig,
    config: PathBuf,
}

impl Pipeline {
    fn stores(&self) -> Stores {
        Stores {
            storage: self.storage.clone(),
            db: self.db.clone(),
            group: self.group.clone(),
        }
    }

    /// A binary on this pipeline's stores, as the DAG's tasks run it, logging at `log`.
    fn command(&self, program: &str, args: &[&str], log: &str) -> Command {
        let mut command = Command::new(binary(program));
        command
            .args(args)
            .env("EARSHOT_STORAGE", &self.root)
            .env("EARSHOT_GROUP_CONFIG", &self.config)
            .env("MONGODB_URI", MongoServer::shared().uri())
            .env("EARSHOT_DATABASE", self.db.name())
            .env("EARSHOT_LOG", log);
        command
    }

    /// Run a binary on this pipeline's stores, as the DAG's tasks do.
    fn output(&self, program: &str, args: &[&str]) -> std::process::Output {
        self.command(program, args, "warn").output().unwrap()
    }

    fn run(&self, program: &str, args: &[&str]) {
        let out = self.output(program, args);
        assert!(
            out.status.success(),
            "{program} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Export every collection as `snapshot`, then analyse it as run `snapshot`, as the daily DAG does.
    fn export_and_analyse(&self, snapshot: &str) {
        self.run("gcs-export", &["--snapshot", snapshot]);
        self.run("analytics", &["--snapshot", snapshot, "--run", snapshot]);
    }
}

/// The fixture group through the pipeline, `without` a member from the start when given. Every member
/// present imports their streaming history too.
async fn pipeline(test: &str, without: Option<&str>) -> Pipeline {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::local(dir.path());
    let config = dir.path().join("group.toml");
    std::fs::write(&config, group_toml(without)).unwrap();
    let group = GroupConfig::load(&config).unwrap();
    write_raw_pages(&storage).await.unwrap();
    if let Some(member) = without {
        for prefix in layout::member_prefixes(member) {
            for key in storage.list(&prefix).await.unwrap() {
                storage.delete(&key).await.unwrap();
            }
        }
    }
    for member in group.members.iter().filter(|m| m.spotify) {
        data_fetcher::import::import(
            &storage,
            &group,
            &member.id,
            &[history_dir(&fixtures_dir(), &member.id)],
            Utc::now(),
        )
        .await
        .unwrap();
    }
    let db = fresh_database(test).await;
    for raw in RawKind::ALL {
        let converter = json_converter::Converter::new(raw, group.clone()).unwrap();
        let converted = json_converter::convert_storage(
            &storage,
            &converter,
            &layout::raw_prefix(raw),
            false,
            false,
        )
        .await
        .unwrap();
        assert!(converted.failed.is_empty(), "{:?}", converted.failed);
        earshot_upload::load_storage(
            &db,
            &storage,
            raw,
            &layout::converted_prefix(raw),
            earshot_upload::LoadOptions::default(),
        )
        .await
        .unwrap();
    }
    let options = earshot_collections::BuildOptions {
        mode: earshot_collections::Mode::Rebuild,
        ..earshot_collections::BuildOptions::default()
    };
    earshot_collections::build_with(&db, Target::All, &group, options)
        .await
        .unwrap();
    Pipeline {
        root: dir.path().to_path_buf(),
        _dir: dir,
        storage,
        db,
        group,
        config,
    }
}

/// A member's fetch state and encrypted tokens, in storage and in MongoDB, as `data-fetcher auth`
/// leaves them, and a track-catalogue entry for `track`, as `data-fetcher enrich` leaves it.
async fn connect(p: &Pipeline, member: &str, name: &str, track: &str) {
    let now = Utc::now();
    let state = earshot_state::fetch_state::MemberState {
        member: member.into(),
        display_name: name.into(),
        client_id: "earshot0test0client0id0000000000".into(),
        authorised_at: now,
        needs_reauth: None,
        cursor_after_ms: Some(now.timestamp_millis()),
        last_play_at: Some(now),
        last_fetch_at: Some(now),
        gaps: Vec::new(),
    };
    earshot_state::fetch_state::save(&p.storage, &state)
        .await
        .unwrap();
    let key = earshot_spotify::tokens::TokenKey::from_base64(
        &earshot_spotify::tokens::TokenKey::generate_base64().unwrap(),
    )
    .unwrap();
    let tokens = earshot_spotify::tokens::Tokens {
        access_token: "BQ-access".into(),
        expires_at: now,
        refresh_token: "AQ-refresh".into(),
        client_id: state.client_id.clone(),
        scope: "user-read-recently-played user-top-read".into(),
    };
    for store in [
        earshot_spotify::tokens::TokenStore::Storage(p.storage.clone(), key.clone()),
        earshot_spotify::tokens::TokenStore::Mongo(p.db.clone(), key),
    ] {
        store.save(member, &tokens).await.unwrap();
    }
    p.db.collection::<Document>(mongo::TRACK_CATALOGUE)
        .insert_one(doc! {"_id": track, "status": mongo::CATALOGUE_OK, "name": "a track of theirs"})
        .await
        .unwrap();
}

/// How many plays of `member` are stored.
async fn plays_of(db: &Database, member: &str) -> u64 {
    db.collection::<Document>(mongo::RAW_RECENTLY_PLAYED)
        .count_documents(doc! {"user_id": member})
        .await
        .unwrap()
}

/// A track only `member` played, and the id of every member that has plays.
async fn distinctive_track(db: &Database, member: &str) -> String {
    let mut cursor = db
        .collection::<Document>(mongo::RAW_RECENTLY_PLAYED)
        .aggregate([
            doc! {"$match": {"track_id": {"$ne": null}}},
            doc! {"$group": {"_id": "$track_id", "users": {"$addToSet": "$user_id"}}},
            doc! {"$match": {"users": [member]}},
            doc! {"$sort": {"_id": 1}},
            doc! {"$limit": 1},
        ])
        .await
        .unwrap();
    assert!(
        cursor.advance().await.unwrap(),
        "{member} has a track of their own"
    );
    cursor.current().get_str("_id").unwrap().to_string()
}

/// Every place the needles show up in the pipeline's stores.
async fn find_traces(p: &Pipeline, needles: &[&str]) -> Vec<String> {
    common::find_traces(&p.db, &p.storage, &p.root, needles).await
}

/// The whole group through the pipeline and a first daily run, the member connected; returns a track
/// only they played.
async fn connected_group(test: &str) -> (Pipeline, String) {
    let p = pipeline(test, None).await;
    p.export_and_analyse("20250101T000000Z");
    let track = distinctive_track(&p.db, MEMBER).await;
    connect(&p, MEMBER, NAME, &track).await;
    (p, track)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_holds_exactly_the_members_data() {
    let (p, track) = connected_group("members_export").await;
    // What the listen API keeps of them: a token's hash, a submission, "now playing"; and another
    // member's submission, which is not theirs.
    earshot_state::listen_tokens::create(&p.storage, MEMBER, Utc::now())
        .await
        .unwrap();
    let body = |who: &str| {
        format!(
            r#"{{"listen_type":"single","payload":[{{"listened_at":1700000000,"track_metadata":{{"artist_name":"{who}","track_name":"Scrobbled"}}}}]}}"#
        )
    };
    for who in [MEMBER, "ana.mx"] {
        p.storage
            .write(
                &layout::listen_submission_key(who, Utc::now(), "0123456789abcdef"),
                body(who).into_bytes().into(),
            )
            .await
            .unwrap();
    }
    p.storage
        .write(
            &layout::now_playing_key(MEMBER),
            format!(r#"{{"member":"{MEMBER}","track_name":"Now"}}"#)
                .into_bytes()
                .into(),
        )
        .await
        .unwrap();
    let zip_path = p.root.join("export.zip");
    let counts = earshot_rights::export::export_to(&p.stores(), MEMBER, &zip_path)
        .await
        .unwrap();

    // `members list` shows what is held.
    let listed = earshot_state::roster::list(&p.stores(), Utc::now())
        .await
        .unwrap();
    let row = listed.iter().find(|r| r.member == MEMBER).unwrap();
    assert_eq!(
        (row.name.as_str(), row.in_config, row.authorisation.as_str()),
        (NAME, true, "ok")
    );
    assert_eq!(listed.len(), p.group.members.len());
    assert!(row.imported_plays > 0 && row.import.is_some());
    assert!(row.first_play.is_some() && row.first_play < row.last_play);

    let mut archive = zip::ZipArchive::new(std::fs::File::open(&zip_path).unwrap()).unwrap();
    let mut entries: BTreeMap<String, String> = BTreeMap::new();
    for i in 0..archive.len() {
        let mut file = archive.by_index(i).unwrap();
        let mut text = String::new();
        file.read_to_string(&mut text).unwrap();
        entries.insert(file.name().unwrap().to_string(), text);
    }
    // Exactly the member's plays: the fixture facts' count (API plays, and imported plays that did not
    // merge into one), each once, all theirs.
    let plays: Vec<Value> = entries["plays.jsonl"]
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let expected =
        p.db.collection::<Document>(mongo::RAW_RECENTLY_PLAYED)
            .count_documents(doc! {"user_id": MEMBER})
            .await
            .unwrap();
    assert_eq!(plays.len() as u64, expected);
    assert_eq!(row.plays, expected);
    assert_eq!(counts.records(earshot_rights::export::PLAYS), expected);
    let api_plays = plays.iter().filter(|p| p["source"] == "api").count();
    assert_eq!(api_plays, fact_count(&format!("plays.{MEMBER}")));
    let ids: BTreeSet<&str> = plays.iter().map(|p| p["_id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), plays.len(), "each play once");
    assert!(plays.iter().all(|p| p["user_id"] == MEMBER));
    assert!(plays.iter().any(|p| p["track_id"] == track.as_str()));
    // Their podcast episodes and audiobook chapters, apart from the plays: every one, theirs only.
    let spoken: Vec<Value> = entries["spoken.jsonl"]
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let stored_spoken =
        p.db.collection::<Document>(mongo::RAW_SPOKEN)
            .count_documents(doc! {"user_id": MEMBER})
            .await
            .unwrap();
    assert!(stored_spoken > 0, "the fixture member has spoken plays");
    assert_eq!(spoken.len() as u64, stored_spoken);
    assert_eq!(
        counts.records(earshot_rights::export::SPOKEN),
        stored_spoken
    );
    assert_eq!(
        spoken.iter().filter(|s| s["kind"] == "episode").count(),
        fact_count(&format!("spoken.{MEMBER}.episodes"))
    );
    assert!(spoken.iter().all(|s| s["user_id"] == MEMBER));
    assert!(
        plays.iter().all(|p| p.get("show_name").is_none()),
        "no spoken play among the music"
    );
    // The converted record shape: what json-converter writes, as it writes it.
    let first = plays[0].as_object().unwrap();
    let played_at = first["played_at"].as_str().unwrap();
    assert!(
        played_at.len() == 24 && played_at.ends_with('Z'),
        "{played_at}"
    );
    for field in [
        "played_at",
        "played_at_local",
        "track_name",
        "artist_song_name",
        "source",
    ] {
        assert!(first.contains_key(field), "{field} in {first:?}");
    }
    assert!(!entries["top_tracks.jsonl"].is_empty());
    assert!(!entries["top_artists.jsonl"].is_empty());
    assert!(
        entries
            .keys()
            .any(|k| k.starts_with("storage/raw/recently_played/user=chloe-r/"))
    );
    assert!(
        entries
            .keys()
            .any(|k| k.starts_with("storage/raw/streaming_history/user=chloe-r/"))
    );
    assert!(
        entries
            .keys()
            .any(|k| k.starts_with("storage/converted/recently_played/user=chloe-r/"))
    );
    assert!(entries.contains_key("state/fetch_state.json"));
    assert!(entries.contains_key("state/import.json"));
    // The listen API's stores: their submission (not the other member's), the token's hash, now playing.
    let submitted: Vec<&String> = entries
        .keys()
        .filter(|k| k.starts_with("storage/raw/listens/"))
        .collect();
    assert_eq!(submitted.len(), 1, "{submitted:?}");
    assert!(submitted[0].starts_with("storage/raw/listens/user=chloe-r/"));
    assert!(entries["state/listen_token.json"].contains("token_sha256"));
    assert!(entries["state/now_playing.json"].contains("\"Now\""));
    assert!(entries.contains_key("README.md") && entries.contains_key("member.json"));
    assert!(entries.contains_key("analytics/member_summary.jsonl"));
    assert!(entries.contains_key("analytics/taste_match.jsonl"));

    // Never a token, and no other member's data: another id appears only as the friend of a pairwise
    // row, with none of the friend's own columns.
    let others: Vec<String> = p
        .group
        .members
        .iter()
        .filter(|m| m.id != MEMBER)
        .map(|m| m.id.clone())
        .collect();
    for (name, text) in &entries {
        assert!(
            !text.contains("AQ-refresh") && !text.contains("BQ-access"),
            "{name}"
        );
        if name.starts_with("analytics/") {
            for line in text.lines() {
                let row: Value = serde_json::from_str(line).unwrap();
                let row = row.as_object().unwrap();
                let pair = row.contains_key("member_a");
                if pair {
                    let me_a = row["member_a"] == MEMBER;
                    assert!(me_a || row["member_b"] == MEMBER, "{name}: {row:?}");
                    let friend_side = if me_a { "_b" } else { "_a" };
                    assert!(
                        row.keys()
                            .all(|k| !k.ends_with(friend_side) || k.starts_with("member_")),
                        "{name}: a column of the friend's in {row:?}"
                    );
                } else {
                    assert_eq!(row["user_id"], MEMBER, "{name}: {row:?}");
                }
            }
        } else if name != "README.md" {
            for other in &others {
                assert!(
                    !text.contains(&format!("\"{other}\""))
                        && !text.contains(&format!("user={other}")),
                    "{name} holds `{other}`"
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erase_leaves_no_trace_and_the_others_results_equal_a_group_without_them() {
    let (p, track) = connected_group("members_erase").await;
    let needles = [MEMBER, NAME, track.as_str()];
    // What the listen API keeps of the member (issue #39): their token's hash, a submission as their
    // client sent it, and their "now playing".
    earshot_state::listen_tokens::create(&p.storage, MEMBER, Utc::now())
        .await
        .unwrap();
    let listen = format!(
        r#"{{"listen_type":"single","payload":[{{"listened_at":1700000000,"track_metadata":{{"artist_name":"{NAME}","track_name":"{track}"}}}}]}}"#
    );
    p.storage
        .write(
            &layout::listen_submission_key(MEMBER, Utc::now(), "0123456789abcdef"),
            listen.into_bytes().into(),
        )
        .await
        .unwrap();
    p.storage
        .write(
            &layout::now_playing_key(MEMBER),
            format!(r#"{{"member":"{MEMBER}","track_name":"{track}"}}"#)
                .into_bytes()
                .into(),
        )
        .await
        .unwrap();
    assert!(
        find_traces(&p, &needles).await.len() > 10,
        "the search finds the member before the erase"
    );

    // Refused while the group config lists them, naming the file and the entry.
    let refused = earshot_rights::erase::refuse_if_listed(&p.stores(), MEMBER, &p.config)
        .await
        .unwrap_err();
    let message = refused.to_string();
    assert!(
        message.contains(&p.config.display().to_string()) && message.contains("id = \"chloe-r\"")
    );
    let out = p.output("members", &["erase", "--member", MEMBER, "--yes"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("[[members]]"));
    assert!(
        plays_of(&p.db, MEMBER).await > 0,
        "nothing removed by a refused erase"
    );

    // The admin removes them from the config, then erases (the binary, as a person runs it).
    std::fs::write(&p.config, group_toml(Some(MEMBER))).unwrap();
    let p = Pipeline {
        group: GroupConfig::load(&p.config).unwrap(),
        ..p
    };
    let out = p.output("members", &["erase", "--member", MEMBER, "--yes"]);
    let printed = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        printed.contains("mongodb rawdata_recentlyplayed")
            && printed.contains("spotify.com/account/apps")
    );

    // The next daily run (export, analytics) on the erased group.
    p.export_and_analyse("20250102T000000Z");
    let traces = find_traces(&p, &needles).await;
    assert!(traces.is_empty(), "traces left:\n{}", traces.join("\n"));

    // A second erase finds nothing to remove.
    let again = earshot_rights::erase::erase(&p.stores(), MEMBER)
        .await
        .unwrap();
    assert!(!again.found);
    assert!(again.summary(MEMBER).contains("nothing to remove"));

    // The others' results equal those of a group that never had the member.
    let without = pipeline("members_erase_baseline", Some(MEMBER)).await;
    without.export_and_analyse("20250102T000000Z");
    for collection in earshot_collections::collections(Target::All)
        .into_iter()
        .chain(earshot_collections::partial_collections(Target::All))
    {
        assert_eq!(
            rows(&p.db, collection, doc! {}, &[]).await,
            rows(&without.db, collection, doc! {}, &[]).await,
            "derived collection {collection}"
        );
    }
    for collection in [
        mongo::RAW_RECENTLY_PLAYED,
        mongo::RAW_TOP_TRACKS,
        mongo::RAW_TOP_ARTISTS,
        mongo::RAW_SPOKEN,
    ] {
        let (ours, theirs) = (
            rows(&p.db, collection, doc! {}, &[]).await,
            rows(&without.db, collection, doc! {}, &[]).await,
        );
        assert!(!ours.is_empty(), "{collection} has rows after the erase");
        let differ: Vec<&String> = ours.symmetric_difference(&theirs).take(4).collect();
        assert!(differ.is_empty(), "{collection}: {differ:#?}");
    }
    // Pairwise rows too: with the member gone, every pair left is of two members both groups have.
    let metrics = earshot_rights::analytics_rows::analytics_collections(&without.db)
        .await
        .unwrap();
    assert!(metrics.len() >= 10, "{metrics:?}");
    for name in &metrics {
        let ours = rows(&p.db, name, doc! {}, &[]).await;
        assert!(!ours.is_empty(), "{name} has rows after the erase");
        assert_eq!(ours, rows(&without.db, name, doc! {}, &[]).await, "{name}");
    }
    let report = |p: &Pipeline| {
        let path = p
            .root
            .join(layout::report_key("20250102T000000Z", layout::REPORT_JSON));
        let mut report: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        report.as_object_mut().unwrap().remove("generated_at");
        canonical(&report["members"])
    };
    assert!(report(&p) == report(&without), "report.json members differ");
}

/// Run a binary on the pipeline's stores in the background, its logs as JSON lines on stderr.
fn spawn(p: &Pipeline, program: &str, args: &[&str]) -> std::process::Child {
    p.command(program, args, "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_analytics_run_racing_an_erase_leaves_no_trace_of_the_member() {
    let (p, track) = connected_group("members_erase_race").await;
    std::fs::write(&p.config, group_toml(Some(MEMBER))).unwrap();
    let p = Pipeline {
        group: GroupConfig::load(&p.config).unwrap(),
        ..p
    };
    // A crashed write left a temp file among the member's converted files.
    let converted = p
        .root
        .join(layout::converted_prefix(RawKind::RecentlyPlayed))
        .join(format!("user={MEMBER}"));
    std::fs::write(converted.join(".earshot-tmp-crashed"), MEMBER).unwrap();

    // Analytics starts (it has read the snapshot's plans) ...
    let mut analytics = spawn(
        &p,
        "analytics",
        &[
            "--snapshot",
            "20250101T000000Z",
            "--run",
            "20250103T000000Z",
        ],
    );
    let mut stderr = std::io::BufReader::new(analytics.stderr.take().unwrap());
    let mut log = String::new();
    loop {
        let mut line = String::new();
        let read = std::io::BufRead::read_line(&mut stderr, &mut line).unwrap();
        assert!(read > 0, "analytics ended before it started: {log}");
        log.push_str(&line);
        if line.contains("Analytics started.") {
            break;
        }
    }
    // ... and the member is erased while it computes.
    let erased = earshot_rights::erase::erase(&p.stores(), MEMBER)
        .await
        .unwrap();
    assert!(erased.found);
    std::io::Read::read_to_string(&mut stderr, &mut log).unwrap();
    let status = analytics.wait().unwrap();
    assert_eq!(status.code(), Some(1), "the racing run stops: {log}");
    assert!(
        log.contains("was erased while this run was in progress"),
        "{log}"
    );
    assert!(
        !p.root.join("reports/20250103T000000Z").exists(),
        "the racing run's report folder is withdrawn"
    );

    // Nothing of the member anywhere, the temp file and its folder included.
    let needles = [MEMBER, NAME, track.as_str()];
    let traces = find_traces(&p, &needles).await;
    assert!(traces.is_empty(), "traces left:\n{}", traces.join("\n"));
    assert!(!converted.exists(), "the member's folder is gone");
    let mut everything = Vec::new();
    let mut pending = vec![p.root.clone()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path.clone());
            }
            everything.push(path.display().to_string());
        }
    }
    assert!(
        everything.iter().all(|path| !path.contains(MEMBER)),
        "{everything:?}"
    );

    // The next daily run computes without them; a second erase finds nothing, exports and reports
    // included.
    p.export_and_analyse("20250104T000000Z");
    assert!(find_traces(&p, &needles).await.is_empty());
    let erase_again = || async {
        earshot_rights::erase::erase(&p.stores(), MEMBER)
            .await
            .unwrap()
    };
    assert!(!erase_again().await.found);

    // A temp file a crash left where nothing else of theirs is: listings never show it, erase finds it.
    std::fs::create_dir_all(&converted).unwrap();
    std::fs::write(converted.join(".earshot-tmp-late"), MEMBER).unwrap();
    assert!(erase_again().await.found);
    assert!(!converted.exists());
    assert!(!erase_again().await.found);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pipeline_refuses_to_start_during_an_erase_and_an_erase_needs_a_config() {
    let (p, _) = connected_group("members_erase_marker").await;
    // An erase in progress (its marker), as a crashed or running `members erase` leaves it.
    p.storage
        .write(&layout::erasure_key(MEMBER), b"{}".to_vec().into())
        .await
        .unwrap();
    for (program, args) in [
        ("data-upload", vec!["all"]),
        ("create-collections", vec!["all"]),
        ("gcs-export", vec!["--snapshot", "20250105T000000Z"]),
        (
            "analytics",
            vec![
                "--snapshot",
                "20250101T000000Z",
                "--run",
                "20250105T000000Z",
            ],
        ),
    ] {
        let out = p.output(program, &args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{program}: {stderr}");
        assert!(
            stderr.contains(&format!("`{MEMBER}` is being erased")),
            "{program}: {stderr}"
        );
    }
    assert!(
        !p.root
            .join("exports/Tracks/snapshot=20250105T000000Z")
            .exists()
            && !p.root.join("reports/20250105T000000Z").exists(),
        "nothing written"
    );

    // Without a group config file, an erase is refused unless told explicitly.
    let out = p
        .command("members", &["erase", "--member", MEMBER, "--yes"], "warn")
        .current_dir(&p.root)
        .env_remove("EARSHOT_GROUP_CONFIG")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("no group config file") && stderr.contains("--without-config"),
        "{stderr}"
    );
    assert!(plays_of(&p.db, MEMBER).await > 0, "nothing erased");
}

/// ListenBrainz's checks of a submitted listen (its JSON documentation and `validate_listen` in
/// listenbrainz-server's `api_tools.py`), written here apart from the exporter: `None` when `line`
/// passes, else what fails.
fn listenbrainz_fault(line: &str) -> Option<String> {
    const MAX_LISTEN_SIZE: usize = 10_240;
    const LISTEN_MINIMUM_TS: i64 = 1_033_430_400;
    const MAX_DURATION_MS: i64 = 2_073_600_000;
    const MAX_DURATION: i64 = 2_073_600;
    const MAX_TAGS: usize = 50;
    const MAX_TAG_SIZE: usize = 64;
    if line.len() > MAX_LISTEN_SIZE {
        return Some(format!("{} bytes", line.len()));
    }
    let Ok(Value::Object(top)) = serde_json::from_str::<Value>(line) else {
        return Some("not a JSON object".into());
    };
    let keys: BTreeSet<&str> = top.keys().map(String::as_str).collect();
    if keys != BTreeSet::from(["listened_at", "track_metadata"]) {
        return Some(format!("top-level keys {keys:?}"));
    }
    let Some(at) = top["listened_at"].as_i64() else {
        return Some(format!("listened_at {}", top["listened_at"]));
    };
    if at < LISTEN_MINIMUM_TS || at > Utc::now().timestamp() + 3600 {
        return Some(format!("listened_at {at}"));
    }
    let Some(metadata) = top["track_metadata"].as_object() else {
        return Some("track_metadata not an object".into());
    };
    for required in ["artist_name", "track_name"] {
        if metadata[required]
            .as_str()
            .is_none_or(|s| s.trim().is_empty())
        {
            return Some(format!("{required} {:?}", metadata.get(required)));
        }
    }
    if let Some(release) = metadata.get("release_name")
        && release.as_str().is_none_or(str::is_empty)
    {
        return Some(format!("release_name {release}"));
    }
    // No additional_info passes.
    let info = metadata.get("additional_info")?;
    let Some(info) = info.as_object() else {
        return Some("additional_info not an object".into());
    };
    if info.contains_key("duration") && info.contains_key("duration_ms") {
        return Some("both duration and duration_ms".into());
    }
    for (key, max) in [("duration_ms", MAX_DURATION_MS), ("duration", MAX_DURATION)] {
        if let Some(value) = info.get(key)
            && value.as_i64().is_none_or(|v| v <= 0 || v > max)
        {
            return Some(format!("{key} {value}"));
        }
    }
    if let Some(tags) = info.get("tags") {
        let Some(tags) = tags.as_array() else {
            return Some("tags not a list".into());
        };
        if tags.len() > MAX_TAGS
            || tags
                .iter()
                .any(|t| t.as_str().is_none_or(|t| t.chars().count() > MAX_TAG_SIZE))
        {
            return Some("tags".into());
        }
    }
    for key in [
        "release_mbid",
        "recording_mbid",
        "release_group_mbid",
        "track_mbid",
        "artist_mbids",
        "work_mbids",
    ] {
        if info.contains_key(key) {
            return Some(format!("{key} (Earshot has no MusicBrainz ids)"));
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listenbrainz_export_holds_exactly_their_plays_each_a_valid_listen() {
    let p = pipeline("members_listenbrainz", None).await;
    let export = |member: &str, path: &Path| {
        let path = path.display().to_string();
        let args = ["export", "--member", member, "--output", &path];
        p.output(
            "members",
            &[&args[..], &["--format", "listenbrainz"]].concat(),
        )
    };
    let path = p.root.join("listens.jsonl");
    let out = export(MEMBER, &path);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    // The checks catch what ListenBrainz refuses.
    let good = lines[0];
    assert_eq!(listenbrainz_fault(good), None, "{good}");
    let mut bad: Value = serde_json::from_str(good).unwrap();
    bad["track_metadata"]["artist_name"] = Value::from("");
    assert!(listenbrainz_fault(&bad.to_string()).is_some());
    bad["track_metadata"]["artist_name"] = Value::from("x".repeat(10_240));
    assert!(listenbrainz_fault(&bad.to_string()).is_some());
    let mut bad: Value = serde_json::from_str(good).unwrap();
    bad["extra"] = Value::from(1);
    assert!(listenbrainz_fault(&bad.to_string()).is_some());
    for line in &lines {
        assert_eq!(listenbrainz_fault(line), None, "{line}");
    }

    // Exactly their plays, fetched and imported: each play with a track and an artist name is one
    // listen at its second, the others are counted as left out.
    let plays: Vec<Document> =
        p.db.collection::<Document>(mongo::RAW_RECENTLY_PLAYED)
            .find(doc! {"user_id": MEMBER})
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
    let named = |d: &Document, f: &str| d.get_str(f).is_ok_and(|s| !s.trim().is_empty());
    let mut expected: Vec<(i64, String)> = plays
        .iter()
        .filter(|d| {
            named(d, "track_name")
                && d.get_array("artist_names").is_ok_and(|a| {
                    a.iter()
                        .any(|n| n.as_str().is_some_and(|n| !n.trim().is_empty()))
                })
        })
        .map(|d| {
            let at = d
                .get_datetime("played_at")
                .unwrap()
                .timestamp_millis()
                .div_euclid(1000);
            (at, d.get_str("track_name").unwrap().trim().to_string())
        })
        .collect();
    let listens: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut got: Vec<(i64, String)> = listens
        .iter()
        .map(|l| {
            let name = l["track_metadata"]["track_name"]
                .as_str()
                .unwrap()
                .to_string();
            (l["listened_at"].as_i64().unwrap(), name)
        })
        .collect();
    expected.sort();
    got.sort();
    assert!(!got.is_empty());
    assert_eq!(got, expected);
    let printed = String::from_utf8_lossy(&out.stderr);
    assert!(
        printed.contains(&format!("{} ListenBrainz listens", got.len())),
        "{printed}"
    );
    let left_out = plays.len() - got.len();
    assert!(left_out == 0 || printed.contains("Left out"), "{printed}");
    // Both sources, their Spotify links, in time order.
    let sources: BTreeSet<&str> = listens
        .iter()
        .filter_map(|l| l["track_metadata"]["additional_info"]["source"].as_str())
        .collect();
    assert_eq!(sources, BTreeSet::from(["api", "history"]));
    let linked = plays
        .iter()
        .find_map(|d| d.get_str("track_id").ok())
        .unwrap();
    let link = format!("https://open.spotify.com/track/{linked}");
    assert!(
        listens
            .iter()
            .any(|l| l["track_metadata"]["additional_info"]["spotify_id"] == link.as_str())
    );
    let times: Vec<i64> = listens
        .iter()
        .map(|l| l["listened_at"].as_i64().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "oldest first");

    // A member Earshot holds nothing of: an error naming them, and no file.
    let none = p.root.join("none.jsonl");
    let out = export("nobody", &none);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("`nobody`"));
    assert!(!none.exists());
}

/// A fetch held in flight (the mock answers the member's recently played slowly) while the member is
/// erased; the fetch then finishes, and the whole pipeline runs on: no trace of the member anywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_in_flight_during_an_erase_leaves_no_trace_after_the_pipeline() {
    use data_fetcher::fetch::{Fetcher, MemberResult, What};
    use earshot_spotify::api::{App, Budget, Endpoints, Spotify};
    use earshot_testkit::spotify::{
        DEFAULT_CLIENT_ID, Endpoint, Fault, FaultRule, MockOptions, MockSpotify,
    };
    use std::sync::Arc;
    use std::time::Duration;

    let p = pipeline("members_erase_fetch", None).await;
    p.export_and_analyse("20250101T000000Z");
    let track = distinctive_track(&p.db, MEMBER).await;
    // The member connects through the real sign-in against the mock Spotify.
    let listening = earshot_testkit::fixtures::Listening::fixture_group().unwrap();
    let mock = Arc::new(
        MockSpotify::start(&listening, MockOptions::default())
            .await
            .unwrap(),
    );
    let clock = Arc::new(earshot_tests::MockClock(Arc::clone(&mock)));
    let spotify = || {
        let endpoints = Endpoints {
            api: mock.base_url(),
            accounts: mock.base_url(),
        };
        Spotify::new(
            endpoints,
            clock.clone(),
            Budget::new(Duration::from_secs(60)),
        )
        .unwrap()
    };
    let key = earshot_spotify::tokens::TokenKey::from_base64(
        &earshot_spotify::tokens::TokenKey::generate_base64().unwrap(),
    )
    .unwrap();
    let tokens = earshot_spotify::tokens::TokenStore::Storage(p.storage.clone(), key);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let redirect =
        data_fetcher::auth::Redirect::Listen(listener, format!("http://127.0.0.1:{port}/callback"));
    let (tx, rx) = tokio::sync::oneshot::channel::<String>();
    let (auth_spotify, app) = (spotify(), App::new(DEFAULT_CLIENT_ID));
    let connect = data_fetcher::auth::connect_member(
        &auth_spotify,
        &app,
        &p.group,
        &p.storage,
        &tokens,
        redirect,
        Duration::from_secs(20),
        |url| tx.send(url.to_string()).unwrap(),
        || unreachable!("the listener gets the callback"),
    );
    let browser = async {
        let url = rx.await.unwrap();
        let back = mock.browser_authorize(&url, MEMBER).await.unwrap();
        reqwest::get(back.as_str()).await.unwrap().status().as_u16()
    };
    let (connected, status) = tokio::join!(connect, browser);
    connected.unwrap();
    assert_eq!(status, 200);

    // The fetch starts; the member's recently played answers in 3 s.
    mock.push_fault(
        FaultRule::new(
            Endpoint::RecentlyPlayed,
            Fault::Slow(Duration::from_secs(3)),
            1,
        )
        .for_member(MEMBER),
    );
    let fetcher = Fetcher {
        spotify: spotify(),
        storage: p.storage.clone(),
        tokens,
        group: p.group.clone(),
        concurrency: 2,
    };
    let fetch = tokio::spawn(async move { fetcher.run(What::All, &[]).await.unwrap() });
    tokio::time::sleep(Duration::from_millis(800)).await;
    // Meanwhile the admin takes the member out of the config and erases them.
    std::fs::write(&p.config, group_toml(Some(MEMBER))).unwrap();
    let p = Pipeline {
        group: GroupConfig::load(&p.config).unwrap(),
        ..p
    };
    assert!(
        !fetch.is_finished(),
        "the fetch is still in flight when the erase begins"
    );
    let erased = earshot_rights::erase::erase(&p.stores(), MEMBER)
        .await
        .unwrap();
    assert!(erased.found);
    let report = fetch.await.unwrap();
    let (_, result) = report.members.iter().find(|(m, _)| m == MEMBER).unwrap();
    assert!(matches!(result, MemberResult::Erased), "{report:?}");

    // The pipeline runs on, as the DAG runs it.
    for kind in ["recently-played", "top-tracks", "top-artists"] {
        p.run("json-converter", &[kind]);
    }
    p.run("data-upload", &["all"]);
    p.run("create-collections", &["all"]);
    p.export_and_analyse("20250102T000000Z");
    let traces = find_traces(&p, &[MEMBER, NAME, track.as_str()]).await;
    assert!(traces.is_empty(), "traces left:\n{}", traces.join("\n"));
    // And the next hourly fetch, on the config without them, never asks for them again.
    let before = mock.requests().len();
    let fetcher = Fetcher {
        spotify: spotify(),
        storage: p.storage.clone(),
        tokens: earshot_spotify::tokens::TokenStore::Storage(
            p.storage.clone(),
            earshot_spotify::tokens::TokenKey::from_base64(
                &earshot_spotify::tokens::TokenKey::generate_base64().unwrap(),
            )
            .unwrap(),
        ),
        group: p.group.clone(),
        concurrency: 2,
    };
    let report = fetcher.run(What::All, &[]).await.unwrap();
    assert!(report.members.is_empty(), "{report:?}");
    assert_eq!(mock.requests().len(), before);
}
