//! create-collections on the fixture group: counts equal the fixture facts, artists carry their own
//! names and URLs, a second run changes nothing, new plays are merged in.

use crate::common;
#[path = "common/from_plays.rs"]
mod from_plays;

use std::collections::{BTreeMap, HashMap};

use earshot_collections::{BuildOptions, Mode, Target, build, build_with};
use earshot_core::layout::{self, RawKind};
use earshot_core::{export, mongo};
use earshot_testkit::fixtures::{Listening, fact_count, fact_track, fixture_member_ids};
use mongodb::Database;
use mongodb::bson::{Document, doc};

/// Every derived collection as canonical text: documents sorted by `_id`, relaxed extended JSON.
async fn dump(db: &Database) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    // Exactly the collections the builds write.
    for name in earshot_collections::collections(Target::All) {
        let mut cursor = db
            .collection::<Document>(name)
            .find(doc! {})
            .sort(doc! {"_id": 1})
            .await
            .unwrap();
        let mut documents = Vec::new();
        while cursor.advance().await.unwrap() {
            let document = cursor.deserialize_current().unwrap();
            documents.push(
                mongodb::bson::Bson::Document(document)
                    .into_relaxed_extjson()
                    .to_string(),
            );
        }
        out.insert(name.to_string(), documents);
    }
    out
}

async fn count(db: &Database, collection: &str) -> u64 {
    db.collection::<Document>(collection)
        .count_documents(doc! {})
        .await
        .unwrap()
}

#[tokio::test]
async fn collections_match_the_fixture_facts_and_a_rerun_changes_nothing() {
    let (db, _dir, _storage) = common::loaded_database("collections_twice").await;
    build(&db, Target::All, &common::group()).await.unwrap();
    let first = dump(&db).await;

    assert_eq!(
        count(&db, mongo::TRACKS).await,
        fact_count("tracks.with_id") as u64
    );
    assert_eq!(
        count(&db, mongo::ALBUMS).await,
        fact_count("albums.distinct") as u64
    );
    assert_eq!(
        count(&db, mongo::ARTISTS).await,
        fact_count("artists.distinct") as u64
    );
    assert_eq!(
        count(&db, mongo::ARTIST_TRACK_LINK).await,
        fact_count("artist_links") as u64
    );
    assert_eq!(
        count(&db, mongo::IMAGES).await,
        fact_count("images.distinct") as u64
    );
    // A document per member the config lists: the five on Spotify, and the sixth friend (no plays in
    // this pipeline, which carries Spotify's pages only).
    assert_eq!(
        count(&db, mongo::MEMBERS).await,
        fact_count("members") as u64 + 1
    );
    assert_eq!(
        count(&db, mongo::T50_TRACKS).await,
        count(&db, mongo::RAW_TOP_TRACKS).await
    );
    for member in fixture_member_ids() {
        let row = db
            .collection::<Document>(mongo::MEMBERS)
            .find_one(doc! {"_id": &member})
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            row.get_i32("plays").unwrap() as usize,
            fact_count(&format!("plays.{member}")),
            "{member}"
        );
    }
    let (top_id, top_plays) = fact_track("top_track.group");
    let group_top = db
        .collection::<Document>(mongo::TRACKS)
        .find_one(doc! {"_id": &top_id})
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        group_top.get_i32("plays").unwrap() as usize,
        top_plays,
        "fact top_track.group"
    );

    build(&db, Target::All, &common::group()).await.unwrap();
    assert_eq!(
        dump(&db).await,
        first,
        "a second run changed a derived collection"
    );
}

/// The original built Artists from a cross product of ids and names; each artist must carry the name
/// and URL Spotify gave that id.
#[tokio::test]
async fn artists_carry_their_own_names_and_urls() {
    let (db, _dir, _storage) = common::loaded_database("collections_artists").await;
    build(&db, Target::RecentlyPlayed, &common::group())
        .await
        .unwrap();
    let mut truth: HashMap<String, (String, String)> = HashMap::new();
    for member in &Listening::fixture_group().unwrap().members {
        for play in &member.plays {
            for artist in play["track"]["artists"].as_array().unwrap() {
                if let Some(id) = artist["id"].as_str() {
                    let name = artist["name"].as_str().unwrap().to_string();
                    let url = artist["external_urls"]["spotify"]
                        .as_str()
                        .unwrap()
                        .to_string();
                    truth.insert(id.to_string(), (name, url));
                }
            }
        }
    }
    let mut cursor = db
        .collection::<Document>(mongo::ARTISTS)
        .find(doc! {})
        .await
        .unwrap();
    let mut seen = 0;
    while cursor.advance().await.unwrap() {
        let artist = cursor.deserialize_current().unwrap();
        let id = artist.get_str("_id").unwrap();
        let (name, url) = &truth[id];
        assert_eq!(artist.get_str("artist_name").unwrap(), name, "{id}");
        assert_eq!(artist.get_str("artist_url").unwrap(), url, "{id}");
        seen += 1;
    }
    assert_eq!(seen, truth.len());
    // Every ArtistTrackLink `_id` the server-side build wrote follows core's formula.
    let mut links = db
        .collection::<Document>(mongo::ARTIST_TRACK_LINK)
        .find(doc! {})
        .await
        .unwrap();
    let mut checked = 0;
    while links.advance().await.unwrap() {
        let link = links.deserialize_current().unwrap();
        let expected = mongo::artist_track_link_id(
            link.get_str("play_id").unwrap(),
            link.get_str("artist_id").unwrap(),
        );
        assert_eq!(link.get_str("_id").unwrap(), expected);
        checked += 1;
    }
    assert_eq!(checked, fact_count("artist_links"));
}

/// The pipelines write each derived collection's fields, and earshot-core's export schema lists the
/// columns gcs-export reads: every document of every exported collection has exactly those fields
/// (a silent member included), so neither side can drift from the other. The histories are imported,
/// so that the spoken plays (`rawdata_spoken`) are there too.
#[tokio::test]
async fn documents_have_exactly_the_columns_of_the_export_schema() {
    let (db, _dir, _storage) =
        earshot_tests::pipeline_database_with("collections_schema", true).await;
    let mut group = common::group();
    group.members.push(earshot_core::config::MemberConfig {
        id: "quiet.one".into(),
        display_name: "Quiet".into(),
        app: None,
        spotify: true,
    });
    build(&db, Target::All, &group).await.unwrap();
    for collection in export::COLLECTIONS {
        let mut columns: Vec<&str> = export::schema(collection)
            .unwrap()
            .iter()
            .map(|(name, _)| *name)
            .collect();
        columns.sort();
        let mut cursor = db
            .collection::<Document>(collection)
            .find(doc! {})
            .await
            .unwrap();
        let mut documents = 0;
        while cursor.advance().await.unwrap() {
            let document = cursor.deserialize_current().unwrap();
            let mut fields: Vec<&str> = document.keys().map(String::as_str).collect();
            fields.sort();
            assert_eq!(
                fields,
                columns,
                "`{collection}` document {}",
                document.get("_id").unwrap()
            );
            documents += 1;
        }
        assert!(documents > 0, "`{collection}` is empty");
    }
}

#[tokio::test]
async fn new_plays_are_merged_in_and_silent_members_listed() {
    let (db, _dir, _storage) = common::loaded_database("collections_new_plays").await;
    let mut group = common::group();
    group.members.push(earshot_core::config::MemberConfig {
        id: "quiet.one".into(),
        display_name: "Quiet".into(),
        app: None,
        spotify: true,
    });
    build(&db, Target::RecentlyPlayed, &group).await.unwrap();
    let before = dump(&db).await;
    let quiet = db
        .collection::<Document>(mongo::MEMBERS)
        .find_one(doc! {"_id": "quiet.one"})
        .await
        .unwrap()
        .unwrap();
    assert_eq!(quiet.get_i32("plays").unwrap(), 0);

    // One more play by Ana of the group's top track.
    let (top_id, top_plays) = fact_track("top_track.group");
    let plays = db.collection::<Document>(mongo::RAW_RECENTLY_PLAYED);
    let mut play = plays
        .find_one(doc! {"user_id": "ana.mx", "track_id": &top_id})
        .await
        .unwrap()
        .unwrap();
    let at = mongodb::bson::DateTime::parse_rfc3339_str("2024-11-12T20:00:00Z").unwrap();
    play.insert("_id", "ana.mx|2024-11-12T20:00:00.000Z");
    play.insert("played_at", at);
    play.insert("played_at_local", "2024-11-12 12:00:00 PST");
    plays.insert_one(play.clone()).await.unwrap();
    // As data-upload does once the upsert is acknowledged: the ledger names what the play touches.
    let mut entry = vec![earshot_upload::ledger::Entry::new(
        "converted/recently_played/user=ana.mx/20241112T200100.000Z.jsonl",
        mongo::RAW_RECENTLY_PLAYED,
        &[play],
    )];
    earshot_upload::ledger::record(&db, &mut entry)
        .await
        .unwrap();
    build(&db, Target::RecentlyPlayed, &group).await.unwrap();
    let after = dump(&db).await;

    let track = db
        .collection::<Document>(mongo::TRACKS)
        .find_one(doc! {"_id": &top_id})
        .await
        .unwrap()
        .unwrap();
    assert_eq!(track.get_i32("plays").unwrap() as usize, top_plays + 1);
    assert_eq!(track.get_datetime("last_played").unwrap(), &at);
    let ana = db
        .collection::<Document>(mongo::MEMBERS)
        .find_one(doc! {"_id": "ana.mx"})
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        ana.get_i32("plays").unwrap() as usize,
        fact_count("plays.ana.mx") + 1
    );
    // Only documents the new play touches changed: the track, its album and artists, Ana, new links.
    let changed: Vec<&String> = before.keys().filter(|k| before[*k] != after[*k]).collect();
    for name in &changed {
        assert!(
            [
                mongo::TRACKS,
                mongo::ALBUMS,
                mongo::ARTISTS,
                mongo::ARTIST_TRACK_LINK,
                mongo::MEMBERS
            ]
            .contains(&name.as_str()),
            "{name} changed"
        );
    }
    let tracks_changed = before[mongo::TRACKS]
        .iter()
        .zip(&after[mongo::TRACKS])
        .filter(|(a, b)| a != b)
        .count();
    assert_eq!(tracks_changed, 1, "exactly one track document changed");
    assert_eq!(
        after[mongo::ARTIST_TRACK_LINK].len(),
        before[mongo::ARTIST_TRACK_LINK].len() + track.get_array("artist_ids").unwrap().len()
    );
}

/// Load `files` (converted storage keys) as data-upload loads them.
async fn load(db: &Database, storage: &earshot_core::Storage, files: &[(RawKind, String)]) {
    for (kind, key) in files {
        let options = earshot_upload::LoadOptions {
            batch_size: 1000,
            reload: false,
            match_tolerance_ms: earshot_upload::DEFAULT_MATCH_TOLERANCE_MS,
        };
        earshot_upload::load_storage(db, storage, *kind, key, options)
            .await
            .unwrap();
    }
}

/// The derived collections equal, document for document, what one aggregation of every row gives.
async fn assert_as_from_plays(db: &Database, when: &str) -> BTreeMap<String, Vec<String>> {
    let built = dump(db).await;
    let reference = from_plays::reference(db).await;
    assert_eq!(
        built.keys().collect::<Vec<_>>(),
        reference.keys().collect::<Vec<_>>(),
        "{when}"
    );
    for (collection, documents) in &reference {
        let mut ours = built[collection].clone();
        if collection == mongo::MEMBERS {
            // The members with no plays (yet, or left), which the build adds.
            ours.retain(|d| !d.contains("\"first_play\":null"));
        }
        for (a, b) in ours.iter().zip(documents) {
            assert_eq!(a, b, "{when}: {collection}");
        }
        assert_eq!(
            ours.len(),
            documents.len(),
            "{when}: {collection} document count"
        );
    }
    built
}

/// Issue #23 (and #11): the fixture group loaded hour by hour (as the hourly runs load it), each hour
/// followed by an incremental build; then the members' streaming histories imported into old days, an
/// enrichment that renames a track, and an erase. After each, the derived collections equal, document
/// for document, what one aggregation of all of the rows gives (the definition the builds had before
/// the per-day partials), and so does a rebuild from scratch at the end.
#[tokio::test]
async fn incremental_builds_equal_a_build_from_plays() {
    let (_dir, storage) = earshot_tests::converted_storage_with(true).await;
    let db = earshot_tests::fresh_database("collections_incremental").await;
    let group = common::group();
    // Every converted API file, grouped by the hour it was fetched in (its file name), oldest first;
    // the imported histories apart.
    let mut hours: BTreeMap<String, Vec<(RawKind, String)>> = BTreeMap::new();
    let mut history = Vec::new();
    for kind in RawKind::ALL {
        for key in storage.list(&layout::converted_prefix(kind)).await.unwrap() {
            if matches!(kind, RawKind::StreamingHistory | RawKind::SpokenHistory) {
                history.push((kind, key));
                continue;
            }
            let stamp = key.rsplit('/').next().unwrap();
            hours
                .entry(stamp[..11].to_string())
                .or_default()
                .push((kind, key));
        }
    }
    assert!(hours.len() > 10, "{} hours", hours.len());
    assert!(!history.is_empty());
    let incremental = BuildOptions {
        mode: Mode::Incremental,
        margin: std::time::Duration::ZERO,
    };
    for (hour, files) in &hours {
        load(&db, &storage, files).await;
        build_with(&db, Target::All, &group, incremental)
            .await
            .unwrap();
        assert_as_from_plays(&db, &format!("hour {hour}")).await;
    }
    let built_hourly = dump(&db).await;
    assert_eq!(
        built_hourly[mongo::ARTIST_TRACK_LINK].len(),
        fact_count("artist_links")
    );
    // Nothing new: a run changes nothing.
    build_with(&db, Target::All, &group, incremental)
        .await
        .unwrap();
    assert_eq!(dump(&db).await, built_hourly);

    // The histories, into days the hourly builds already folded.
    load(&db, &storage, &history).await;
    build_with(&db, Target::All, &group, incremental)
        .await
        .unwrap();
    let imported = assert_as_from_plays(&db, "after the import").await;
    assert_ne!(imported[mongo::MEMBERS], built_hourly[mongo::MEMBERS]);

    // An enrichment renames a track whose latest play is an imported one (as `data-fetcher enrich`
    // does: its imported plays take the catalogue's fields, and the ledger names what they touch).
    let track = latest_imported_track(&db).await;
    let plays = db.collection::<Document>(mongo::RAW_RECENTLY_PLAYED);
    let imported_plays = doc! {"source": "history", "track_id": &track};
    plays
        .update_many(
            imported_plays.clone(),
            doc! {"$set": {"track_name": "Renamed (Remastered)", "clean_track_name": "Renamed"}},
        )
        .await
        .unwrap();
    let mut cursor = plays
        .find(imported_plays)
        .projection(earshot_core::ledger::source_projection())
        .await
        .unwrap();
    let mut rows = Vec::new();
    while cursor.advance().await.unwrap() {
        rows.push(cursor.deserialize_current().unwrap());
    }
    let mut entry = vec![earshot_upload::ledger::Entry::new(
        &mongo::enrich_ledger_key(&track),
        mongo::RAW_RECENTLY_PLAYED,
        &rows,
    )];
    earshot_upload::ledger::record(&db, &mut entry)
        .await
        .unwrap();
    build_with(&db, Target::All, &group, incremental)
        .await
        .unwrap();
    assert_as_from_plays(&db, "after the rename").await;
    let renamed = db
        .collection::<Document>(mongo::TRACKS)
        .find_one(doc! {"_id": &track})
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        renamed.get_str("track_name").unwrap(),
        "Renamed (Remastered)"
    );

    // An erase, as `members erase` does it: what their rows touch recorded, their rows and ledger
    // entries removed, a build, the erasure entries removed.
    let member = "ana.mx";
    // Half of their entries as the ledger wrote them before it listed days: the erase reads those
    // days from the rows.
    let ledger = db.collection::<Document>(mongo::UPLOAD_LEDGER);
    let theirs = ledger
        .distinct("_id", doc! {"keys.user_id": member})
        .await
        .unwrap();
    let older: Vec<_> = theirs.iter().step_by(2).cloned().collect();
    assert!(!older.is_empty());
    ledger
        .update_many(
            doc! {"_id": {"$in": older}},
            doc! {"$unset": {"keys.day": "", "counts.day": ""}},
        )
        .await
        .unwrap();
    earshot_collections::forget_member(&db, member)
        .await
        .unwrap();
    for collection in mongo::MEMBER_ROW_COLLECTIONS {
        db.collection::<Document>(collection)
            .delete_many(doc! {"user_id": member})
            .await
            .unwrap();
    }
    db.collection::<Document>(mongo::UPLOAD_LEDGER)
        .delete_many(doc! {"keys.user_id": member})
        .await
        .unwrap();
    let mut without = group.clone();
    without.members.retain(|m| m.id != member);
    build_with(&db, Target::All, &without, incremental)
        .await
        .unwrap();
    assert!(earshot_collections::forget_erasures(&db).await.unwrap() > 0);
    let erased = assert_as_from_plays(&db, "after the erase").await;
    for (collection, documents) in &erased {
        assert!(
            documents.iter().all(|d| !d.contains(member)),
            "{collection} still names {member}"
        );
    }
    for partials in earshot_collections::partial_collections(Target::All) {
        let left = db
            .collection::<Document>(partials)
            .count_documents(doc! {"$or": [
                {mongo::PARTIAL_ENTITY: member},
                {"listeners": member},
            ]})
            .await
            .unwrap();
        assert_eq!(left, 0, "{partials} still names {member}");
    }

    // From scratch: the same documents.
    let scratch = BuildOptions {
        mode: Mode::Rebuild,
        ..incremental
    };
    build_with(&db, Target::All, &without, scratch)
        .await
        .unwrap();
    assert_eq!(assert_as_from_plays(&db, "rebuilt").await, erased);
}

/// A track whose latest play is an imported one.
async fn latest_imported_track(db: &Database) -> String {
    let plays = db.collection::<Document>(mongo::RAW_RECENTLY_PLAYED);
    let tracks = plays
        .distinct("track_id", doc! {"source": "history"})
        .await
        .unwrap();
    for track in tracks.iter().filter_map(|t| t.as_str()) {
        let latest = plays
            .find_one(doc! {"track_id": track})
            .sort(doc! {"played_at": -1})
            .await
            .unwrap()
            .unwrap();
        if latest.get_str("source") == Ok("history") {
            return track.to_string();
        }
    }
    panic!("no track whose latest play is imported");
}

/// Mark every derived document, so that a later build shows what it rewrote: a rebuilt document is
/// replaced whole (`$merge` with `replace`) and loses the mark.
async fn mark_every_document(db: &Database) {
    for collection in earshot_collections::collections(Target::All) {
        db.collection::<Document>(collection)
            .update_many(doc! {}, doc! {"$set": {"_marked": true}})
            .await
            .unwrap();
    }
}

/// The `_id`s of each derived collection's documents a build rewrote since [`mark_every_document`].
async fn rewritten(db: &Database) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for collection in earshot_collections::collections(Target::All) {
        let mut cursor = db
            .collection::<Document>(collection)
            .find(doc! {"_marked": {"$exists": false}})
            .sort(doc! {"_id": 1})
            .await
            .unwrap();
        let mut ids = Vec::new();
        while cursor.advance().await.unwrap() {
            ids.push(cursor.current().get_str("_id").unwrap().to_string());
        }
        if !ids.is_empty() {
            out.insert(collection.to_string(), ids);
        }
    }
    out
}

/// Issue #23: a build trails the server's clock by a margin (a minute by default), yet a run right
/// after another builds nothing the last one built: its watermark lists the entries it built within
/// the margin, and never moves back (after a `--rebuild`). An entry loaded again (a new load time) is
/// built again.
#[tokio::test]
async fn a_run_within_the_margin_does_not_build_again_what_the_last_built() {
    let (db, _dir, _storage) = common::loaded_database("collections_margin").await;
    let group = common::group();
    let options = BuildOptions::default();
    assert!(options.margin.as_secs() >= 60, "{options:?}");
    build_with(&db, Target::All, &group, options).await.unwrap();
    mark_every_document(&db).await;
    build_with(&db, Target::All, &group, options).await.unwrap();
    assert_eq!(
        rewritten(&db).await,
        BTreeMap::new(),
        "the first build's entries, all within the margin, are not built again"
    );

    // A rebuild's watermark is its start; the next run's start less the margin is earlier, and the
    // watermark must not move back to it (which would build the rebuild's last minute again).
    build_with(
        &db,
        Target::All,
        &group,
        BuildOptions {
            mode: Mode::Rebuild,
            ..options
        },
    )
    .await
    .unwrap();
    mark_every_document(&db).await;

    // A new play: built once, then not again.
    let (top_id, _) = fact_track("top_track.group");
    let plays = db.collection::<Document>(mongo::RAW_RECENTLY_PLAYED);
    let mut play = plays
        .find_one(doc! {"user_id": "ben_k", "track_id": &top_id})
        .await
        .unwrap()
        .unwrap();
    let at = mongodb::bson::DateTime::parse_rfc3339_str("2024-11-12T21:00:00Z").unwrap();
    play.insert("_id", "ben_k|2024-11-12T21:00:00.000Z");
    play.insert("played_at", at);
    play.insert("played_at_local", "2024-11-12 13:00:00 PST");
    plays.insert_one(play.clone()).await.unwrap();
    let file = "converted/recently_played/user=ben_k/20241112T210100.000Z.jsonl";
    let record = || async {
        let mut entry = vec![earshot_upload::ledger::Entry::new(
            file,
            mongo::RAW_RECENTLY_PLAYED,
            std::slice::from_ref(&play),
        )];
        earshot_upload::ledger::record(&db, &mut entry)
            .await
            .unwrap();
    };
    record().await;
    build_with(&db, Target::All, &group, options).await.unwrap();
    let first = rewritten(&db).await;
    assert_eq!(
        first.get(mongo::TRACKS),
        Some(&vec![top_id.clone()]),
        "{first:#?}"
    );
    mark_every_document(&db).await;
    build_with(&db, Target::All, &group, options).await.unwrap();
    assert_eq!(
        rewritten(&db).await,
        BTreeMap::new(),
        "the new entry, within the margin, is not built twice"
    );

    // The same file loaded again: a new load time, built again.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    record().await;
    build_with(&db, Target::All, &group, options).await.unwrap();
    assert_eq!(
        rewritten(&db).await.get(mongo::TRACKS),
        Some(&vec![top_id.clone()]),
        "an entry loaded again is built again"
    );
}

/// Issue #11: with nothing loaded since the last build, a build reads the ledger and rewrites
/// nothing; one new play makes it rewrite exactly the documents that play touches.
#[tokio::test]
async fn a_build_rewrites_only_what_new_plays_touch() {
    let (db, _dir, _storage) = common::loaded_database("collections_nothing_new").await;
    let group = common::group();
    let options = BuildOptions {
        mode: Mode::Incremental,
        margin: std::time::Duration::ZERO,
    };
    build_with(&db, Target::All, &group, options).await.unwrap();
    let watermarks = || async {
        let mut cursor = db
            .collection::<Document>(mongo::BUILD_WATERMARKS)
            .find(doc! {})
            .sort(doc! {"_id": 1})
            .await
            .unwrap();
        let mut all = Vec::new();
        while cursor.advance().await.unwrap() {
            all.push(cursor.deserialize_current().unwrap());
        }
        all
    };
    let before: Vec<Document> = watermarks().await;
    assert_eq!(
        before.len(),
        earshot_collections::collections(Target::All).len(),
        "a watermark per build"
    );
    mark_every_document(&db).await;
    build_with(&db, Target::All, &group, options).await.unwrap();
    assert_eq!(
        watermarks().await,
        before,
        "nothing new: no watermark moved"
    );
    assert_eq!(
        rewritten(&db).await,
        BTreeMap::new(),
        "nothing new: nothing rewritten"
    );

    // One more play by Ana of the group's top track, recorded in the ledger as data-upload does.
    let (top_id, _) = fact_track("top_track.group");
    let plays = db.collection::<Document>(mongo::RAW_RECENTLY_PLAYED);
    let mut play = plays
        .find_one(doc! {"user_id": "ana.mx", "track_id": &top_id})
        .await
        .unwrap()
        .unwrap();
    let at = mongodb::bson::DateTime::parse_rfc3339_str("2024-11-12T20:00:00Z").unwrap();
    play.insert("_id", "ana.mx|2024-11-12T20:00:00.000Z");
    play.insert("played_at", at);
    play.insert("played_at_local", "2024-11-12 12:00:00 PST");
    plays.insert_one(play.clone()).await.unwrap();
    let mut entry = vec![earshot_upload::ledger::Entry::new(
        "converted/recently_played/user=ana.mx/20241112T200100.000Z.jsonl",
        mongo::RAW_RECENTLY_PLAYED,
        std::slice::from_ref(&play),
    )];
    earshot_upload::ledger::record(&db, &mut entry)
        .await
        .unwrap();
    build_with(&db, Target::All, &group, options).await.unwrap();

    let artists: Vec<String> = play
        .get_array("artist_ids")
        .unwrap()
        .iter()
        .filter_map(|a| a.as_str().map(str::to_string))
        .collect();
    let album = play.get_str("album_id").unwrap().to_string();
    let mut sorted_artists = artists.clone();
    sorted_artists.sort();
    let done = rewritten(&db).await;
    assert_eq!(
        done.get(mongo::TRACKS),
        Some(&vec![top_id.clone()]),
        "{done:#?}"
    );
    assert_eq!(
        done.get(mongo::ALBUMS),
        Some(&vec![album.clone()]),
        "{done:#?}"
    );
    assert_eq!(done.get(mongo::ARTISTS), Some(&sorted_artists), "{done:#?}");
    assert_eq!(
        done.get(mongo::MEMBERS),
        Some(&vec!["ana.mx".to_string()]),
        "{done:#?}"
    );
    let links = &done[mongo::ARTIST_TRACK_LINK];
    assert_eq!(
        links.len(),
        artists.len(),
        "a new link per artist, no old link rewritten: {links:?}"
    );
    assert!(
        links
            .iter()
            .all(|id| id.starts_with("ana.mx|2024-11-12T20:00:00.000Z")),
        "{links:?}"
    );
    for (collection, ids) in &done {
        assert!(
            [
                mongo::TRACKS,
                mongo::ALBUMS,
                mongo::ARTISTS,
                mongo::MEMBERS,
                mongo::ARTIST_TRACK_LINK,
                mongo::IMAGES
            ]
            .contains(&collection.as_str()),
            "{collection} rewrote {ids:?}"
        );
    }
    if let Some(images) = done.get(mongo::IMAGES) {
        for id in images {
            let image = db
                .collection::<Document>(mongo::IMAGES)
                .find_one(doc! {"_id": id})
                .await
                .unwrap()
                .unwrap();
            assert_eq!(
                image.get_str("album_id").unwrap(),
                album,
                "only the album's images"
            );
        }
    }
    assert_ne!(
        watermarks().await,
        before,
        "the builds that ran moved their watermarks"
    );
}
