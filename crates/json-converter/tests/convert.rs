//! json-converter on the fixture group: hand-checked records, idempotence, bad input, streams.

use std::collections::HashMap;

use bytes::Bytes;
use earshot_core::GroupConfig;
use earshot_core::cli::Outcome;
use earshot_core::layout::{self, RawKind};
use earshot_core::storage::Storage;
use earshot_testkit::fixtures::{Listening, fact_count, fixtures_dir, raw_pages};
use json_converter::{Converter, PageMeta, convert_storage};
use serde_json::{Value, json};

fn group() -> GroupConfig {
    GroupConfig::load(&fixtures_dir().join("group.toml")).unwrap()
}

/// A storage folder holding the fixture group's raw pages.
async fn raw_storage() -> (tempfile::TempDir, Storage) {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::local(dir.path());
    earshot_testkit::fixtures::write_raw_pages(&storage)
        .await
        .unwrap();
    (dir, storage)
}

/// Convert every raw page of `kind` in `storage` into `converted/`, as the binary does by default.
async fn convert_all(storage: &Storage, kind: RawKind) -> json_converter::Summary {
    let converter = Converter::new(kind, group()).unwrap();
    convert_storage(storage, &converter, &layout::raw_prefix(kind), false, false)
        .await
        .unwrap()
}

async fn records(storage: &Storage, prefix: &str) -> HashMap<String, Value> {
    let mut out = HashMap::new();
    for key in storage.list(prefix).await.unwrap() {
        let bytes = storage.read_all(&key).await.unwrap();
        for line in std::str::from_utf8(&bytes).unwrap().lines() {
            let record: Value = serde_json::from_str(line).unwrap();
            out.insert(record["_id"].as_str().unwrap().to_string(), record);
        }
    }
    out
}

#[tokio::test]
async fn recently_played_records_match_hand_checked_expectations() {
    let (_dir, storage) = raw_storage().await;
    let summary = convert_all(&storage, RawKind::RecentlyPlayed).await;
    assert!(summary.failed.is_empty(), "{:?}", summary.failed);
    assert_eq!(summary.records, fact_count("plays.total"));
    let all = records(&storage, &layout::converted_prefix(RawKind::RecentlyPlayed)).await;
    assert_eq!(
        all.len(),
        fact_count("plays.total"),
        "one record per play, no duplicates"
    );

    let get = |id: &str| all.get(id).unwrap_or_else(|| panic!("no record `{id}`"));
    // Both 2024 DST changes in America/Los_Angeles, written in local time with the right zone name.
    for (id, local) in [
        ("ana.mx|2024-03-10T09:50:00.250Z", "2024-03-10 01:50:00 PST"),
        ("ana.mx|2024-03-10T10:10:00.750Z", "2024-03-10 03:10:00 PDT"),
        ("ana.mx|2024-11-03T08:30:00.000Z", "2024-11-03 01:30:00 PDT"),
        ("ana.mx|2024-11-03T09:30:00.000Z", "2024-11-03 01:30:00 PST"),
    ] {
        assert_eq!(get(id)["played_at_local"], local, "{id}");
    }
    let feat = get("ana.mx|2024-03-09T08:11:59.236Z");
    assert_eq!(feat["user_name"], "Ana");
    assert_eq!(feat["played_at"], "2024-03-09T08:11:59.236Z");
    assert_eq!(feat["played_at_local"], "2024-03-09 00:11:59 PST");
    assert_eq!(feat["track_name"], "Midnight Letters (feat. Maya Rivers)");
    assert_eq!(feat["clean_track_name"], "Midnight Letters");
    assert_eq!(
        feat["artist_song_name"],
        "DJ Nørd, Maya Rivers - Midnight Letters"
    );
    assert_eq!(feat["artist_names"], json!(["DJ Nørd", "Maya Rivers"]));
    assert_eq!(feat["duration_ms"], 313_845);
    assert_eq!(feat["duration"], "5:13");
    assert_eq!(
        feat["popularity"],
        Value::Null,
        "missing popularity is unknown, not 0"
    );
    assert_eq!(feat["context_type"], "none", "null context");

    let duet = get("ana.mx|2024-03-09T10:01:13.217Z");
    assert_eq!(
        duet["artist_song_name"],
        "Sigur Rósa, La Femme Étoile - Paper Hour"
    );
    assert_eq!(duet["duration"], "4:58");
    assert_eq!(duet["context_type"], "playlist");

    let hostile = get("ana.mx|2024-03-10T10:42:07.391Z");
    assert_eq!(
        hostile["track_name"], "<script>alert(1)</script>",
        "kept verbatim"
    );
    assert_eq!(hostile["clean_track_name"], "<script>alert");
    assert_eq!(hostile["played_at_local"], "2024-03-10 03:42:07 PDT");
    // The day, hour and ISO weekday every later step reads: the local ones, after the spring-forward.
    assert_eq!(
        (
            &hostile["local_day"],
            &hostile["local_hour"],
            &hostile["local_weekday"]
        ),
        (
            &serde_json::json!("2024-03-10"),
            &serde_json::json!(3),
            &serde_json::json!(7)
        )
    );
    assert_eq!(hostile["duration"], "3:45");
    assert_eq!(hostile["popularity"], 49);
    assert_eq!(hostile["context_type"], "artist");

    let cafe = get("ana.mx|2024-03-10T11:01:31.738Z");
    assert_eq!(cafe["clean_track_name"], "Café del Mar ☕");
    assert_eq!(cafe["duration"], "3:49");
    let tokyo = get("ana.mx|2024-10-24T06:52:14.735Z");
    assert_eq!(tokyo["clean_track_name"], "日本の夜");
    assert_eq!(tokyo["played_at_local"], "2024-10-23 23:52:14 PDT");
    let quotes = get("ben_k|2024-10-25T19:59:22.138Z");
    assert_eq!(
        quotes["track_name"],
        "\"Quotes\" & 'Apostrophes' \\ Backslash"
    );
    assert_eq!(
        quotes["clean_track_name"],
        "\"Quotes\" & 'Apostrophes' \\ Backslash"
    );
    assert_eq!(
        quotes["artist_song_name"],
        "La Femme Étoile, Nova Bloom - \"Quotes\" & 'Apostrophes' \\ Backslash"
    );
    assert_eq!(quotes["duration"], "3:09");

    let local = get("chloe-r|2024-03-10T03:05:00.000Z");
    assert_eq!(local["is_local"], true);
    assert_eq!(local["track_id"], Value::Null);
    assert_eq!(local["album_id"], Value::Null);
    assert_eq!(local["artist_ids"], json!([null]));
    assert_eq!(local["track_url"], Value::Null);
    assert_eq!(local["images"], json!([]));
    assert_eq!(local["duration"], "3:04");
    assert_eq!(local["clean_track_name"], "Demo Take 3");
    assert_eq!(local["played_at_local"], "2024-03-09 19:05:00 PST");

    // Markets never survive conversion.
    let text = storage.list(layout::CONVERTED).await.unwrap();
    for key in text {
        let bytes = storage.read_all(&key).await.unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains("available_markets"),
            "{key}"
        );
    }
    let nulls = all.values().filter(|r| r["popularity"].is_null()).count();
    assert_eq!(nulls, fact_count("plays.without_popularity"));
}

#[tokio::test]
async fn top_items_get_ranks_ranges_and_the_local_snapshot_date() {
    let (_dir, storage) = raw_storage().await;
    for kind in [RawKind::TopTracks, RawKind::TopArtists] {
        let summary = convert_all(&storage, kind).await;
        assert_eq!(summary.converted, 15, "5 members × 3 time ranges");
        assert!(summary.failed.is_empty());
    }
    let tracks = records(&storage, &layout::converted_prefix(RawKind::TopTracks)).await;
    // Dev's last play is 2024-11-10 (local); the snapshot is fetched a minute later, the same local day.
    let first = &tracks["dev.p|long_term|2024-11-10|1"];
    assert_eq!(first["rank"], 1);
    assert_eq!(first["time_range"], "long_term");
    assert_eq!(first["date_data_fetched"], "2024-11-10");
    let ranks: Vec<u64> = {
        let mut r: Vec<u64> = tracks
            .values()
            .filter(|t| t["user_id"] == "dev.p" && t["time_range"] == "long_term")
            .map(|t| t["rank"].as_u64().unwrap())
            .collect();
        r.sort();
        r
    };
    assert_eq!(ranks, (1..=ranks.len() as u64).collect::<Vec<_>>());
    // Every ranked artist of every member and range, checked against the fixture's lists: rank, id,
    // name, URL, genres, images, and popularity and followers only where Spotify returned them.
    let artists = records(&storage, &layout::converted_prefix(RawKind::TopArtists)).await;
    let mut expected = 0;
    for member in &Listening::fixture_group().unwrap().members {
        let date = member
            .plays
            .last()
            .map(|p| {
                let at = earshot_testkit::fixtures::MemberListening::played_at(p)
                    + chrono::Duration::minutes(1);
                at.with_timezone(&chrono_tz::America::Los_Angeles)
                    .format("%Y-%m-%d")
                    .to_string()
            })
            .unwrap();
        for (range, list) in &member.top_artists {
            for (index, artist) in list.iter().enumerate() {
                let id = format!("{}|{range}|{date}|{}", member.id(), index + 1);
                let record = artists
                    .get(&id)
                    .unwrap_or_else(|| panic!("no converted top artist `{id}`"));
                assert_eq!(record["user_id"], member.id(), "{id}");
                assert_eq!(record["user_name"], member.display_name(), "{id}");
                assert_eq!(record["time_range"], range.as_str(), "{id}");
                assert_eq!(record["rank"], index + 1, "{id}");
                assert_eq!(record["artist_id"], artist["id"], "{id}");
                assert_eq!(record["artist_name"], artist["name"], "{id}");
                assert_eq!(
                    record["artist_url"], artist["external_urls"]["spotify"],
                    "{id}"
                );
                assert_eq!(
                    record["genres"],
                    artist.get("genres").cloned().unwrap_or(json!([])),
                    "{id}"
                );
                assert_eq!(record["images"], artist["images"], "{id}");
                assert_eq!(
                    record["popularity"],
                    artist.get("popularity").cloned().unwrap_or(Value::Null),
                    "{id}"
                );
                assert_eq!(
                    record["followers"],
                    artist
                        .get("followers")
                        .map_or(Value::Null, |f| f["total"].clone()),
                    "{id}"
                );
                expected += 1;
            }
        }
    }
    assert_eq!(
        artists.len(),
        expected,
        "no record beyond the fixture's lists"
    );
}

#[tokio::test]
async fn a_second_run_finds_its_work_done() {
    let (_dir, storage) = raw_storage().await;
    let first = convert_all(&storage, RawKind::RecentlyPlayed).await;
    let before = records(&storage, layout::CONVERTED).await;
    let second = convert_all(&storage, RawKind::RecentlyPlayed).await;
    assert_eq!(second.converted, 0);
    assert_eq!(second.skipped, first.converted);
    assert_eq!(records(&storage, layout::CONVERTED).await, before);
}

#[tokio::test]
async fn bad_files_are_reported_precisely_and_the_rest_is_converted() {
    let (_dir, storage) = raw_storage().await;
    let broken = "raw/recently_played/user=ana.mx/20990101T000000.000Z.json";
    storage
        .write(broken, Bytes::from_static(b"{\"items\": [ {\"track\": "))
        .await
        .unwrap();
    let mut page = raw_pages(&Listening::fixture_group().unwrap()).remove(0).1;
    page["items"][3]["track"]
        .as_object_mut()
        .unwrap()
        .remove("duration_ms");
    let shapeless = "raw/recently_played/user=ana.mx/20990101T000001.000Z.json";
    storage
        .write(
            shapeless,
            Bytes::from(serde_json::to_vec_pretty(&page).unwrap()),
        )
        .await
        .unwrap();

    let summary = convert_all(&storage, RawKind::RecentlyPlayed).await;
    assert_eq!(summary.outcome(), Outcome::Partial);
    assert_eq!(summary.failed.len(), 2);
    let reason = |key: &str| {
        summary
            .failed
            .iter()
            .find(|(k, _)| k == key)
            .unwrap()
            .1
            .clone()
    };
    let truncated = reason(broken);
    assert!(
        truncated.contains(broken) && truncated.contains("page 1, line 1"),
        "{truncated}"
    );
    let missing = reason(shapeless);
    assert!(missing.contains(shapeless), "{missing}");
    assert!(
        missing.contains("items[3].track") && missing.contains("duration_ms"),
        "{missing}"
    );
    assert!(missing.contains("line "), "{missing}");
    for key in [broken, shapeless] {
        let converted = earshot_core::layout::converted_key(RawKind::RecentlyPlayed, key).unwrap();
        assert!(
            !storage.exists(&converted).await.unwrap(),
            "no partial output for {key}"
        );
    }
    assert_eq!(
        summary.records,
        fact_count("plays.total"),
        "every good file was converted"
    );
}

#[test]
fn streams_of_pages_convert_one_page_at_a_time() {
    let listening = Listening::fixture_group().unwrap();
    let pages: Vec<Value> = raw_pages(&listening)
        .into_iter()
        .filter(|(k, _)| k.starts_with("raw/recently_played/user=emi/"))
        .map(|(_, page)| page)
        .collect();
    let mut stream = Vec::new();
    for page in &pages {
        serde_json::to_writer(&mut stream, page).unwrap();
        stream.push(b'\n');
    }
    let converter = Converter::new(RawKind::RecentlyPlayed, group()).unwrap();
    let meta = PageMeta {
        user_id: "emi".into(),
        time_range: None,
        fetched_at: chrono::Utc::now(),
    };
    let mut out = Vec::new();
    let n = converter
        .convert(&stream[..], "<test>", &meta, &mut out)
        .unwrap();
    assert_eq!(n, fact_count("plays.emi"));
    assert_eq!(out.iter().filter(|b| **b == b'\n').count(), n);
    // From a slice (parsed once, borrowing): the same records.
    let mut from_slice = Vec::new();
    let m = converter
        .convert_slice(&stream, "<test>", &meta, &mut from_slice)
        .unwrap();
    assert_eq!((m, &from_slice), (n, &out));
    // A bad second page names page 2, on both paths.
    let mut bad = serde_json::to_vec(&pages[0]).unwrap();
    bad.extend_from_slice(b"\n{\"items\": 5, \"limit\": 50}");
    let err = converter
        .convert(&bad[..], "<test>", &meta, &mut Vec::new())
        .unwrap_err()
        .to_string();
    assert!(err.contains("page 2") && err.contains("`items`"), "{err}");
    let slice_err = converter
        .convert_slice(&bad, "<test>", &meta, &mut Vec::new())
        .unwrap_err()
        .to_string();
    assert_eq!(slice_err, err);
}

/// `convert` (a stream) and `convert_slice` (a stored file) give the same records and the same error.
fn same_on_both_paths(converter: &Converter, bytes: &[u8], meta: &PageMeta) {
    let (mut streamed, mut sliced) = (Vec::new(), Vec::new());
    let a = converter
        .convert(bytes, "<fuzz>", meta, &mut streamed)
        .map_err(|e| e.to_string());
    let b = converter
        .convert_slice(bytes, "<fuzz>", meta, &mut sliced)
        .map_err(|e| e.to_string());
    assert_eq!(a, b);
    assert_eq!(streamed, sliced);
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        /// Arbitrary bytes never panic the converter: they convert or give an error, the same on both
        /// paths.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let meta = PageMeta { user_id: "u".into(), time_range: Some(earshot_core::spotify::TimeRange::ShortTerm), fetched_at: chrono::Utc::now() };
            for kind in [RawKind::RecentlyPlayed, RawKind::TopTracks, RawKind::TopArtists] {
                let converter = Converter::new(kind, GroupConfig::default()).unwrap();
                same_on_both_paths(&converter, &bytes, &meta);
            }
        }

        /// Mutations of a real page (a byte changed) never panic either, and both paths agree.
        #[test]
        fn mutated_pages_never_panic(index in 0usize..20_000, byte in any::<u8>()) {
            let page = br#"{"items":[{"track":{"album":{"id":null,"name":"A","images":[{"url":"u","height":null,"width":null}]},"artists":[{"id":"x","name":"X"}],"duration_ms":215000,"id":"t","name":"Song (feat. Y)"},"played_at":"2024-11-03T09:30:00.000Z","context":null}],"next":null,"cursors":{"after":"1","before":"1"},"limit":50,"href":null}"#;
            let mut bytes = page.to_vec();
            let i = index % bytes.len();
            bytes[i] = byte;
            let meta = PageMeta { user_id: "u".into(), time_range: None, fetched_at: chrono::Utc::now() };
            let converter = Converter::new(RawKind::RecentlyPlayed, GroupConfig::default()).unwrap();
            same_on_both_paths(&converter, &bytes, &meta);
        }
    }
}
