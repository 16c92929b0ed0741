//! create-collections on the fixture group: counts equal the fixture facts, artists carry their own
//! names and URLs, a second run changes nothing, new plays are merged in.

use crate::common;
#[path = "common/from_plays.rs"]
mod from_plays;

use std::collections::{BTreeMap, HashMap};

use earshot_collections::{BuildOptions, Mode, build, build_with};
use earshot_core::layout::Target;
use earshot_core::layout::{self, RawKind};
use earshot_core::records::LocalTime;
use earshot_core::{export, mongo};
use earshot_testkit::fixtures::{Listening, fact_count, fact_track, fixture_member_ids};
use mongodb::Database;
use mongodb::bson::{Document, doc};

mod incremental;

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

/// Move `play` to `at` (RFC 3339): its time, and its local time as the converter computes it in the
/// fixture group's zone. Returns the time, as stored.
fn played_at(play: &mut Document, at: &str) -> mongodb::bson::DateTime {
    let instant = chrono::DateTime::parse_from_rfc3339(at)
        .unwrap()
        .with_timezone(&chrono::Utc);
    let zone = common::group().zone().unwrap();
    let stored = mongodb::bson::DateTime::from_millis(instant.timestamp_millis());
    play.insert("played_at", stored);
    play.extend(mongodb::bson::to_document(&LocalTime::of(instant, zone)).unwrap());
    stored
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
    play.insert("_id", "ana.mx|2024-11-12T20:00:00.000Z");
    let at = played_at(&mut play, "2024-11-12T20:00:00Z");
    plays.insert_one(play.clone()).await.unwrap();
    // As data-upload does once the upsert is acknowledged: the ledger names what the play touches.
    let mut entry = vec![earshot_core::ledger::LedgerEntry::new(
        "converted/recently_played/user=ana.mx/20241112T200100.000Z.jsonl",
        mongo::RAW_RECENTLY_PLAYED,
        &[play],
    )];
    earshot_upload::loaded_files::record(&db, &mut entry)
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
