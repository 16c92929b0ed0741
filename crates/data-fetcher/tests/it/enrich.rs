//! Enrichment of imported plays against the mock Spotify (real HTTP) and the test MongoDB server: one
//! `GET /v1/tracks/{id}` per track, a 20-hour Retry-After that stops a run cleanly and a next run that
//! goes on, a removed track (404) that keeps the export's names, and derived collections that then
//! count the imported plays' artists.

use crate::common;

use std::time::Duration;

use common::Harness;
use data_fetcher::import::import;
use earshot_core::layout::{self, RawKind};
use earshot_core::mongo::{self, RAW_RECENTLY_PLAYED, TRACK_CATALOGUE};
use earshot_testkit::fixtures::{fact_count, fixtures_dir, history_dir, removed_track_id};
use earshot_testkit::mongo_server::MongoServer;
use earshot_testkit::spotify::{Endpoint, Fault, FaultRule};
use mongodb::bson::{Bson, Document, doc};

const MEMBER: &str = "ana.mx";

#[tokio::test]
async fn enrichment_survives_a_20_hour_retry_after_and_a_removed_track() {
    let h = Harness::new().await;
    h.connect(MEMBER).await;
    // Ana's export, imported, converted and loaded.
    import(
        &h.storage,
        &h.group,
        MEMBER,
        &[history_dir(&fixtures_dir(), MEMBER)],
        h.mock.now(),
    )
    .await
    .unwrap();
    let converter =
        json_converter::Converter::new(RawKind::StreamingHistory, h.group.clone()).unwrap();
    json_converter::convert_storage(
        &h.storage,
        &converter,
        &layout::raw_prefix(RawKind::StreamingHistory),
        false,
        false,
    )
    .await
    .unwrap();
    let server = MongoServer::shared();
    let db = mongo::connect(server.uri(), &server.database_name("enrichment"))
        .await
        .unwrap();
    earshot_upload::load_storage(
        &db,
        &h.storage,
        RawKind::StreamingHistory,
        &layout::converted_prefix(RawKind::StreamingHistory),
        earshot_upload::LoadOptions::default(),
    )
    .await
    .unwrap();
    let tracks = fact_count(&format!("history.{MEMBER}.tracks"));
    let fetcher = h.fetcher(Duration::from_secs(300), 1);

    // A first run within its budget of 10 requests.
    let first = data_fetcher::enrich::enrich(&fetcher, &db, None, 10, h.mock.now())
        .await
        .unwrap();
    assert_eq!(
        (first.requests, first.remaining),
        (10, tracks - 10),
        "{first:?}"
    );
    // Spotify asks for 20 hours: the run stops at once, cleanly, without sleeping.
    h.mock.push_fault(FaultRule::new(
        Endpoint::Track,
        Fault::RateLimited {
            retry_after: 20 * 3600,
            quota: true,
        },
        1,
    ));
    let stopped = data_fetcher::enrich::enrich(&fetcher, &db, None, 1_000, h.mock.now())
        .await
        .unwrap();
    let reason = stopped.stopped.clone().expect("stopped by the Retry-After");
    assert!(reason.contains("72000"), "{reason}");
    assert_eq!(stopped.remaining, tracks - 10);
    assert!(
        h.clock.waits.lock().unwrap().is_empty(),
        "never slept for hours"
    );
    // The next run finishes: every track asked once (plus the one refused).
    let last = data_fetcher::enrich::enrich(&fetcher, &db, None, 1_000, h.mock.now())
        .await
        .unwrap();
    assert_eq!(last.remaining, 0, "{last:?}");
    assert_eq!(
        first.unavailable + stopped.unavailable + last.unavailable,
        1,
        "the removed track"
    );
    assert_eq!(
        first.enriched + stopped.enriched + last.enriched,
        tracks - 1
    );
    let asked = h
        .mock
        .requests()
        .iter()
        .filter(|r| r.endpoint == Endpoint::Track)
        .count();
    assert_eq!(
        asked,
        tracks + 1,
        "one request per distinct track, and the one refused"
    );
    let catalogue = db.collection::<Document>(TRACK_CATALOGUE);
    assert_eq!(
        catalogue.count_documents(doc! {}).await.unwrap() as usize,
        tracks
    );
    // A run with nothing left asks nothing.
    let idle = data_fetcher::enrich::enrich(&fetcher, &db, None, 1_000, h.mock.now())
        .await
        .unwrap();
    assert_eq!((idle.requests, idle.remaining), (0, 0));

    // The plays: every one enriched but the removed track's, which keeps the export's names.
    let raw = db.collection::<Document>(RAW_RECENTLY_PLAYED);
    let removed = removed_track_id(0);
    let not_enriched: Vec<Document> = {
        let mut cursor = raw.find(doc! {"album_id": Bson::Null}).await.unwrap();
        let mut found = Vec::new();
        while cursor.advance().await.unwrap() {
            found.push(cursor.deserialize_current().unwrap());
        }
        found
    };
    assert!(!not_enriched.is_empty());
    for play in &not_enriched {
        assert_eq!(play.get_str("track_id").unwrap(), removed);
        assert_eq!(play.get_str("track_name").unwrap(), "Gone Tomorrow");
    }
    let enriched = raw
        .count_documents(
            doc! {"artist_ids.0": {"$type": "string"}, "duration_ms": {"$type": "number"}},
        )
        .await
        .unwrap() as usize;
    assert_eq!(
        enriched + not_enriched.len(),
        fact_count(&format!("history.{MEMBER}.kept"))
    );
    // The derived collections now count the imported plays' artists and links.
    earshot_collections::build(&db, earshot_core::layout::Target::All, &h.group)
        .await
        .unwrap();
    let links = db
        .collection::<Document>(mongo::ARTIST_TRACK_LINK)
        .count_documents(doc! {})
        .await
        .unwrap() as usize;
    assert!(
        links >= enriched,
        "{links} links for {enriched} enriched plays"
    );
    let member = db
        .collection::<Document>(mongo::MEMBERS)
        .find_one(doc! {"_id": MEMBER})
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        member
            .get_i32("plays")
            .map(i64::from)
            .or(member.get_i64("plays"))
            .unwrap() as usize,
        fact_count(&format!("history.{MEMBER}.kept"))
    );
    // status shows the enrichment.
    data_fetcher::import::record_enrichment(&h.storage, &db, &h.group)
        .await
        .unwrap();
    let state = earshot_state::import_progress::read_state(&h.storage, MEMBER)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (state.tracks_enriched + state.tracks_unavailable) as usize,
        tracks
    );
    assert_eq!(state.tracks_unavailable, 1);
    assert_eq!(state.tracks_stored as usize, tracks);
    // Ana's API plays arrive afterwards: the history plays they match go, with their links.
    earshot_testkit::fixtures::write_raw_pages(&h.storage)
        .await
        .unwrap();
    let api = json_converter::Converter::new(RawKind::RecentlyPlayed, h.group.clone()).unwrap();
    json_converter::convert_storage(
        &h.storage,
        &api,
        &format!(
            "{}user={MEMBER}/",
            layout::raw_prefix(RawKind::RecentlyPlayed)
        ),
        false,
        false,
    )
    .await
    .unwrap();
    let report = earshot_upload::load_storage(
        &db,
        &h.storage,
        RawKind::RecentlyPlayed,
        &format!(
            "{}user={MEMBER}/",
            layout::converted_prefix(RawKind::RecentlyPlayed)
        ),
        earshot_upload::LoadOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(
        report.merged as usize,
        fact_count(&format!("history.{MEMBER}.merged"))
    );
    earshot_collections::build(&db, earshot_core::layout::Target::All, &h.group)
        .await
        .unwrap();
    let mut orphans = 0;
    let mut links = db
        .collection::<Document>(mongo::ARTIST_TRACK_LINK)
        .find(doc! {})
        .await
        .unwrap();
    while links.advance().await.unwrap() {
        let play_id = links
            .deserialize_current()
            .unwrap()
            .get_str("play_id")
            .unwrap()
            .to_string();
        if raw.count_documents(doc! {"_id": &play_id}).await.unwrap() == 0 {
            orphans += 1;
        }
    }
    assert_eq!(orphans, 0, "links of plays that are gone");
    assert_eq!(
        raw.count_documents(doc! {}).await.unwrap() as usize,
        fact_count(&format!("plays_with_history.{MEMBER}"))
    );
}
