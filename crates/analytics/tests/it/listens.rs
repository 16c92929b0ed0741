//! A friend beyond Spotify: the sixth fixture friend's listens (imported as her ListenBrainz export)
//! carried through the pipeline with the five Spotify friends' plays, and the track metrics meeting
//! across services by recording, against the facts fixtures/facts.py computed independently.

use analytics::tables::rows;
use earshot_core::mongo::RAW_RECENTLY_PLAYED;
use earshot_testkit::fixtures::{fact, fact_count, fixture_member_ids};
use earshot_testkit::scrobbler::SCROBBLER_ID;
use earshot_tests::{Fixture, exported_snapshot_of};
use mongodb::bson::{Document, doc};
use serde_json::{Map, Value};

fn s<'a>(row: &'a Map<String, Value>, key: &str) -> &'a str {
    row[key].as_str().unwrap_or_default()
}

#[tokio::test]
async fn a_friend_who_scrobbles_shares_songs_with_the_spotify_friends_by_recording() {
    let fixture = Fixture {
        history: false,
        listens: true,
    };
    let (db, _dir, storage) = exported_snapshot_of("analytics_listens", "l1", fixture).await;
    let plays = db.collection::<Document>(RAW_RECENTLY_PLAYED);
    let hers = plays
        .count_documents(doc! {"user_id": SCROBBLER_ID, "source": "listenbrainz"})
        .await
        .unwrap();
    assert_eq!(
        hers as usize,
        fact_count("listens.fern"),
        "one play a listen"
    );
    // Every play carries its recording key; hers carry no Spotify id unless she sent one.
    assert_eq!(
        plays
            .count_documents(doc! {"recording_key": {"$type": "string"}, "is_local": false})
            .await
            .unwrap(),
        plays
            .count_documents(doc! {"is_local": false})
            .await
            .unwrap()
    );
    let by_isrc = plays
        .find_one(doc! {"user_id": SCROBBLER_ID, "isrc": {"$type": "string"}})
        .await
        .unwrap()
        .unwrap();
    assert!(
        by_isrc
            .get_str("recording_key")
            .unwrap()
            .starts_with("isrc:")
    );
    assert!(by_isrc.get_str("track_id").is_err(), "{by_isrc:?}");
    // A recording heard only from beyond Spotify has a `Tracks` document of its own, under its key.
    let mbid = "6a3d0f6e-1c4b-4f3e-9a51-0b9c7d2e8f11";
    let listened = std::fs::read_to_string(earshot_testkit::fixtures::scrobbler_listens_file())
        .unwrap()
        .lines()
        .filter(|l| l.contains(mbid))
        .count();
    assert!(listened > 0, "Fern plays her MusicBrainz-tagged song");
    let own = db
        .collection::<Document>(earshot_core::mongo::TRACKS)
        .find_one(doc! {"_id": format!("mbid:{mbid}")})
        .await
        .unwrap()
        .expect("a Tracks document of its own");
    assert_eq!(own.get_i32("plays").unwrap() as usize, listened);
    assert_eq!(own.get_str("track_name").unwrap(), "Quiet Harbour");
    assert!(
        own.get_str("track_url").is_err(),
        "no Spotify link: {own:?}"
    );

    let out = crate::analyse_fixture_group(&storage).await;
    let table = |name: &str| rows(&out.metrics[name]);
    let summary = table("member_summary");
    let fern = summary
        .iter()
        .find(|r| s(r, "user_id") == SCROBBLER_ID)
        .expect("the friend without Spotify has a summary");
    assert_eq!(
        fern["plays"].as_f64().unwrap() as usize,
        fact_count("listens.fern")
    );
    assert_eq!(
        fern["unique_tracks"].as_f64().unwrap() as usize,
        fact_count("listens.fern.recordings"),
        "her recordings, each once, whichever names or ids she sent"
    );
    let shared = table("shared_tracks");
    for member in fixture_member_ids() {
        let row = shared
            .iter()
            .find(|r| s(r, "member_a") == member && s(r, "member_b") == SCROBBLER_ID)
            .unwrap_or_else(|| panic!("{member} and Fern share songs across services"));
        assert_eq!(
            format!(
                "{} ({:.4})",
                row["shared"].as_f64().unwrap(),
                row["jaccard"].as_f64().unwrap()
            ),
            fact(&format!("shared.{member}+fern")),
            "{member}"
        );
    }
    // Taste: her artists are names, met with the Spotify artists of the same names.
    let taste = table("taste_match");
    for member in fixture_member_ids() {
        let row = taste
            .iter()
            .find(|r| s(r, "member_a") == member && s(r, "member_b") == SCROBBLER_ID)
            .unwrap_or_else(|| panic!("{member} and Fern have a taste match across services"));
        assert_eq!(
            format!("{:.2}", row["taste_match"].as_f64().unwrap()),
            fact(&format!("taste.{member}+fern")),
            "{member}"
        );
    }
    // A song she scrobbled by its names only meets the Spotify track: the chart counts her among its
    // listeners under the Spotify id, not under a `name:` key of its own.
    let names_only: Vec<String> = plays
        .distinct(
            "name_key",
            doc! {"user_id": SCROBBLER_ID, "isrc": null, "recording_mbid": null},
        )
        .await
        .unwrap()
        .into_iter()
        .filter_map(|k| k.as_str().map(str::to_string))
        .collect();
    let spotify_names: Vec<String> = plays
        .distinct("name_key", doc! {"source": "api"})
        .await
        .unwrap()
        .into_iter()
        .filter_map(|k| k.as_str().map(str::to_string))
        .collect();
    let met: Vec<&String> = names_only
        .iter()
        .filter(|k| spotify_names.contains(k))
        .collect();
    assert!(
        !met.is_empty(),
        "the fixture has songs she names as Spotify does"
    );
    let mine = table("member_tracks");
    for key in met {
        assert!(
            !mine
                .iter()
                .any(|r| s(r, "user_id") == SCROBBLER_ID && s(r, "track_key") == key.as_str()),
            "{key} met its Spotify track"
        );
    }
    assert!(
        mine.iter()
            .filter(|r| s(r, "user_id") == SCROBBLER_ID)
            .all(|r| !s(r, "track_key").starts_with("isrc:")),
        "a recording a friend plays on Spotify goes by its Spotify id"
    );
}

/// The one grouping by recording (`views/member_track_plays.sql`) on a handful of plays: two Spotify ids
/// of one ISRC are one recording, named by the least id; a scrobble known by names only meets the
/// Spotify track of the same names; the ISRC wins over the names (a remaster's title); a live recording
/// stays apart.
#[test]
fn two_spotify_ids_of_one_isrc_and_a_scrobble_by_names_are_one_recording() {
    use analytics::engine::{Inputs, Tables};
    use polars::prelude::*;

    let plays = df!(
        "_id" => ["1", "2", "3", "4", "5", "6", "7"],
        "user_id" => ["ana", "ana", "ben", "fern", "fern", "fern", "ben"],
        "track_id" => [Some("3aaa"), Some("3aaa"), Some("7bbb"), None, None, None, Some("9ccc")],
        "track_key" => ["3aaa", "3aaa", "7bbb", "name:x — song", "name:x — song", "isrc:USX1", "9ccc"],
        "recording_key" => ["isrc:USX1", "isrc:USX1", "isrc:USX1", "name:x — song", "name:x — song", "isrc:USX1", "isrc:USX2"],
        "name_key" => ["name:x — song", "name:x — song", "name:x — song", "name:x — song", "name:x — song", "name:x — song", "name:x — song live"],
        "duration_ms" => [200_000i64, 200_000, 201_000, 200_000, 200_000, 200_000, 230_000],
        "artist_song_name" => ["X - Song", "X - Song", "X - Song - Remastered", "x - song", "x - song", "X - Song", "X - Song (Live)"],
        "track_name" => ["Song", "Song", "Song - Remastered", "song", "song", "Song", "Song (Live)"],
        "album_id" => [None::<&str>; 7],
        "album_name" => [None::<&str>; 7],
        "played_at" => [0i64; 7],
    )
    .unwrap()
    .lazy()
    .with_column(col("_id").alias("play_id"));
    let links = df!(
        "play_id" => [None::<&str>; 0],
        "user_id" => [None::<&str>; 0],
        "artist_id" => [None::<&str>; 0],
        "artist_key" => [None::<&str>; 0],
        "artist_name" => [None::<&str>; 0],
        "played_at" => [0i64; 0],
        "duration_ms" => [0i64; 0],
    )
    .unwrap()
    .lazy();
    let empty = DataFrame::empty().lazy();
    let inputs = Inputs {
        plays,
        links: links.clone(),
        links_all: links,
        top: empty.clone(),
        spoken: empty,
        hidden: df!("user_id" => [None::<&str>; 0]).unwrap().lazy(),
    };
    let tables = Tables::lazy(&inputs).unwrap();
    let grouped = tables
        .query(
            "SELECT user_id, track_key, plays FROM member_track_plays ORDER BY user_id, track_key",
        )
        .unwrap()
        .collect()
        .unwrap();
    let rows: Vec<(String, String, i64)> = (0..grouped.height())
        .map(|i| {
            let row = grouped.get_row(i).unwrap().0;
            (
                row[0].get_str().unwrap().to_string(),
                row[1].get_str().unwrap().to_string(),
                row[2].try_extract::<i64>().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("ana".to_string(), "3aaa".to_string(), 2),
            ("ben".to_string(), "3aaa".to_string(), 1),
            ("ben".to_string(), "9ccc".to_string(), 1),
            ("fern".to_string(), "3aaa".to_string(), 3),
        ],
        "one recording under the least Spotify id; the live one apart"
    );
}
