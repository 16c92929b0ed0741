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
use earshot_testkit::mongo_server::MongoServer;
use earshot_tests::{binary, fresh_database};
use futures::TryStreamExt as _;
use mongodb::Database;
use mongodb::bson::{Document, doc};
use serde_json::Value;

use crate::common;
use common::{canonical, rows};

mod fetch_race;

mod listenbrainz;

mod erase;

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
    let counts = earshot_rights::member_export::export_to(&p.stores(), MEMBER, &zip_path)
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
    assert_eq!(
        counts.records(earshot_rights::member_export::PLAYS),
        expected
    );
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
        counts.records(earshot_rights::member_export::SPOKEN),
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
