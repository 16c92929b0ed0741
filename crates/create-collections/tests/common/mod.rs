//! The fixture group loaded the way the pipeline loads it: raw pages → json-converter →
//! data-upload → a fresh database on the test server.

use earshot_core::GroupConfig;
use earshot_core::layout::RawKind;
use earshot_core::storage::Storage;
use earshot_testkit::fixtures::fixtures_dir;
use earshot_testkit::mongo::MongoServer;
use json_converter::{Converter, Kind, convert_storage};
use mongodb::Database;

pub(crate) fn group() -> GroupConfig {
    GroupConfig::load(&fixtures_dir().join("group.toml")).unwrap()
}

/// A fresh database holding the fixture group's raw collections, and the storage they came from.
pub(crate) async fn loaded_database(test: &str) -> (Database, tempfile::TempDir, Storage) {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::local(dir.path());
    earshot_testkit::fixtures::write_raw_pages(&storage)
        .await
        .unwrap();
    let server = MongoServer::shared();
    let db = earshot_core::mongo::connect(server.uri(), &server.database_name(test))
        .await
        .unwrap();
    for (kind, raw) in [
        (Kind::RecentlyPlayed, RawKind::RecentlyPlayed),
        (Kind::TopTracks, RawKind::TopTracks),
        (Kind::TopArtists, RawKind::TopArtists),
    ] {
        let converter = Converter::new(kind, group()).unwrap();
        let prefix = earshot_core::layout::raw_prefix(raw);
        assert!(
            convert_storage(&storage, &converter, &prefix, false, false)
                .await
                .unwrap()
                .failed
                .is_empty()
        );
        let converted = format!("converted/{}/", raw.folder());
        let report = data_upload::load_storage(&db, &storage, raw, &converted, 1000)
            .await
            .unwrap();
        assert_eq!(report.failed, 0);
    }
    (db, dir, storage)
}
