//! Histories from other services (`data-fetcher import --format listenbrainz|maloja|csv`) on files made to
//! each format's documented shape, through the real converter and upload: exactly their plays, once; a
//! re-import that changes nothing; a bad row, a symlink and a folder refused with nothing stored; and an
//! overlap with Spotify plays of the same recording merged into one play.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use chrono::Utc;
use data_fetcher::scrobbles::{Format, ScrobbleReport, import};
use earshot_core::layout::{self, RawKind};
use earshot_core::{Storage, mongo};
use earshot_testkit::fixtures::{Listening, MemberListening, fact_count, scrobbler_listens_file};
use earshot_testkit::scrobbler::SCROBBLER_ID;
use earshot_tests::{files_under, fixture_group_config, pipeline_database};
use mongodb::Database;
use mongodb::bson::{Document, doc};

async fn import_file(
    storage: &Storage,
    member: &str,
    format: Format,
    path: &Path,
) -> Result<ScrobbleReport, Box<dyn std::error::Error>> {
    import(
        storage,
        &fixture_group_config(),
        member,
        format,
        &[path.to_path_buf()],
        Utc::now(),
        false,
    )
    .await
    .map_err(|e| format!("{e:#}").into())
}

async fn convert_and_upload(db: &Database, storage: &Storage) -> earshot_upload::Report {
    let converter =
        json_converter::Converter::new(RawKind::Listens, fixture_group_config()).unwrap();
    let summary = json_converter::convert_storage(
        storage,
        &converter,
        &layout::raw_prefix(RawKind::Listens),
        false,
        false,
    )
    .await
    .unwrap();
    assert!(summary.failed.is_empty(), "{:?}", summary.failed);
    earshot_upload::load_storage(
        db,
        storage,
        RawKind::Listens,
        &layout::converted_prefix(RawKind::Listens),
        earshot_upload::LoadOptions::default(),
    )
    .await
    .unwrap()
}

async fn plays_of(db: &Database, member: &str, source: &str) -> u64 {
    db.collection::<Document>(mongo::RAW_RECENTLY_PLAYED)
        .count_documents(doc! {"user_id": member, "source": source})
        .await
        .unwrap()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test]
async fn a_listenbrainz_export_imports_its_listens_once_as_jsonl_or_zip() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::local(dir.path());
    let file = scrobbler_listens_file();
    let report = import_file(&storage, SCROBBLER_ID, Format::Listenbrainz, &file)
        .await
        .unwrap();
    assert_eq!(report.listens, fact_count("listens.fern"));
    assert_eq!(report.parts_new, 1, "{report:?}");
    let stored = files_under(dir.path());
    // Only what Earshot reads: the export's own fields are dropped before storing.
    for (key, bytes) in &stored {
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(
            key.contains("raw/listens/user=fern/import-listenbrainz-"),
            "{key}"
        );
        for dropped in [
            "recording_msid",
            "inserted_at",
            "user_name",
            "submission_client",
            "media_player",
        ] {
            assert!(!text.contains(dropped), "{dropped} stored in {key}");
        }
    }
    // Again: the same parts, nothing written.
    let again = import_file(&storage, SCROBBLER_ID, Format::Listenbrainz, &file)
        .await
        .unwrap();
    assert_eq!((again.parts_new, again.parts_known), (0, 1));
    assert_eq!(files_under(dir.path()), stored);

    // The same listens in ListenBrainz's export zip (listens/<year>/<month>.jsonl, user.json beside):
    // the same part, so nothing new either.
    let text = std::fs::read_to_string(&file).unwrap();
    let (october, november): (Vec<&str>, Vec<&str>) = text
        .lines()
        .partition(|l| l.contains("\"listened_at\":172")); // 2024-10 ≈ 1727…–1730…
    let zip_path = dir.path().join("listenbrainz_fern.zip");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&zip_path).unwrap());
    let options = zip::write::SimpleFileOptions::default();
    zip.start_file("user.json", options).unwrap();
    zip.write_all(br#"{"user_id": 1, "username": "fern"}"#)
        .unwrap();
    zip.start_file("listens/2024/10.jsonl", options).unwrap();
    zip.write_all(october.join("\n").as_bytes()).unwrap();
    zip.start_file("listens/2024/11.jsonl", options).unwrap();
    zip.write_all(november.join("\n").as_bytes()).unwrap();
    zip.start_file("feedback.jsonl", options).unwrap();
    zip.write_all(b"{\"score\": 1}\n").unwrap();
    zip.finish().unwrap();
    let zipped = import_file(&storage, SCROBBLER_ID, Format::Listenbrainz, &zip_path)
        .await
        .unwrap();
    assert_eq!(zipped.listens, fact_count("listens.fern"));
    assert_eq!(
        (zipped.parts_new, zipped.parts_known),
        (0, 1),
        "the same listens, the same part"
    );

    let db = earshot_tests::fresh_database("listens_import_lb").await;
    let loaded = convert_and_upload(&db, &storage).await;
    assert_eq!(
        plays_of(&db, SCROBBLER_ID, "listenbrainz").await as usize,
        fact_count("listens.fern")
    );
    let again = convert_and_upload(&db, &storage).await;
    assert_eq!(
        (again.counts.inserted, again.counts.modified),
        (0, 0),
        "{loaded:?} then {again:?}"
    );
}

#[tokio::test]
async fn maloja_and_csv_exports_import_exactly_their_plays() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::local(dir.path());
    let files = tempfile::tempdir().unwrap();
    // Maloja's export: {"scrobbles": [...]}, one repeated.
    let maloja = write(
        files.path(),
        "maloja_export_20241110.json",
        r#"{"maloja": {"export_time": 1731196800}, "scrobbles": [
            {"time": 1730000000, "track": {"artists": ["Nadia Reyes"], "title": "Quiet Harbour", "album": {"albumtitle": "Tidewater", "artists": ["Nadia Reyes"]}, "length": 201}, "duration": 201, "origin": "client:navidrome"},
            {"time": 1730000300, "track": {"artists": ["Les Oiseaux Bleus", "Mira Sol"], "title": "Été indien", "album": null, "length": null}, "duration": 180},
            {"time": 1730000300, "track": {"artists": ["Les Oiseaux Bleus", "Mira Sol"], "title": "Été indien", "album": null, "length": null}, "duration": 180},
            {"time": 1730000600, "track": {"artists": ["Kōji Arata"], "title": "Glass Rain", "length": 240}}
        ]}"#,
    );
    let report = import_file(&storage, SCROBBLER_ID, Format::Maloja, &maloja)
        .await
        .unwrap();
    assert_eq!((report.listens, report.repeats), (3, 1), "{report:?}");
    // ghan's Last.fm exporter (a header), and lastfm-to-csv (none).
    let ghan = write(
        files.path(),
        "scrobbles-fern-1731196800.csv",
        "uts,utc_time,artist,artist_mbid,album,album_mbid,track,track_mbid\n\
         1730001000,\"27 Oct 2024, 03:50\",Nadia Reyes,,Tidewater,,Lantern Street,0f2b7c9e-5d6a-4b8c-8e1f-3a4b5c6d7e80\n\
         1730001300,\"27 Oct 2024, 03:55\",\"Les Oiseaux Bleus, Mira Sol\",,Saisons,,\"Minuit à Lyon\",\n",
    );
    let report = import_file(&storage, SCROBBLER_ID, Format::Csv, &ghan)
        .await
        .unwrap();
    assert_eq!(report.listens, 2, "{report:?}");
    let plain = write(
        files.path(),
        "lastfm-to-csv.csv",
        "Kōji Arata,Signals,Paper Moon Radio,27 Oct 2024 04:10\nNadia Reyes,Tidewater,Quiet Harbour,27 Oct 2024 04:15\n",
    );
    let report = import_file(&storage, SCROBBLER_ID, Format::Csv, &plain)
        .await
        .unwrap();
    assert_eq!(report.listens, 2, "{report:?}");
    let before = files_under(dir.path());
    for (format, path) in [
        (Format::Maloja, &maloja),
        (Format::Csv, &ghan),
        (Format::Csv, &plain),
    ] {
        let again = import_file(&storage, SCROBBLER_ID, format, path)
            .await
            .unwrap();
        assert_eq!(again.parts_new, 0, "{path:?}");
    }
    assert_eq!(
        files_under(dir.path()),
        before,
        "re-importing changes nothing"
    );

    let db = earshot_tests::fresh_database("listens_import_formats").await;
    convert_and_upload(&db, &storage).await;
    assert_eq!(plays_of(&db, SCROBBLER_ID, "maloja").await, 3);
    assert_eq!(plays_of(&db, SCROBBLER_ID, "csv").await, 4);
    let plays = db.collection::<Document>(mongo::RAW_RECENTLY_PLAYED);
    let mbid = plays
        .find_one(doc! {"track_name": "Lantern Street"})
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        mbid.get_str("recording_key").unwrap(),
        "mbid:0f2b7c9e-5d6a-4b8c-8e1f-3a4b5c6d7e80"
    );
    let feat = plays
        .find_one(doc! {"track_name": "Été indien"})
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        feat.get_str("recording_key").unwrap(),
        "name:les oiseaux bleus — ete indien"
    );
    assert_eq!(feat.get_str("played_at").ok(), None, "a date, not a string");
    assert_eq!(
        plays
            .find_one(doc! {"track_name": "Glass Rain"})
            .await
            .unwrap()
            .unwrap()
            .get_i64("duration_ms")
            .unwrap(),
        240_000
    );
}

#[tokio::test]
async fn a_bad_row_a_symlink_or_a_folder_stores_nothing_and_says_where() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::local(dir.path());
    let files = tempfile::tempdir().unwrap();
    let bad = write(
        files.path(),
        "scrobbles.csv",
        "uts,artist,track\n1730001000,Nadia Reyes,Lantern Street\n1730001300,,Untitled\n",
    );
    let err = import_file(&storage, SCROBBLER_ID, Format::Csv, &bad)
        .await
        .unwrap_err();
    let message = format!("{err:#}");
    assert!(message.contains("scrobbles.csv`, line 3"), "{message}");
    assert!(
        message.contains("artist_name"),
        "ListenBrainz's reason: {message}"
    );
    let early = write(
        files.path(),
        "early.jsonl",
        r#"{"listened_at": 1000, "track_metadata": {"artist_name": "A", "track_name": "B"}}"#,
    );
    let err = import_file(&storage, SCROBBLER_ID, Format::Listenbrainz, &early)
        .await
        .unwrap_err();
    assert!(
        format!("{err:#}").contains("early.jsonl`, line 1: Value for key listened_at is too low"),
        "{err:#}"
    );
    #[cfg(unix)]
    {
        let link = files.path().join("link.csv");
        std::os::unix::fs::symlink(&bad, &link).unwrap();
        let err = import_file(&storage, SCROBBLER_ID, Format::Csv, &link)
            .await
            .unwrap_err();
        assert!(format!("{err:#}").contains("symlink"), "{err:#}");
    }
    let err = import_file(&storage, SCROBBLER_ID, Format::Csv, files.path())
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("is a folder"), "{err:#}");
    let err = import_file(&storage, "nobody", Format::Csv, &bad)
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("--member nobody"), "{err:#}");
    assert!(files_under(dir.path()).is_empty(), "nothing stored");
}

#[tokio::test]
async fn scrobbles_of_songs_spotify_already_reported_merge_whichever_came_first() {
    let (db, _dir, storage) = pipeline_database("listens_import_merge").await;
    let member = "ana.mx";
    let api_before = plays_of(&db, member, "api").await;
    // Ana's phone also scrobbled five of her Spotify plays (at their start or their end, names as her
    // scrobbler spells them), and two songs Spotify never saw.
    let listening = Listening::fixture_group().unwrap();
    let ana = listening.member(member).unwrap();
    let mut scrobbles = Vec::new();
    for (i, play) in ana.plays.iter().skip(40).step_by(37).take(5).enumerate() {
        let track = &play["track"];
        let at = MemberListening::played_at(play).timestamp();
        let duration = track["duration_ms"].as_i64().unwrap() / 1000;
        let time = if i % 2 == 0 { at } else { at - duration };
        scrobbles.push(serde_json::json!({
            "time": time,
            "track": {
                "artists": [track["artists"][0]["name"].as_str().unwrap().to_uppercase()],
                "title": track["name"],
                "length": duration,
            },
        }));
    }
    for (i, title) in ["Quiet Harbour", "Glass Rain"].iter().enumerate() {
        scrobbles.push(serde_json::json!({"time": 1_729_600_000 + i as i64 * 400, "track": {"artists": ["Nadia Reyes"], "title": title}}));
    }
    let files = tempfile::tempdir().unwrap();
    let export = write(
        files.path(),
        "maloja_export.json",
        &serde_json::json!({"scrobbles": scrobbles}).to_string(),
    );
    import_file(&storage, member, Format::Maloja, &export)
        .await
        .unwrap();
    convert_and_upload(&db, &storage).await;
    assert_eq!(
        plays_of(&db, member, "maloja").await,
        2,
        "the five Spotify knew are one play each"
    );
    assert_eq!(
        plays_of(&db, member, "api").await,
        api_before,
        "Spotify's plays stay"
    );
    // Loaded again: still one play each.
    convert_and_upload(&db, &storage).await;
    assert_eq!(plays_of(&db, member, "maloja").await, 2);
}
